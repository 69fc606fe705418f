"""The user's behavior features as of any moment, from the event stream in memory.

dbt computes them as of the START of a day (macros/point_in_time_features.sql); real-time serving
needs them as of now, with the events posted since. The definitions are dbt's with the day start
replaced by `as_of`: events in the `FEATURE_WINDOW_DAYS` before it, hours since the latest one. At a
day start the two agree (tests/test_serving.py checks them against dbt's candidate_features), so
the rankers see the same features they were trained on, only fresher.

Ad-side and user-by-ad-impression features (ad CTR, the user's ad impressions) stay as of the day
start: the service does not see every impression of other users.
"""
from __future__ import annotations

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


def refresh_user_features(features: pd.DataFrame, events: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """`features` (one user's candidate rows, with category_id and brand_id) with the behavior
    features recomputed from `events` (that user's stream: ts, event_type, category_id, brand_id)
    strictly before `as_of`."""
    refreshed = features.copy()
    before = events[events["ts"] < as_of]
    in_window = before[before["ts"] >= as_of - pd.Timedelta(days=FEATURE_WINDOW_DAYS)]
    behavior = in_window[in_window["event_type"] != AD_CLICK]
    refreshed["user_events_7d"] = len(behavior)
    refreshed["user_buys_7d"] = int((behavior["event_type"] == "buy").sum())
    for count_column, since_column, key in AFFINITY_FEATURES.values():
        counts = in_window.groupby(key).size()
        latest = before.groupby(key)["ts"].max()
        ad_values = refreshed[key]
        refreshed[count_column] = ad_values.map(counts).fillna(0).astype(np.int64).to_numpy()
        latest_ts = pd.to_datetime(ad_values.map(latest))
        # dbt's date_diff('second', ...) counts second boundaries: both ends truncated to seconds.
        seconds = (as_of.floor("s") - latest_ts.dt.floor("s")).dt.total_seconds()
        refreshed[since_column] = (seconds / 3600.0).to_numpy(dtype=float)
    return refreshed
