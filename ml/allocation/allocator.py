"""The daily per-user ad schedule: dual prices on budgets, a vectorized greedy, pacing repair, refill.

Method (all steps vectorized across users; loops only over bisection steps, rank positions and hours):
1. `build_instance` keeps options of in-flight campaigns and computes expected value and cost.
2. `find_dual_prices` moves each campaign's budget multiplier lambda_c against its budget (subgradient).
3. The greedy gives each user up to K options by value - lambda_c x cost, respecting the per-user
   campaign cap, the advertiser diversity cap m and (as option copies) the per-(user, ad) cap.
4. Each user's picks go to their slots (`pacing.slot_hours`: most active hours first); which pick
   takes which slot is shuffled (seeded), since scores do not depend on the hour and shuffling spreads
   every campaign over the hours like the inventory the pacing plan is built from.
5. `trim_to_caps` drops the least valuable rows until cumulative spend per campaign and hour is under
   (1 + tolerance) x the cumulative plan and the budget (carry-over rule in `pacing.py`); each
   user's first ad is trimmed (and so kept) before anyone's second ad, for coverage.
6. Refill rounds offer the freed slots to options whose campaign still has budget, then trim again.
Expected spend therefore never exceeds a daily budget, by construction.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.allocation.config import AllocationConfig
from ml.allocation.duals import DualSearch, adjusted_value, find_dual_prices
from ml.allocation.greedy import UserState, greedy_pick
from ml.allocation.instance import AllocationInstance, build_instance
from ml.allocation.pacing import (HOURS, cumulative_spend_caps, inventory_share, pacing_plan, slot_hours,
                                  traffic_forecast)
from ml.allocation.reasons import build_reasons
from ml.allocation.repair import trim_to_caps
from ml.ordering import in_key_order

SCHEDULE_COLUMNS = ["user_key", "schedule_date", "hour", "slot", "ad_id", "campaign_id", "advertiser_id",
                    "pctr", "pcvr", "bid", "bid_type", "expected_value", "expected_cost", "source", "reason",
                    "why"]


@dataclass
class AllocationResult:
    schedule: pd.DataFrame
    pacing_plan: pd.DataFrame                   # campaign_id, hour, planned_spend
    diagnostics: dict = field(default_factory=dict)

    @property
    def total_value(self) -> float:
        return float(self.schedule["expected_value"].sum())


def _place_in_slots(picks: np.ndarray, used: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Slot position (0..K-1) for each pick: the user's lowest free positions, shuffled among the picks."""
    n_users, k = picks.shape
    n_new = (picks >= 0).sum(axis=1)
    free_first = np.argsort(np.where(used, k, 0) + np.arange(k)[None, :], axis=1, kind="stable")
    shuffle_key = rng.random((n_users, k))
    shuffle_key[np.arange(k)[None, :] >= n_new[:, None]] = np.inf
    shuffled = np.argsort(shuffle_key, axis=1, kind="stable")
    positions = np.take_along_axis(free_first, shuffled, axis=1)
    return np.where(picks >= 0, positions, -1)


def _empty_schedule() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in SCHEDULE_COLUMNS})


def allocate(candidates: pd.DataFrame, campaigns: pd.DataFrame, user_hours: pd.DataFrame,
             schedule_date: dt.date, config: AllocationConfig = AllocationConfig(),
             hourly_traffic: pd.DataFrame | None = None, use_dual_prices: bool = True,
             priority_override: np.ndarray | None = None) -> AllocationResult:
    """Schedule for one day. `candidates` carries user_key, ad_id, campaign_id, pctr, pcvr, bid,
    bid_type (+ optional source, category_id, top{k}_feature / explanation for reasons).

    `use_dual_prices=False` is the naive greedy (plain value order; same repair); `priority_override`
    (one value per candidates row, > 0) replaces the value order for baselines such as random or
    popularity, and also disables dual prices."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    frame = candidates.copy()
    if priority_override is not None:
        frame["_priority"] = np.asarray(priority_override, dtype=float)
    instance = build_instance(frame, campaigns, schedule_date, config)
    # Sums over hours and users happen in row order; the profiles' order must not move the plan.
    user_hours = in_key_order(user_hours, ["user_key", "hour"])
    if hourly_traffic is not None:
        hourly_traffic = in_key_order(hourly_traffic, ["hour"])
    rng = np.random.default_rng(config.seed)
    k = config.slots_per_user

    slot_hour = slot_hours(user_hours, instance.user_keys, config)
    share = inventory_share(slot_hour) if hourly_traffic is None else traffic_forecast(user_hours, config, hourly_traffic)
    plan = pacing_plan(instance.campaigns, share)
    caps = cumulative_spend_caps(plan, instance.campaigns["campaign_id"], instance.budgets, config.pacing_tolerance)
    timings["prepare_s"] = time.perf_counter() - started

    t0 = time.perf_counter()
    if priority_override is not None:
        search = DualSearch(np.zeros(len(instance.campaigns)), 0)
        priority = instance.rows["_priority"].to_numpy(float)
    elif use_dual_prices:
        search = find_dual_prices(instance, config)
        priority = adjusted_value(instance, search.prices)
    else:
        search = DualSearch(np.zeros(len(instance.campaigns)), 0)
        priority = instance.value.copy()
    timings["dual_prices_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    committed_rows = np.zeros(0, np.int64)
    committed_positions = np.zeros(0, np.int64)
    used = np.zeros((instance.n_users, k), dtype=bool)
    cumulative = np.zeros((len(instance.campaigns), HOURS))
    taken = np.zeros(len(instance.value), dtype=bool)
    trimmed = 0
    # Coverage stage first (one ad per user, repeated for users whose ad the repair dropped), then the
    # fill stage up to K; later rounds in each stage refill what the repair freed.
    rounds = [(1, r) for r in range(config.refill_rounds + 1)] + [(k, r) for r in range(config.refill_rounds + 1)]
    for slot_limit, round_number in rounds:
        budget_left = caps[:, -1] - cumulative[:, -1]
        allowed = ~taken & (instance.cost <= budget_left[instance.campaign_idx])
        # Coverage and refills may use options the prices priced out, after all others.
        strict = slot_limit == k and round_number == 0
        round_priority = priority if strict else np.where(priority > 0, priority, 1e-9 * instance.value)
        state = UserState.from_picks(instance, committed_rows, k)
        had_none = state.n_taken == 0
        picks = greedy_pick(instance, round_priority, config, state=state, allowed=allowed, slot_limit=slot_limit)
        if not (picks >= 0).any():
            if strict or slot_limit == 1:
                continue
            break
        positions = _place_in_slots(picks, used, rng)
        users, pick_rank = np.nonzero(picks >= 0)
        rows, row_positions = picks[users, pick_rank], positions[users, pick_rank]
        protected = had_none[users] & (pick_rank == 0)
        keep, cumulative = _trim_coverage_first(instance, rows, slot_hour[users, row_positions],
                                                round_priority[rows], protected, caps, cumulative)
        trimmed += int((~keep).sum())
        # A trimmed option may come back in a later round: it may land in another slot's hour.
        taken[rows[keep]] = True
        committed_rows = np.r_[committed_rows, rows[keep]]
        committed_positions = np.r_[committed_positions, row_positions[keep]]
        used[users[keep], row_positions[keep]] = True
    timings["assign_and_repair_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    schedule = _schedule_frame(instance, committed_rows, committed_positions, slot_hour, schedule_date)
    timings["schedule_frame_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - started
    diagnostics = _diagnostics(instance, search, schedule, plan, share, trimmed, timings)
    return AllocationResult(schedule=schedule, pacing_plan=plan, diagnostics=diagnostics)


def _trim_coverage_first(instance: AllocationInstance, rows: np.ndarray, hours: np.ndarray, priority: np.ndarray,
                         protected: np.ndarray, caps: np.ndarray, cumulative: np.ndarray):
    """Trim a user's only ad against the caps before any second ad, so a second ad in an early hour
    cannot use up the room a first ad needs later in the day (coverage before value)."""
    keep = np.zeros(len(rows), dtype=bool)
    for phase in (protected, ~protected):
        phase_keep, cumulative = trim_to_caps(instance.campaign_idx[rows[phase]], hours[phase],
                                              instance.cost[rows[phase]], priority[phase],
                                              np.zeros(int(phase.sum()), dtype=bool), caps, cumulative)
        keep[phase] = phase_keep
    return keep, cumulative


def _schedule_frame(instance: AllocationInstance, rows: np.ndarray, positions: np.ndarray,
                    slot_hour: np.ndarray, schedule_date: dt.date) -> pd.DataFrame:
    if len(rows) == 0:
        return _empty_schedule()
    chosen = instance.rows.iloc[rows].reset_index(drop=True)
    users = instance.user_idx[rows]
    out = pd.DataFrame({
        "user_key": chosen["user_key"].to_numpy(),
        "schedule_date": pd.Timestamp(schedule_date).date(),
        "hour": slot_hour[users, positions].astype(np.int64),
        "slot": positions.astype(np.int64) + 1,
    })
    for column in ["ad_id", "campaign_id", "advertiser_id", "pctr", "pcvr", "bid", "bid_type",
                   "expected_value", "expected_cost"]:
        out[column] = chosen[column].to_numpy()
    out["source"] = chosen["source"].to_numpy() if "source" in chosen else "interest"
    out["reason"] = build_reasons(chosen).to_numpy()
    # The CTR ranker's largest positive SHAP contributions in words (ml.rankers.why), when scored by one.
    out["why"] = chosen["why"].to_numpy() if "why" in chosen else None
    return out.sort_values(["user_key", "slot"], kind="stable").reset_index(drop=True)


def _diagnostics(instance: AllocationInstance, search: DualSearch, schedule: pd.DataFrame,
                 plan: pd.DataFrame, share: pd.Series, trimmed: int, timings: dict) -> dict:
    campaigns = instance.campaigns
    spend = schedule.groupby("campaign_id")["expected_cost"].sum() if len(schedule) else pd.Series(dtype=float)
    utilisation = pd.DataFrame({
        "campaign_id": campaigns["campaign_id"].to_numpy(),
        "daily_budget": campaigns["daily_budget"].to_numpy(float),
        "expected_spend": spend.reindex(campaigns["campaign_id"]).fillna(0.0).to_numpy(),
        "dual_price": search.prices,
    })
    utilisation["utilisation"] = utilisation["expected_spend"] / utilisation["daily_budget"]
    by_hour = plan.groupby("hour")["planned_spend"].sum().reindex(range(HOURS), fill_value=0.0)
    spent_by_hour = (schedule.groupby("hour")["expected_cost"].sum() if len(schedule) else pd.Series(dtype=float))
    spend_by_hour = pd.DataFrame({"hour": np.arange(HOURS), "planned_spend": by_hour.to_numpy(),
                                  "expected_spend": spent_by_hour.reindex(range(HOURS)).fillna(0.0).to_numpy(),
                                  "traffic_share": share.reindex(range(HOURS)).to_numpy()})
    return {
        "dual_prices": utilisation[["campaign_id", "dual_price"]],
        "dual_iterations": search.iterations,
        "dual_history": pd.DataFrame(search.history),
        "budget_utilisation": utilisation,
        "spend_by_hour": spend_by_hour,
        "total_expected_value": float(schedule["expected_value"].sum()) if len(schedule) else 0.0,
        "users_with_candidates": int(instance.n_users),
        "users_served": int(schedule["user_key"].nunique()) if len(schedule) else 0,
        "rows_scheduled": int(len(schedule)),
        "rows_trimmed_by_repair": trimmed,
        "campaigns_in_flight": int(len(campaigns)),
        "timings": timings,
    }
