"""Hourly pacing: where each user's slots fall in the day, the traffic forecast, and spend caps per hour.

Carry-over rule (shared by the allocator and `validate_schedule`): a campaign's *cumulative* expected
spend through hour h may not exceed (1 + tolerance) x its cumulative plan through h, nor its daily
budget. Budget left unspent in early hours therefore carries forward to later hours; running ahead of
plan never carries. At hour 23 the cap is the daily budget itself.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ml.allocation.config import AllocationConfig

HOURS = 24


def _sorted_profiles(user_hours: pd.DataFrame) -> pd.DataFrame:
    """Each user's active hours, most active first (ties: earlier hour first)."""
    active = user_hours.loc[user_hours["share"] > 0, ["user_key", "hour", "share"]]
    bad = ~active["hour"].between(0, HOURS - 1)
    if bad.any():
        raise ValueError(f"user_hours.hour must be in 0..23; found {sorted(active.loc[bad, 'hour'].unique())[:5]}")
    return active.sort_values(["user_key", "share", "hour"], ascending=[True, False, True], kind="stable")


def slot_hours(user_hours: pd.DataFrame, user_keys, config: AllocationConfig,
               fallback_share: pd.Series | None = None) -> np.ndarray:
    """Hour of each of the K daily slots per user, shape (len(user_keys), K).

    Slot s goes to the user's (s mod n)-th most active hour, so the most active hours are filled first
    and a user active in fewer than K hours gets several slots in their top hour. Users without a
    profile get the platform's busiest hours (`fallback_share`, default: the summed profiles).
    """
    k = config.slots_per_user
    user_keys = pd.Index(user_keys)
    profiles = _sorted_profiles(user_hours)
    if fallback_share is None:
        fallback_share = profiles.groupby("hour")["share"].sum().reindex(range(HOURS), fill_value=0.0)
    fallback_order = np.lexsort((np.arange(HOURS), -fallback_share.reindex(range(HOURS), fill_value=0.0).to_numpy()))
    result = np.tile(fallback_order[np.arange(k) % HOURS], (len(user_keys), 1))

    profiles = profiles[profiles["user_key"].isin(user_keys)]
    if len(profiles):
        hours = profiles["hour"].to_numpy(np.int64)
        keys = profiles["user_key"].to_numpy()
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        counts = np.diff(np.r_[starts, len(keys)])
        rows = user_keys.get_indexer(keys[starts])
        picks = starts[:, None] + (np.arange(k)[None, :] % counts[:, None])
        result[rows] = hours[picks]
    return result


def inventory_share(slot_hour_matrix: np.ndarray) -> pd.Series:
    """Share of all slots that fall in each hour: the traffic forecast the schedule can actually serve."""
    counts = np.bincount(slot_hour_matrix.ravel(), minlength=HOURS).astype(float)
    total = counts.sum()
    return pd.Series(counts / total if total else np.full(HOURS, 1.0 / HOURS), index=pd.RangeIndex(HOURS, name="hour"))


def traffic_forecast(user_hours: pd.DataFrame, config: AllocationConfig,
                     hourly_traffic: pd.DataFrame | None = None) -> pd.Series:
    """Share of tomorrow's traffic per hour (index 0..23, sums to 1).

    `hourly_traffic` (hour, share), when given, is taken as is (e.g. measured from logs); otherwise the
    forecast is the share of the users' slots per hour, i.e. the inventory `slot_hours` will place.
    """
    if hourly_traffic is not None:
        share = hourly_traffic.groupby("hour")["share"].sum().reindex(range(HOURS), fill_value=0.0)
        if share.sum() <= 0:
            raise ValueError("hourly_traffic.share sums to 0; cannot build a pacing plan from it")
        share = share / share.sum()
        share.index.name = "hour"
        return share
    users = user_hours["user_key"].unique()
    return inventory_share(slot_hours(user_hours, users, config))


def pacing_plan(campaigns: pd.DataFrame, traffic_share: pd.Series) -> pd.DataFrame:
    """Planned spend per campaign and hour: daily_budget x the hour's traffic share."""
    share = traffic_share.reindex(range(HOURS), fill_value=0.0).to_numpy(float)
    budgets = campaigns["daily_budget"].to_numpy(float)
    return pd.DataFrame({
        "campaign_id": np.repeat(campaigns["campaign_id"].to_numpy(), HOURS),
        "hour": np.tile(np.arange(HOURS), len(campaigns)),
        "planned_spend": (budgets[:, None] * share[None, :]).ravel(),
    })


def cumulative_spend_caps(plan: pd.DataFrame, campaign_ids, daily_budgets, tolerance: float) -> np.ndarray:
    """Cap on cumulative spend through each hour, shape (len(campaign_ids), 24); see the module docstring."""
    wide = (plan.pivot_table(index="campaign_id", columns="hour", values="planned_spend", aggfunc="sum")
            .reindex(index=pd.Index(campaign_ids), columns=range(HOURS)).fillna(0.0).to_numpy(float))
    budgets = np.asarray(daily_budgets, dtype=float)[:, None]
    caps = np.minimum((1.0 + tolerance) * np.cumsum(wide, axis=1), budgets)
    caps[:, -1] = budgets[:, 0]  # the whole budget is available by the end of the day
    return caps
