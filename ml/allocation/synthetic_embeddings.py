"""Seeded clustered embeddings for retrieval tests and benchmarks.

Learned interest embeddings are not uniform on the sphere: ads of one category/brand sit in tight
groups, and users sit near the groups they like. Uniform random vectors make every ANN index look
bad (no structure to exploit) and every exact top-N look arbitrary, so tests and benchmarks draw a
mixture of Gaussians around unit centres and normalise.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def clustered_unit_vectors(n: int, centres: np.ndarray, spread: float, rng: np.random.Generator,
                           chunk: int = 262_144) -> np.ndarray:
    """`n` float32 unit vectors, each a random centre plus N(0, spread^2) per dimension, normalised."""
    dim = centres.shape[1]
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):  # chunks keep the float64 temporaries small at 1M rows
        stop = min(n, start + chunk)
        rows = centres[rng.integers(0, len(centres), stop - start)] + rng.normal(0, spread, (stop - start, dim))
        out[start:stop] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def clustered_embedding_frames(n_users: int, n_ads: int, dim: int = 64, n_clusters: int | None = None,
                               spread: float = 0.1, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(users with user_key/embedding, ads with ad_id/embedding) drawn around the same centres.

    With spread 0.1 in 64-d a vector's cosine to its centre is ~0.78, and two ads of one cluster ~0.6.
    """
    rng = np.random.default_rng(seed)
    n_clusters = n_clusters or max(1, n_ads // 1000)
    centres = rng.normal(size=(n_clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    ad_vectors = clustered_unit_vectors(n_ads, centres, spread, rng)
    user_vectors = clustered_unit_vectors(n_users, centres, spread, rng)
    users = pd.DataFrame({"user_key": [f"u{i:07d}" for i in range(n_users)], "embedding": list(user_vectors)})
    ads = pd.DataFrame({"ad_id": np.arange(1, n_ads + 1, dtype=np.int64), "embedding": list(ad_vectors)})
    return users, ads
