"""Re-rank a user's scheduled ads with the events seen up to now.

Only ads the allocator planned for the user are served, so the budgets, caps and pacing it
planned stay valid: fresh events change their scores and order, not the plan. Each schedule row
is one planned impression; impressions already delivered today (posted to /events) use up the
planned rows of their ad, earliest hour first, so an ad is never served more often than planned.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ml.allocation.value import expected_value
from ml.rankers.live_features import refresh_user_features
from serving.snapshot import Snapshot

RESPONSE_COLUMNS = ["rank", "ad_id", "campaign_id", "hour", "slot", "bid", "bid_type", "pctr", "pcvr", "value",
                    "planned_pctr", "planned_pcvr", "planned_value", "reason", "top_features", "propensity"]
# The probability this policy shows an ad in its slot, logged so that off-policy evaluation can use
# served impressions: the ranking is deterministic (same state, same answer), so every ad it returns
# is shown with probability 1. An exploration rule would set it per ad.
POLICY_PROPENSITY = 1.0


@dataclass
class Ranking:
    ads: pd.DataFrame  # RESPONSE_COLUMNS, best first, at most k rows
    fresh_events: int  # events posted for the user since the snapshot was loaded
    used_up: list[int]  # scheduled ads whose planned impressions (in the hour asked) were all delivered
    as_of: pd.Timestamp  # sequences were cut strictly before this time
    rescored: bool  # scored now by the champions (else the schedule's scores, nothing having changed)


def remaining_plan(planned: pd.DataFrame, delivered: dict[int, int]) -> pd.DataFrame:
    """The planned rows left once each ad's delivered impressions used up its earliest rows."""
    planned = planned.sort_values(["hour", "slot", "ad_id"])
    used = planned.groupby("ad_id").cumcount().to_numpy() < planned["ad_id"].map(delivered).fillna(0).to_numpy()
    return planned[~used]


def _reason(row, fresh_events: int) -> str:
    why = str(row["planned_reason"]).split("; top features:")[0]
    if fresh_events:
        events = f"{fresh_events} fresh event" + ("" if fresh_events == 1 else "s")
        change = f"{events}: value {row['value']:.4f} vs {row['planned_value']:.4f} planned"
    else:
        change = f"no fresh events: value {row['value']:.4f} as planned"
    return f"{why}; {change}; top features: {row['top_features']}"


def rerank(snapshot: Snapshot, user_key: str, events: pd.DataFrame, fresh_events: int,
           delivered: dict[int, int], hour: int | None = None, k: int = 4, rescore: bool = False) -> Ranking:
    """The user's scheduled ads still to deliver (for `hour` if given), best fresh expected value first.

    `events` is the user's event stream including posted events; `delivered` the impressions per ad
    already shown on the schedule date. Without fresh events the schedule's own scores are
    returned (same inputs, same models: the same numbers) unless `rescore`.
    """
    # Sequences are cut strictly before `as_of`: now means just after the latest event we know of.
    as_of = pd.Timestamp(snapshot.schedule_date)
    if len(events):
        as_of = max(as_of, pd.Timestamp(events["ts"].max()) + pd.Timedelta(microseconds=1))
    scheduled = snapshot.user_schedule(user_key)
    planned = remaining_plan(scheduled, delivered)  # over the whole day: deliveries use up the earliest rows
    if hour is not None:
        scheduled, planned = scheduled[scheduled["hour"] == hour], planned[planned["hour"] == hour]
    used_up = sorted(set(scheduled["ad_id"]) - set(planned["ad_id"]))
    if planned.empty:
        return Ranking(pd.DataFrame(columns=RESPONSE_COLUMNS), fresh_events, used_up, as_of, False)
    features = snapshot.user_features(user_key)
    features = features[features["ad_id"].isin(planned["ad_id"])]
    nothing_new = fresh_events == 0 and (events.empty or events["ts"].max() < pd.Timestamp(snapshot.schedule_date))
    rescored = rescore or not (nothing_new and snapshot.planned_scores_current)
    if rescored:
        # The behavior features and the encoder's sequences both as of now, posted events included.
        scored = snapshot.scorer.score(refresh_user_features(features, events, as_of), events, as_of=as_of)
        # Without a CVR champion the schedule priced CPA rows with the ad's own rate (ml/cvr_fallback.py),
        # which fresh events of one user do not move: its pCVR stands.
        planned_pcvr = planned.drop_duplicates("ad_id").set_index("ad_id")["pcvr"]
        scored["pcvr"] = scored["pcvr"].fillna(scored["ad_id"].map(planned_pcvr))
    else:  # the schedule scored these pairs with the same models, factors and sequences: its scores stand
        scored = planned.drop_duplicates("ad_id")[["ad_id", "pctr", "pcvr"]].merge(
            features[["ad_id", "top1_feature", "top2_feature"]], on="ad_id")
    scored["top_features"] = scored["top1_feature"].astype(str) + ", " + scored["top2_feature"].astype(str)
    ranked = planned.rename(columns={"pctr": "planned_pctr", "pcvr": "planned_pcvr", "expected_value": "planned_value",
                                     "reason": "planned_reason"}).merge(
        scored[["ad_id", "pctr", "pcvr", "top_features"]], on="ad_id")
    ranked["value"] = expected_value(ranked["bid"], ranked["bid_type"], ranked["pctr"], ranked["pcvr"])
    # One row per ad (its earliest remaining planned impression), best value first.
    ranked = ranked.sort_values(["value", "ad_id", "hour", "slot"], ascending=[False, True, True, True])
    ranked = ranked.drop_duplicates("ad_id").head(k).reset_index(drop=True)
    ranked["rank"] = range(1, len(ranked) + 1)
    ranked["reason"] = [_reason(row, fresh_events) for _, row in ranked.iterrows()]
    ranked["propensity"] = POLICY_PROPENSITY
    return Ranking(ranked[RESPONSE_COLUMNS], fresh_events, used_up, as_of, rescored)
