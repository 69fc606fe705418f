"""The user's behavior features as of any moment, from the event stream in memory.

dbt computes them as of the START of a day (macros/point_in_time_features.sql); real-time serving
needs them as of now, with the events posted since. The definitions are dbt's with the day start
replaced by `as_of`: events in the `FEATURE_WINDOW_DAYS` before it, hours since the latest one. At a
day start the two agree (tests/test_serving.py checks them against dbt's candidate_features), so
the rankers see the same features they were trained on, only fresher.

Ad-side and user-by-ad-impression features (ad CTR, the user's ad impressions) stay as of the day
start: the service does not see every impression of other users.

Plain arrays, one user at a time: the service computes them per request.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

FEATURE_WINDOW_DAYS = 7  # must equal dbt's var feature_window_days (tests/test_serving.py reads it)
AD_CLICK = "ad_click"  # the event stream's ad clicks: part of the affinities, not of user_events_7d
# (feature column with the window count, feature column with the hours since, ad column it matches)
AFFINITY_FEATURES = {
    "category": ("user_category_events_7d", "hours_since_user_category_event", "category_id"),
    "brand": ("user_brand_events_7d", "hours_since_user_brand_event", "brand_id"),
}
LIVE_FEATURE_COLUMNS = ["user_events_7d", "user_buys_7d",
                        *[column for count, since, _ in AFFINITY_FEATURES.values() for column in (count, since)]]
NS_PER_SECOND, WINDOW_NS = 1_000_000_000, FEATURE_WINDOW_DAYS * 86_400 * 1_000_000_000


@dataclass(frozen=True)
class UserEvents:
    """One user's events (any order): ts in ns since the epoch, category and brand as float (NaN: none)."""
    ts_ns: np.ndarray
    is_behavior: np.ndarray  # bool: not an ad click
    is_buy: np.ndarray  # bool
    category_id: np.ndarray
    brand_id: np.ndarray

    @classmethod
    def of(cls, events: pd.DataFrame) -> "UserEvents":
        """From event-stream rows (ts, event_type, category_id, brand_id)."""
        kinds = events["event_type"].to_numpy(dtype=object)
        return cls(pd.to_datetime(events["ts"]).to_numpy(dtype="datetime64[ns]").view(np.int64),
                   kinds != AD_CLICK, kinds == "buy",
                   pd.to_numeric(events["category_id"]).to_numpy(dtype=float, na_value=np.nan),
                   pd.to_numeric(events["brand_id"]).to_numpy(dtype=float, na_value=np.nan))


def behavior_features(events: UserEvents, candidates: dict[str, np.ndarray], as_of_ns: int) -> dict[str, np.ndarray]:
    """The live feature columns for the user's candidate ads (`candidates`: category_id and brand_id
    per row, float with NaN) from `events` strictly before `as_of_ns`."""
    before = events.ts_ns < as_of_ns
    in_window = before & (events.ts_ns >= as_of_ns - WINDOW_NS)
    n_rows = len(candidates["category_id"])
    behavior = in_window & events.is_behavior
    features = {"user_events_7d": np.full(n_rows, behavior.sum(), dtype=np.int64),
                "user_buys_7d": np.full(n_rows, (behavior & events.is_buy).sum(), dtype=np.int64)}
    for count_column, since_column, key in AFFINITY_FEATURES.values():
        matches = candidates[key][:, None] == getattr(events, key)[None, :]  # NaN matches nothing
        features[count_column] = (matches & in_window).sum(axis=1).astype(np.int64)
        latest = np.where(matches & before, events.ts_ns, np.iinfo(np.int64).min).max(axis=1, initial=np.iinfo(np.int64).min)
        # dbt's date_diff('second', ...) counts second boundaries: both ends truncated to seconds.
        seconds = as_of_ns // NS_PER_SECOND - latest // NS_PER_SECOND
        features[since_column] = np.where(latest > np.iinfo(np.int64).min, seconds / 3600.0, np.nan)
    return features
