"""Candidate retrieval: top-N ads per user by cosine similarity of interest embeddings, plus exploration.

Scores are computed block by block (users x all eligible ads) so memory stays at one block of floats,
and top-N uses argpartition (linear) before sorting only the N winners.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ml.allocation.ann_candidates import ann_candidates, choose_index
from ml.allocation.config import AllocationConfig
from ml.ordering import in_key_order
from ml.settings import Settings

CANDIDATE_COLUMNS = ["user_key", "ad_id", "retrieval_score", "source"]


def _unit_rows(frame: pd.DataFrame, column: str = "embedding") -> np.ndarray:
    matrix = np.stack(frame[column].to_numpy()).astype(np.float32, copy=False)
    if matrix.ndim != 2:
        raise ValueError(f"'{column}' must hold 1-d vectors of one length")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


def exploration_pool(ad_ids: np.ndarray, ad_delivery_stats: pd.DataFrame | None,
                     config: AllocationConfig) -> np.ndarray:
    """Positions (into ad_ids) of ads worth exploring: fresh (younger than the active window) or
    under-delivered (bottom quartile of 7-day impressions). Without stats every ad is a candidate."""
    if ad_delivery_stats is None or len(ad_delivery_stats) == 0:
        return np.arange(len(ad_ids))
    stats = ad_delivery_stats.drop_duplicates("ad_id").set_index("ad_id").reindex(ad_ids)
    impressions = stats["impressions_7d"].fillna(0.0).to_numpy(float)
    age = stats["ad_age_days"].fillna(0.0).to_numpy(float)  # no stats yet = brand new
    fresh = age < config.active_window_days
    under_delivered = impressions <= np.quantile(impressions, 0.25)
    pool = np.flatnonzero(fresh | under_delivered)
    return pool if len(pool) else np.arange(len(ad_ids))


def retrieve_candidates(user_embeddings: pd.DataFrame, ad_embeddings: pd.DataFrame, eligible_ads: pd.DataFrame,
                        config: AllocationConfig, ad_delivery_stats: pd.DataFrame | None = None,
                        index: str | None = None) -> pd.DataFrame:
    """Per user: the N eligible ads with the highest cosine similarity ('interest'), then up to
    `exploration_per_user` seeded random picks from the exploration pool not already among them
    ('exploration'). Returns user_key, ad_id, retrieval_score (cosine), source.

    `index`: "exact" (brute force, the reference), "ann" (approximate top-N from a faiss index,
    ml/allocation/ann_candidates.py) or "auto"; None reads AD_RETRIEVAL_INDEX (ml/settings.py)."""
    # Exploration draws seeded numbers per (user, ad) position and top-N breaks ties by position, so
    # both sides go in key order whatever order the caller read them in.
    eligible = in_key_order(ad_embeddings[ad_embeddings["ad_id"].isin(eligible_ads["ad_id"])], ["ad_id"])
    eligible = eligible.drop_duplicates("ad_id")
    user_embeddings = in_key_order(user_embeddings, ["user_key"])
    if len(eligible) == 0 or len(user_embeddings) == 0:
        return pd.DataFrame({"user_key": pd.Series(dtype=object), "ad_id": pd.Series(dtype="int64"),
                             "retrieval_score": pd.Series(dtype=float), "source": pd.Series(dtype=object)})
    ad_ids = eligible["ad_id"].to_numpy()
    ad_matrix = _unit_rows(eligible)
    user_keys = user_embeddings["user_key"].to_numpy()
    user_matrix = _unit_rows(user_embeddings)
    if user_matrix.shape[1] != ad_matrix.shape[1]:
        raise ValueError(f"user embeddings have dim {user_matrix.shape[1]}, ad embeddings {ad_matrix.shape[1]}")

    n_ads = len(ad_ids)
    top_n = min(config.candidates_per_user, n_ads)
    pool = exploration_pool(ad_ids, ad_delivery_stats, config)
    n_explore = min(config.exploration_per_user, len(pool))
    settings = Settings.from_env()
    if choose_index(index, n_ads, top_n, settings) == "ann":
        return ann_candidates(user_keys, user_matrix, ad_ids, ad_matrix, top_n, pool, n_explore, config,
                              settings.retrieval_ann_probe_share)
    rng = np.random.default_rng(config.seed)

    user_pos, ad_pos, scores, is_explore = [], [], [], []
    for start in range(0, len(user_keys), config.retrieval_chunk_users):
        block = user_matrix[start:start + config.retrieval_chunk_users] @ ad_matrix.T
        rows = np.arange(block.shape[0])[:, None]
        if top_n < n_ads:
            best = np.argpartition(-block, top_n - 1, axis=1)[:, :top_n]
        else:
            best = np.tile(np.arange(n_ads), (block.shape[0], 1))
        best = np.take_along_axis(best, np.argsort(-block[rows, best], axis=1, kind="stable"), axis=1)
        user_pos.append(np.repeat(np.arange(start, start + block.shape[0]), top_n))
        ad_pos.append(best.ravel())
        scores.append(block[rows, best].ravel())
        is_explore.append(np.zeros(best.size, dtype=bool))

        if n_explore and top_n < n_ads:
            # An ad is already an interest candidate iff it scores at least the user's N-th best score
            # (ties can only make us skip a pool ad, never duplicate one).
            nth_best = block[np.arange(block.shape[0]), best[:, -1]]
            pool_scores = block[:, pool]
            keys = rng.random(pool_scores.shape, dtype=np.float32)
            keys[pool_scores >= nth_best[:, None]] = -1.0
            picks = np.argpartition(-keys, n_explore - 1, axis=1)[:, :n_explore] if n_explore < len(pool) \
                else np.tile(np.arange(len(pool)), (block.shape[0], 1))
            valid = np.take_along_axis(keys, picks, axis=1) >= 0
            picked_users = np.broadcast_to(np.arange(start, start + block.shape[0])[:, None], picks.shape)[valid]
            user_pos.append(picked_users)
            ad_pos.append(pool[picks[valid]])
            scores.append(np.take_along_axis(pool_scores, picks, axis=1)[valid])
            is_explore.append(np.ones(valid.sum(), dtype=bool))

    is_explore = np.concatenate(is_explore)
    return pd.DataFrame({
        "user_key": user_keys[np.concatenate(user_pos)],
        "ad_id": ad_ids[np.concatenate(ad_pos)],
        "retrieval_score": np.concatenate(scores).astype(float),
        "source": np.where(is_explore, "exploration", "interest"),
    })
