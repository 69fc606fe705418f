"""Schedule validation: one row per broken rule, empty when the schedule is fine.

Independent of how the schedule was made (allocator, baselines, hand edits), so the orchestration's
blocking asset checks can call it on whatever lands in `ml.daily_ad_schedule`. Pacing uses the
carry-over rule of `pacing.py` (cumulative spend through each hour vs (1 + tolerance) x cumulative plan).
"""
from __future__ import annotations


import numpy as np
import pandas as pd

from ml.allocation.config import AllocationConfig
from ml.allocation.instance import in_flight
from ml.allocation.pacing import HOURS, cumulative_spend_caps
from ml.allocation.value import expected_cost

VIOLATION_COLUMNS = ["rule", "campaign_id", "user_key", "detail"]
# Relative slack for float summation order; the allocator keeps a larger margin below every cap.
_FLOAT_SLACK = 1e-9


def _violations(rule: str, campaign_id=None, user_key=None, detail=None) -> pd.DataFrame:
    detail = pd.Series(detail, dtype=object)
    n = len(detail)
    return pd.DataFrame({
        "rule": rule,
        "campaign_id": pd.Series(campaign_id if campaign_id is not None else [pd.NA] * n, dtype=object).to_numpy(),
        "user_key": pd.Series(user_key if user_key is not None else [pd.NA] * n, dtype=object).to_numpy(),
        "detail": detail.to_numpy(),
    })


def _over_count(schedule: pd.DataFrame, keys: list[str], limit: int, rule: str, what: str) -> pd.DataFrame:
    counts = schedule.groupby(keys, observed=True).size()
    over = counts[counts > limit].reset_index(name="n")
    if over.empty:
        return _violations(rule, detail=[])
    detail = [f"{n} {what} (limit {limit}) for {dict(zip(keys, values))}"
              for n, values in zip(over["n"], over[keys].itertuples(index=False))]
    return _violations(rule, over["campaign_id"] if "campaign_id" in keys else None, over["user_key"], detail)


def validate_schedule(schedule: pd.DataFrame, campaigns: pd.DataFrame, config: AllocationConfig,
                      pacing_plan: pd.DataFrame | None, candidates: pd.DataFrame | None = None) -> pd.DataFrame:
    """Violations (rule, campaign_id, user_key, detail). Rules: budget, user_ad_cap, user_campaign_cap,
    advertiser_diversity, slots_per_user, flight_dates, pacing (when `pacing_plan` is given) and
    coverage (when `candidates` is given: every user with an option of an in-flight, funded campaign
    must get at least one ad)."""
    found: list[pd.DataFrame] = []
    budgets = campaigns.drop_duplicates("campaign_id").set_index("campaign_id")["daily_budget"].astype(float)

    if len(schedule):
        spend = schedule.groupby("campaign_id")["expected_cost"].sum()
        limit = budgets.reindex(spend.index)
        over = spend[~(spend <= limit * (1 + _FLOAT_SLACK))]
        found.append(_violations("budget", over.index, None,
                                 [f"expected spend {s:.6g} > daily budget {limit[c]:.6g}" for c, s in over.items()]))

        found.append(_over_count(schedule, ["user_key", "ad_id"], config.max_impressions_per_user_ad,
                                 "user_ad_cap", "impressions of one ad"))
        found.append(_over_count(schedule, ["user_key", "campaign_id"], config.max_impressions_per_user_campaign,
                                 "user_campaign_cap", "impressions of one campaign"))
        found.append(_over_count(schedule, ["user_key", "advertiser_id"], config.max_ads_per_advertiser_per_user,
                                 "advertiser_diversity", "ads of one advertiser"))
        found.append(_over_count(schedule, ["user_key"], config.slots_per_user, "slots_per_user", "ads"))
        slots = schedule.groupby(["user_key", "slot"]).size()
        doubled = slots[slots > 1].reset_index()
        found.append(_violations("slots_per_user", None, doubled["user_key"],
                                 [f"slot {s} used twice" for s in doubled["slot"]]))

        found.append(_flight_violations(schedule, campaigns))
        if pacing_plan is not None:
            found.append(_pacing_violations(schedule, budgets, pacing_plan, config))
    if candidates is not None:
        found.append(_coverage_violations(schedule, campaigns, candidates))
    found = [f for f in found if len(f)]
    if not found:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in VIOLATION_COLUMNS})
    return pd.concat(found, ignore_index=True)


def _flight_violations(schedule: pd.DataFrame, campaigns: pd.DataFrame) -> pd.DataFrame:
    pairs = schedule[["campaign_id", "schedule_date"]].drop_duplicates()
    merged = pairs.merge(campaigns[["campaign_id", "start_date", "end_date"]].drop_duplicates("campaign_id"),
                         on="campaign_id", how="left")
    day = pd.to_datetime(merged["schedule_date"]).dt.normalize()
    bad = merged["start_date"].isna() | ~((pd.to_datetime(merged["start_date"]).dt.normalize() <= day)
                                           & (day <= pd.to_datetime(merged["end_date"]).dt.normalize()))
    bad_rows = merged[bad]
    detail = [f"scheduled on {d} outside flight {s}..{e}" if pd.notna(s) else f"campaign unknown, scheduled on {d}"
              for d, s, e in zip(bad_rows["schedule_date"], bad_rows["start_date"], bad_rows["end_date"])]
    return _violations("flight_dates", bad_rows["campaign_id"], None, detail)


def _pacing_violations(schedule: pd.DataFrame, budgets: pd.Series, pacing_plan: pd.DataFrame,
                       config: AllocationConfig) -> pd.DataFrame:
    campaign_ids = pd.Index(schedule["campaign_id"].unique())
    spend = (schedule.pivot_table(index="campaign_id", columns="hour", values="expected_cost", aggfunc="sum")
             .reindex(index=campaign_ids, columns=range(HOURS)).fillna(0.0).to_numpy(float))
    campaign_budgets = budgets.reindex(campaign_ids).to_numpy(float)
    caps = cumulative_spend_caps(pacing_plan, campaign_ids, campaign_budgets, config.pacing_tolerance)
    excess = np.cumsum(spend, axis=1) - caps - _FLOAT_SLACK * np.nan_to_num(campaign_budgets)[:, None]
    rows, hours = np.nonzero(excess > 0)
    detail = [f"cumulative spend through hour {h} exceeds (1+{config.pacing_tolerance:g}) x plan by {excess[r, h]:.6g}"
              for r, h in zip(rows, hours)]
    return _violations("pacing", campaign_ids[rows], None, detail)


def _coverage_violations(schedule: pd.DataFrame, campaigns: pd.DataFrame, candidates: pd.DataFrame) -> pd.DataFrame:
    """Users left without an ad although one of their candidates was still affordable.

    A candidate is eligible when its campaign is in flight and the budget the schedule left unspent
    still covers the candidate's expected cost: once every campaign a user could see has spent its
    budget, leaving that user unserved is the budget rule working, not a coverage failure.
    """
    day = schedule["schedule_date"].iloc[0] if len(schedule) else None
    if day is None:
        if "schedule_date" in candidates:
            day = candidates["schedule_date"].iloc[0]
        else:
            raise ValueError("coverage needs the schedule date: pass a non-empty schedule or candidates.schedule_date")
    live = campaigns.loc[in_flight(campaigns, day)].drop_duplicates("campaign_id").set_index("campaign_id")
    spent = schedule.groupby("campaign_id")["expected_cost"].sum() if len(schedule) else pd.Series(dtype=float)
    remaining = (live["daily_budget"].astype(float) - spent.reindex(live.index).fillna(0.0)).clip(lower=0.0)
    options = candidates[candidates["campaign_id"].isin(live.index)]
    if {"bid", "bid_type", "pctr", "pcvr"} <= set(options.columns):
        cost = expected_cost(options["bid"].to_numpy(float), options["bid_type"].to_numpy(object),
                             options["pctr"].to_numpy(float), options["pcvr"].to_numpy(float))
        affordable = cost <= options["campaign_id"].map(remaining).to_numpy(float) + 1e-9
        options = options[affordable]
    eligible_users = pd.Index(options["user_key"].unique())
    missing = eligible_users.difference(pd.Index(schedule["user_key"].unique()))
    return _violations("coverage", None, missing,
                       ["active user got no ad although a candidate's campaign could still afford it"] * len(missing))


def assert_valid(schedule: pd.DataFrame, campaigns: pd.DataFrame, config: AllocationConfig,
                 pacing_plan: pd.DataFrame | None, candidates: pd.DataFrame | None = None) -> None:
    """Raise with the first violations listed (for scripts and tests)."""
    violations = validate_schedule(schedule, campaigns, config, pacing_plan, candidates)
    if len(violations):
        raise AssertionError(f"{len(violations)} schedule violations, e.g.\n{violations.head(10).to_string()}")


__all__ = ["validate_schedule", "assert_valid", "VIOLATION_COLUMNS"]
