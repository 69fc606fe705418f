"""Non-learned retrieval beside the encoder's: the ads of the categories a user browsed most.

benchmarks/encoder_worth.py measured the encoder's 50 candidates per user finding 46% of the
oracle's 10 best ads, and this heuristic, given as many ads, 67%. The two are added together:
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
    taken = set(zip(retrieved["user_key"], retrieved["ad_id"]))
    rows = []
    for start in range(0, len(user_keys), block_users):
        block = views[start:start + block_users]
        ad_views = np.where(known[None, :], block[:, np.clip(ad_category, 0, len(categories) - 1)], 0.0)
        score = np.where(ad_views > 0, ad_views + tie_break[None, :], -np.inf)
        order = np.argsort(-score, axis=1, kind="stable")
        for row, user in enumerate(user_keys[start:start + block_users]):
            picked = 0
            for position in order[row]:
                if picked == per_user or not np.isfinite(score[row, position]):
                    break
                if (user, ad_ids[position]) not in taken:
                    rows.append((user, int(ad_ids[position]), float(ad_views[row, position])))
                    picked += 1
    frame = pd.DataFrame(rows, columns=["user_key", "ad_id", "retrieval_score"])
    return frame.assign(source=SOURCE).astype({"ad_id": "int64"}) if rows else pd.DataFrame(columns)
