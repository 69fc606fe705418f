"""Re-rank a user's scheduled ads with the events seen up to now.

Only ads the allocator planned for the user are served, so the budgets, caps and pacing it
planned stay valid: fresh events change their scores and order, not the plan. Each schedule row
is one planned impression; impressions already delivered today (posted to /events) use up the
planned rows of their ad, earliest hour first, so an ad is never served more often than planned.

Plain Python over one user's few rows: a request must take about a millisecond.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from serving.history import UserHistory
from serving.snapshot import Snapshot

# The probability this policy shows an ad in its slot, logged so that off-policy evaluation can use
# served impressions: the ranking is deterministic (same state, same answer), so every ad it returns
# is shown with probability 1. An exploration rule would set it per ad.
POLICY_PROPENSITY = 1.0


@dataclass
class Ranking:
    ads: list[dict]  # the Ad answer rows, best first, at most k
    fresh_events: int  # events posted for the user since the snapshot was loaded
    used_up: list[int]  # scheduled ads whose planned impressions (in the hour asked) were all delivered
    as_of: pd.Timestamp  # sequences were cut strictly before this time
    rescored: bool  # scored now by the champions (else the schedule's scores, nothing having changed)


def remaining_plan(planned: pd.DataFrame, delivered: dict[int, int]) -> pd.DataFrame:
    """The planned rows left once each ad's delivered impressions used up its earliest rows."""
    planned = planned.sort_values(["hour", "slot", "ad_id"])
    return planned[~used_rows(planned["ad_id"].tolist(), delivered)]


def used_rows(ad_ids: list[int], delivered: dict[int, int]) -> np.ndarray:
    """For rows in (hour, slot) order: is the row used up by a delivered impression of its ad?"""
    seen: Counter = Counter()
    used = np.zeros(len(ad_ids), dtype=bool)
    for row, ad_id in enumerate(ad_ids):
        used[row] = seen[ad_id] < delivered.get(ad_id, 0)
        seen[ad_id] += 1
    return used


def _value(bid: float, bid_type: str, pctr: float, pcvr: float | None) -> float:
    """ml.allocation.value.expected_value for one row: bid x pCTR, x pCVR for conversion bids."""
    return bid * pctr * pcvr if str(bid_type).lower() == "cpa" else bid * pctr


def _reason(planned_reason: str, value: float, planned_value: float, fresh_events: int, top_features: str) -> str:
    why = str(planned_reason).split("; top features:")[0]
    if fresh_events:
        events = f"{fresh_events} fresh event" + ("" if fresh_events == 1 else "s")
        change = f"{events}: value {value:.4f} vs {planned_value:.4f} planned"
    else:
        change = f"no fresh events: value {value:.4f} as planned"
    return f"{why}; {change}; top features: {top_features}"


def _number(value) -> float | None:
    return None if value is None or value != value else float(value)  # NaN -> None


def rerank(snapshot: Snapshot, user_key: str, history: UserHistory, fresh_events: int, delivered: dict[int, int],
           hour: int | None = None, k: int = 4, rescore: bool = False) -> Ranking:
    """The user's scheduled ads still to deliver (for `hour` if given), best fresh expected value first.

    `history` holds the user's events including posted ones; `delivered` the impressions per ad
    already shown on the schedule date. Without fresh events the schedule's own scores are
    returned (same inputs, same models: the same numbers) unless `rescore`.
    """
    # Sequences are cut strictly before `as_of`: now means just after the latest event we know of.
    day_start_ns = pd.Timestamp(snapshot.schedule_date).value
    latest_ns = history.latest_ns
    as_of_ns = day_start_ns if latest_ns is None else max(day_start_ns, latest_ns + 1_000)  # + 1 µs
    as_of = pd.Timestamp(as_of_ns)
    plan_rows = snapshot.schedule_rows.get(user_key, slice(0, 0))
    rows = {column: values[plan_rows].tolist() for column, values in snapshot.plan_columns.items()}
    used = used_rows(rows["ad_id"], delivered)  # over the whole day: deliveries use up the earliest rows
    in_hour = [hour is None or row_hour == hour for row_hour in rows["hour"]]
    left = [row for row in range(len(used)) if in_hour[row] and not used[row]]
    used_up = sorted({rows["ad_id"][row] for row in range(len(used)) if in_hour[row]}
                     - {rows["ad_id"][row] for row in left})
    if not left:
        return Ranking([], fresh_events, used_up, as_of, False)

    candidates = snapshot.candidates
    feature_rows = candidates.rows[user_key]  # every planned ad has its candidate row
    position = {ad_id: i for i, ad_id in enumerate(candidates.scorer.ad_id[feature_rows].tolist())}
    nothing_new = fresh_events == 0 and (latest_ns is None or latest_ns < day_start_ns)
    rescored = rescore or not (nothing_new and candidates.scored_by_current)
    if rescored:  # the behavior features and the encoder's sequences both as of now, posted events included
        scores = candidates.scorer.score(feature_rows, history, as_of_ns)
    else:  # the schedule scored these pairs with the same models, factors and sequences: its scores stand
        scores = None

    ranked, seen = [], set()
    for row in left:  # one row per ad: its earliest remaining planned impression
        ad_id = rows["ad_id"][row]
        if ad_id in seen:
            continue
        seen.add(ad_id)
        at = position[ad_id]
        planned_pctr, planned_pcvr = rows["pctr"][row], _number(rows["pcvr"][row])
        pctr = planned_pctr if scores is None or scores.pctr is None else float(scores.pctr[at])
        # Without a CVR champion the schedule priced CPA rows with the ad's own rate
        # (ml/cvr_fallback.py), which fresh events of one user do not move: its pCVR stands.
        pcvr = planned_pcvr if scores is None or scores.pcvr is None else float(scores.pcvr[at])
        value = _value(rows["bid"][row], rows["bid_type"][row], pctr, pcvr)
        ranked.append({"rank": 0, "ad_id": ad_id, "campaign_id": rows["campaign_id"][row], "hour": rows["hour"][row],
                       "slot": rows["slot"][row], "bid": rows["bid"][row], "bid_type": rows["bid_type"][row],
                       "pctr": pctr, "pcvr": pcvr, "value": value, "planned_pctr": _number(planned_pctr),
                       "planned_pcvr": planned_pcvr, "planned_value": _number(rows["expected_value"][row]),
                       "_row": row, "_at": at})
    ranked.sort(key=lambda ad: (-ad["value"], ad["ad_id"], ad["hour"], ad["slot"]))
    ranked = ranked[:k]
    # Explained after the cut: only the ads returned need their top features and words.
    positions = [ad["_at"] for ad in ranked]
    explained = scores.explain(positions) if scores is not None else None
    if explained is not None:
        top_features, why = explained
    else:  # the schedule's own, or none when nothing scored the rows with a CTR champion
        why = [rows["why"][ad["_row"]] for ad in ranked]
        top_features = (["None, None"] * len(ranked) if scores is not None else
                        [str(name) for name in candidates.top_features(feature_rows)[positions]])
    for rank, ad in enumerate(ranked, start=1):
        row = ad.pop("_row")
        del ad["_at"]
        ad.update(rank=rank, reason=_reason(rows["reason"][row], ad["value"], rows["expected_value"][row],
                                            fresh_events, top_features[rank - 1]),
                  top_features=top_features[rank - 1], why=why[rank - 1], propensity=POLICY_PROPENSITY,
                  # The creative the schedule's Thompson draw picked for this planned impression (ml/creatives),
                  # and its probability: post it back as the impression's creative_id / creative_propensity.
                  creative_id=rows["creative_id"][row], creative_title=rows["creative_title"][row],
                  creative_probability=_number(rows["creative_probability"][row]))
    return Ranking(ranked[:k], fresh_events, used_up, as_of, rescored)
