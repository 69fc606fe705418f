"""Non-learned retrieval beside the encoder's: the ads of the categories a user browsed most.

benchmarks/encoder_worth.py measured the encoder's 50 candidates per user finding 46% of the
oracle's 10 best ads, and this heuristic, given up to as many ads, 60%. The two are added together:
the encoder's candidates as before, then up to `per_user` more from the categories the user
viewed most in the window before the schedule day (most clicked ads first within a category), so
the rankers and the allocator choose from both.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

SOURCE = "category"


def category_candidates(user_keys: np.ndarray, ads: pd.DataFrame, category_views: pd.DataFrame, per_user: int,
                        retrieved: pd.DataFrame, block_users: int = 2000) -> pd.DataFrame:
    """Per user in `user_keys`, up to `per_user` eligible ads not in `retrieved` (user_key, ad_id):
    ranked by the user's views of the ad's category (`category_views`: user_key, category_id, events)
    then by the ad's 7-day clicks. Users who viewed no eligible category get none (the encoder's and
    the exploration candidates serve them). retrieval_score: the user's views of the category."""
    columns = {"user_key": pd.Series(dtype=object), "ad_id": pd.Series(dtype="int64"),
               "retrieval_score": pd.Series(dtype=float), "source": pd.Series(dtype=object)}
    ads = ads.drop_duplicates("ad_id").sort_values("ad_id", kind="stable")
    if per_user <= 0 or ads.empty or len(user_keys) == 0:
        return pd.DataFrame(columns)
    categories = np.sort(ads["category_id"].dropna().unique())
    ad_ids = ads["ad_id"].to_numpy()
    ad_category = np.searchsorted(categories, ads["category_id"].to_numpy())
    known = np.isin(ads["category_id"].to_numpy(), categories)
    clicks = ads["ad_clicks_7d"].fillna(0).to_numpy(float) if "ad_clicks_7d" in ads else np.zeros(len(ads))
    tie_break = clicks / (clicks.max() + 1.0)  # < 1: orders ads within one level of views only
    views = (category_views[category_views["category_id"].isin(categories)]
             .pivot_table(index="user_key", columns="category_id", values="events", aggfunc="sum", fill_value=0)
             .reindex(index=user_keys, columns=categories, fill_value=0).to_numpy(float))
    # Already retrieved pairs as (user row, ad column) positions, sorted by user row for the blocks.
    user_row = pd.Series(np.arange(len(user_keys)), index=user_keys).reindex(retrieved["user_key"]).to_numpy()
    ad_column = pd.Series(np.arange(len(ad_ids)), index=ad_ids).reindex(retrieved["ad_id"]).to_numpy()
    known_pair = ~(np.isnan(user_row) | np.isnan(ad_column))
    taken_rows, taken_columns = user_row[known_pair].astype(np.int64), ad_column[known_pair].astype(np.int64)
    by_row = np.argsort(taken_rows, kind="stable")
    taken_rows, taken_columns = taken_rows[by_row], taken_columns[by_row]
    frames = []
    for start in range(0, len(user_keys), block_users):
        stop = min(start + block_users, len(user_keys))
        ad_views = np.where(known[None, :], views[start:stop][:, np.clip(ad_category, 0, len(categories) - 1)], 0.0)
        score = np.where(ad_views > 0, ad_views + tie_break[None, :], -np.inf)
        lo, hi = np.searchsorted(taken_rows, [start, stop])
        score[taken_rows[lo:hi] - start, taken_columns[lo:hi]] = -np.inf
        best = np.argsort(-score, axis=1, kind="stable")[:, :per_user]
        rows = np.broadcast_to(np.arange(stop - start)[:, None], best.shape)
        picked = np.isfinite(score[rows, best])
        frames.append(pd.DataFrame({"user_key": user_keys[start:stop][rows[picked]], "ad_id": ad_ids[best[picked]],
                                    "retrieval_score": ad_views[rows[picked], best[picked]]}))
    found = pd.concat(frames, ignore_index=True)
    return found.assign(source=SOURCE).astype({"ad_id": "int64"}) if len(found) else pd.DataFrame(columns)
