"""Approximate top-N by inner product over L2-normalised ad vectors (= cosine): a faiss IVF-Flat index.

Why faiss (faiss-cpu) and IVF-Flat rather than an HNSW graph (hnswlib, usearch, faiss HNSW):
- determinism: IVF-Flat is k-means centroids plus exact inner products inside the probed lists. With
  a seeded training sample, seeded k-means and a one-thread build the index is a pure function of
  its input, and each query is answered on its own, so search results do not depend on thread count
  or batching. An HNSW graph built with several threads depends on insertion races; single-threaded
  it is reproducible but a 1M-ad build takes minutes on one core, every day;
- build time: training k-means on a sample and assigning 1M vectors takes seconds;
- one knob (n_probe, lists scanned per query) trades recall for speed, predictably;
- faiss is Meta's maintained library with CPU wheels for our Python and numpy 2.

What it does not guarantee: scores are SIMD sums whose rounding can differ in the last bits across
CPUs (AVX2 vs AVX-512 vs NEON), so near-ties may order differently on another machine; and it is
approximate: an ad whose nearest centroid is not among a user's n_probe best is missed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import faiss
import numpy as np

# k-means sees this many ads per list: faiss warns below 39, and more only slows the daily build.
TRAINING_POINTS_PER_LIST = 64
KMEANS_ITERATIONS = 20
# Lists scanned per query, as a share of all lists: 0.95+ recall@50 on clustered 64-d embeddings
# (benchmarks/retrieval_scale.py); raise it (AD_RETRIEVAL_ANN_PROBE_SHARE) for flatter catalogs.
DEFAULT_PROBE_SHARE = 0.03
MIN_PROBES = 8


@dataclass
class AnnIndex:
    """A trained, filled IVF-Flat index; `positions` returned by search are rows of the indexed matrix."""

    index: faiss.IndexIVFFlat
    n_lists: int
    n_probe: int

    @property
    def memory_bytes(self) -> int:
        """Vectors, ids and centroids as faiss stores them."""
        return int(faiss.serialize_index(self.index).size)


def default_n_lists(n_vectors: int) -> int:
    """~sqrt(n) lists (faiss's rule of thumb), capped so k-means has enough points per list."""
    return max(1, min(int(math.sqrt(n_vectors)), n_vectors // TRAINING_POINTS_PER_LIST))


def build_index(unit_vectors: np.ndarray, seed: int = 0, n_lists: int | None = None,
                probe_share: float = DEFAULT_PROBE_SHARE, threads: int = 1) -> AnnIndex:
    """Index rows of `unit_vectors` (already L2-normalised, float32) for inner-product search.

    Single-threaded by default: on a shared box extra OpenMP threads spin, and faiss does not promise
    that k-means gives the same centroids for any thread count; on one thread it does (seeded)."""
    vectors = np.ascontiguousarray(unit_vectors, dtype=np.float32)
    n, dim = vectors.shape
    n_lists = n_lists or default_n_lists(n)
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, n_lists, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.cp.niter = KMEANS_ITERATIONS
    index.cp.spherical = True  # unit centroids: a list's centroid is its cosine representative
    index.cp.max_points_per_centroid = TRAINING_POINTS_PER_LIST
    sample_size = min(n, n_lists * TRAINING_POINTS_PER_LIST)
    sample = np.sort(np.random.default_rng(seed).choice(n, sample_size, replace=False))
    with _omp_threads(threads):
        index.train(vectors[sample])
        index.add(vectors)
    n_probe = min(n_lists, max(MIN_PROBES, math.ceil(probe_share * n_lists)))
    index.nprobe = n_probe
    return AnnIndex(index=index, n_lists=n_lists, n_probe=n_probe)


def search(ann: AnnIndex, unit_queries: np.ndarray, top_n: int, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(scores, positions), each queries x top_n, best first, ties by position; position -1 where the
    probed lists held fewer than top_n ads (the caller falls back to brute force for those rows)."""
    queries = np.ascontiguousarray(unit_queries, dtype=np.float32)
    with _omp_threads(threads):
        scores, positions = ann.index.search(queries, top_n)
    # faiss orders equal scores by the list they came from; order them by position like the exact path.
    order = np.lexsort((np.where(positions < 0, np.iinfo(np.int64).max, positions), -scores), axis=-1)
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(positions, order, axis=1)


class _omp_threads:
    """faiss's OpenMP thread count for a block, restored afterwards."""

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def __enter__(self) -> None:
        self.previous = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(self.threads)

    def __exit__(self, *exc) -> None:
        faiss.omp_set_num_threads(self.previous)
