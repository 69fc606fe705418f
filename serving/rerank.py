"""Re-rank a user's scheduled ads with the events seen up to now.

Only ads the allocator planned for the user are served, so the budgets, caps and pacing it
planned stay valid; fresh events change their order (and their scores), not the plan.
"""
from __future__ import annotations

import pandas as pd

from ml.allocation.value import expected_value
from serving.snapshot import Snapshot

RESPONSE_COLUMNS = ["ad_id", "campaign_id", "hour", "slot", "bid_type", "planned_value", "pctr", "pcvr", "value",
                    "reason", "top1_feature", "top2_feature"]


def rerank(snapshot: Snapshot, user_key: str, hour: int | None = None) -> pd.DataFrame:
    """The user's scheduled ads (for `hour` if given), best fresh expected value first."""
    planned = snapshot.schedule[snapshot.schedule["user_key"] == user_key]
    if hour is not None:
        planned = planned[planned["hour"] == hour]
    if planned.empty:
        return pd.DataFrame(columns=RESPONSE_COLUMNS)
    features = snapshot.features.merge(planned[["user_key", "ad_id"]], on=["user_key", "ad_id"])
    events = snapshot.user_events(user_key)
    # Sequences are cut strictly before `as_of`: now means just after the latest event we know of.
    as_of = max(pd.Timestamp(snapshot.schedule_date), events["ts"].max() + pd.Timedelta(microseconds=1)) \
        if len(events) else pd.Timestamp(snapshot.schedule_date)
    scored = snapshot.scorer.score(features, events, as_of=as_of)
    ranked = planned.drop(columns=["pctr", "pcvr"]).rename(columns={"expected_value": "planned_value"}).merge(
        scored[["user_key", "ad_id", "pctr", "pcvr", "top1_feature", "top2_feature"]], on=["user_key", "ad_id"])
    ranked["value"] = expected_value(ranked["bid"], ranked["bid_type"], ranked["pctr"], ranked["pcvr"])
    return ranked.sort_values(["value", "ad_id"], ascending=[False, True])[RESPONSE_COLUMNS].reset_index(drop=True)
