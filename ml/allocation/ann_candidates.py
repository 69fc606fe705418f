"""Candidate rows from the ANN index: retrieval's "ann" path, same contract as the exact one.

Interest candidates come from `ann_index.search` instead of a users x all-ads matmul. Exploration
keeps the exact path's rule and random stream: per user one seeded key per pool ad (drawn in the same
user-major order, so the same numbers whatever the chunking), pool ads scoring at least the user's
N-th interest score are skipped, and the highest keys win. It only scores the few pool ads with the
best keys instead of the whole pool, which is what keeps it cheap at a million ads.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ml.allocation import ann_index
from ml.allocation.config import AllocationConfig
from ml.settings import Settings

# Floats per chunk of exploration keys (users x pool): 64M float32 = 256 MB.
EXPLORATION_CHUNK_FLOATS = 1 << 26


def _exact_top_n(user_rows: np.ndarray, ad_matrix: np.ndarray, top_n: int) -> tuple[np.ndarray, np.ndarray]:
    scores = user_rows @ ad_matrix.T
    best = np.argpartition(-scores, top_n - 1, axis=1)[:, :top_n]
    best_scores = np.take_along_axis(scores, best, axis=1)
    order = np.lexsort((best, -best_scores), axis=-1)
    return np.take_along_axis(best_scores, order, axis=1), np.take_along_axis(best, order, axis=1)


def interest_top_n(user_matrix: np.ndarray, ad_matrix: np.ndarray, top_n: int, seed: int,
                   probe_share: float = ann_index.DEFAULT_PROBE_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ad positions), users x top_n, best first. Users whose probed lists held fewer than
    top_n ads (tiny or lopsided lists) get the exact answer instead of a short list."""
    index = ann_index.build_index(ad_matrix, seed=seed, probe_share=probe_share)
    scores, positions = ann_index.search(index, user_matrix, top_n)
    short = np.flatnonzero((positions < 0).any(axis=1))
    if len(short):
        scores[short], positions[short] = _exact_top_n(user_matrix[short], ad_matrix, top_n)
    return scores.astype(np.float32), positions


def exploration_picks(user_rows: np.ndarray, pool_matrix: np.ndarray, nth_best: np.ndarray, n_explore: int,
                      top_n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, pool position, score) of up to n_explore pool ads per user row not already retrieved."""
    keys = rng.random((len(user_rows), len(pool_matrix)), dtype=np.float32)
    # Pool ads at or above the N-th score number at most top_n (plus ties), so the best
    # n_explore + top_n keys hold the picks unless ties crowd them out; those rows are redone in full.
    width = min(len(pool_matrix), n_explore + top_n)
    best = np.argpartition(-keys, width - 1, axis=1)[:, :width] if width < len(pool_matrix) \
        else np.tile(np.arange(len(pool_matrix)), (len(user_rows), 1))
    best = np.take_along_axis(best, np.argsort(-np.take_along_axis(keys, best, axis=1), axis=1, kind="stable"), axis=1)
    scores = np.einsum("ud,ukd->uk", user_rows, pool_matrix[best])
    eligible = scores < nth_best[:, None]
    crowded = np.flatnonzero(eligible.sum(axis=1) < n_explore) if width < len(pool_matrix) else []
    for row in crowded:
        row_scores = pool_matrix @ user_rows[row]
        row_keys = np.where(row_scores < nth_best[row], keys[row], -1.0)
        best[row] = np.argsort(-row_keys, kind="stable")[:width]
        scores[row] = row_scores[best[row]]
        eligible[row] = row_keys[best[row]] >= 0
    taken = eligible & (np.cumsum(eligible, axis=1) <= n_explore)
    rows = np.broadcast_to(np.arange(len(user_rows))[:, None], best.shape)[taken]
    return rows, best[taken], scores[taken]


def ann_candidates(user_keys: np.ndarray, user_matrix: np.ndarray, ad_ids: np.ndarray, ad_matrix: np.ndarray,
                   top_n: int, pool: np.ndarray, n_explore: int, config: AllocationConfig,
                   probe_share: float = ann_index.DEFAULT_PROBE_SHARE) -> pd.DataFrame:
    """Interest rows for every user (best first), then exploration rows, as `retrieve_candidates` returns."""
    scores, positions = interest_top_n(user_matrix, ad_matrix, top_n, config.seed, probe_share)
    n_users = len(user_keys)
    user_pos, ad_pos, out_scores, is_explore = [np.repeat(np.arange(n_users), top_n)], [positions.ravel()], \
        [scores.ravel()], [np.zeros(positions.size, dtype=bool)]
    if n_explore:
        rng = np.random.default_rng(config.seed)
        pool_matrix = ad_matrix[pool]
        chunk = max(1, min(config.retrieval_chunk_users, EXPLORATION_CHUNK_FLOATS // len(pool)))
        for start in range(0, n_users, chunk):
            stop = min(n_users, start + chunk)
            rows, picks, pick_scores = exploration_picks(user_matrix[start:stop], pool_matrix, scores[start:stop, -1],
                                                         n_explore, top_n, rng)
            user_pos.append(start + rows)
            ad_pos.append(pool[picks])
            out_scores.append(pick_scores)
            is_explore.append(np.ones(len(rows), dtype=bool))
    is_explore = np.concatenate(is_explore)
    return pd.DataFrame({
        "user_key": user_keys[np.concatenate(user_pos)],
        "ad_id": ad_ids[np.concatenate(ad_pos)],
        "retrieval_score": np.concatenate(out_scores).astype(float),
        "source": np.where(is_explore, "exploration", "interest"),
    })


def choose_index(requested: str | None, n_ads: int, top_n: int, settings: Settings | None = None) -> str:
    """"exact" or "ann". `requested` None means the setting (AD_RETRIEVAL_INDEX, default "auto");
    "auto" is ann from `retrieval_ann_min_ads` eligible ads up. Exact whenever N covers the catalog."""
    settings = settings or Settings.from_env()
    choice = requested or settings.retrieval_index
    if choice not in ("auto", "exact", "ann"):
        raise ValueError(f"retrieval index must be 'auto', 'exact' or 'ann', got {choice!r}")
    if top_n >= n_ads:
        return "exact"
    if choice == "auto":
        return "ann" if n_ads >= settings.retrieval_ann_min_ads else "exact"
    return choice
