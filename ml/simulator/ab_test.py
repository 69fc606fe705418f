"""A simulated A/B test: the simulator serves the next day with a user-level split.

Control is the simulator's own logging policy; treatment serves a schedule. Outcomes are drawn from
the ground truth. Each campaign's daily budget is split between the arms in proportion to their
share of users, so one arm cannot spend the other's budget and bias the comparison.

How the treatment serves a schedule: on each impression opportunity of a user (a time and a slot,
the same opportunities the control arm sees), it shows one of the user's scheduled ads with
probability equal to the ad's share of the user's scheduled rows, among the ads whose campaign still
has budget in the arm. This is exactly the target policy ml.evaluation.schedule_ope values off
policy, so the estimate made before the test and the realised value measure the same thing. A user
the schedule does not cover, or whose scheduled campaigns are all spent, is served by the logging
policy (an ad server does not leave a slot empty); the readout reports how often that happened.
Logged propensities are the serving arm's probability of the ad shown.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml.simulator.behavior import generate_behavior
from ml.simulator.continuation import Continuation
from ml.simulator.creatives import ScheduledCreatives, uniform_creatives
from ml.simulator.delivery import DayDelivery, choose_ads, draw_opportunities, serve
from ml.simulator.events import AdEventBatch, ad_event_batch, behavior_rows, creative_ids, datetime_us
from ml.simulator.sessions import MICROS_PER_DAY, generate_sessions
from ml.simulator.world import World
from ml.simulator.writer import contract_table

ARMS = ("control", "treatment")
ARM_SPLIT_STREAM = 7  # seed streams, apart from the day's own [seed, 1, day]
ARM_SERVING_STREAM = 8


def treatment_users(world: World, treatment_share: float) -> np.ndarray:
    """(n_users,) bool: each user's arm, drawn once per world so a user keeps their arm every day."""
    if not 0.0 < treatment_share < 1.0:
        raise ValueError(f"treatment_share must be in (0, 1), got {treatment_share!r}")
    return np.random.default_rng([world.config.seed, ARM_SPLIT_STREAM]).random(world.n_users) < treatment_share


class SchedulePolicy:
    """Serves each user's scheduled ads in proportion to their rows (a ChooseAds; see the module doc)."""

    def __init__(self, world: World, user_idx: np.ndarray, ad_idx: np.ndarray) -> None:
        pairs = pd.DataFrame({"user": np.asarray(user_idx, np.int64), "ad": np.asarray(ad_idx, np.int64)})
        counts = pairs.groupby(["user", "ad"], sort=True).size().rename("rows").reset_index()
        width = int(counts.groupby("user").size().max()) if len(counts) else 1
        column = counts.groupby("user").cumcount().to_numpy()
        self.ads = np.full((world.n_users, width), -1, dtype=np.int64)
        self.shares = np.zeros((world.n_users, width))
        self.ads[counts["user"].to_numpy(), column] = counts["ad"].to_numpy()
        self.shares[counts["user"].to_numpy(), column] = counts["rows"].to_numpy(float)
        self.offered_opportunities = 0  # while some campaign had budget in the arm
        self.fallback_opportunities = 0

    def __call__(self, world: World, interest_rows: np.ndarray, user_idx: np.ndarray, eligible: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        self.offered_opportunities += len(user_idx)
        ads = self.ads[user_idx]
        weights = np.where(ads >= 0, self.shares[user_idx], 0.0) * eligible[np.maximum(ads, 0)]
        totals = weights.sum(axis=1)
        cumulative = np.cumsum(weights, axis=1)
        draws = rng.random(len(user_idx)) * totals
        picked = np.minimum((cumulative <= draws[:, None]).sum(axis=1), ads.shape[1] - 1)
        rows = np.arange(len(user_idx))
        chosen = ads[rows, picked]
        propensity = np.divide(weights[rows, picked], totals, out=np.zeros(len(rows)), where=totals > 0)
        fallback = np.flatnonzero(totals <= 0)
        if len(fallback):
            chosen[fallback], propensity[fallback] = choose_ads(world, interest_rows[fallback], user_idx[fallback],
                                                                eligible, rng)
            self.fallback_opportunities += len(fallback)
        return chosen, propensity


@dataclass
class ServedDay:
    """One served A/B day: its landing tables, what each arm delivered, and the state after it."""

    day: dt.date
    landing: dict[str, pa.Table]  # behavior_events and ad_events landing on the day, in the contract
    impressions: pd.DataFrame  # one row per impression: arm, ids, slot, outcomes (all, even those landing later)
    users: pd.DataFrame  # user_id, arm, opportunities: every active user of the day
    campaigns: pd.DataFrame  # campaign_id, arm, budget, spend
    truth: pd.DataFrame  # impression_id, user_id, ad_id, ts, slot, true_pctr, true_pcvr (ground-truth log)
    continuation: Continuation
    treatment_fallback_share: float  # of treatment opportunities offered while budget lasted, those the
    # schedule could not fill (user not scheduled, or their scheduled campaigns spent)


def serve_ab_day(world: World, continuation: Continuation, schedule_user_idx: np.ndarray,
                 schedule_ad_idx: np.ndarray, treatment_share: float = 0.5,
                 schedule_creatives: tuple[np.ndarray, np.ndarray] | None = None) -> ServedDay:
    """Serve day `continuation.next_day_index`: control by the logging policy, treatment by the schedule.

    `schedule_creatives`: per schedule row, the creative position it drew (-1: none) and that draw's
    probability; the treatment arm shows those (the control arm's creatives are uniform)."""
    config = world.config
    d = continuation.next_day_index
    start_us = int(np.datetime64(config.start_date, "us").astype(np.int64))
    day_start_us = start_us + d * MICROS_PER_DAY
    # The day's own stream, as simulate() would have drawn it: same sessions, behaviour and opportunities.
    rng = np.random.default_rng([config.seed, 1, d])
    sessions = generate_sessions(world, d, day_start_us, rng)
    behavior = generate_behavior(world, sessions, rng)
    opportunities = draw_opportunities(world, sessions, rng)

    treated = treatment_users(world, treatment_share)
    opportunity_treated = treated[sessions.active_users[opportunities.rows]]
    budget = np.where(world.campaign_active(d), world.campaign_daily_budget, 0.0)
    policy = SchedulePolicy(world, schedule_user_idx, schedule_ad_idx)
    planned_creatives = (uniform_creatives if schedule_creatives is None else
                         ScheduledCreatives(world, schedule_user_idx, schedule_ad_idx, *schedule_creatives))
    arms = {"control": (~opportunity_treated, choose_ads, uniform_creatives, 1.0 - treatment_share),
            "treatment": (opportunity_treated, policy, planned_creatives, treatment_share)}

    next_event_id = continuation.next_event_id
    behavior_columns = behavior_rows(world, behavior, next_event_id)
    next_event_id += len(behavior)
    deliveries: dict[str, DayDelivery] = {}
    batches: dict[str, AdEventBatch] = {}
    for code, (arm, (mask, choose, choose_creatives, share)) in enumerate(arms.items()):
        arm_rng = np.random.default_rng([config.seed, ARM_SERVING_STREAM, d, code])
        deliveries[arm] = serve(world, sessions, opportunities.take(np.flatnonzero(mask)), choose, budget * share,
                                arm_rng, choose_creatives)
        batches[arm] = ad_event_batch(deliveries[arm], next_event_id)
        next_event_id += len(batches[arm].event_id)

    state = Continuation(d + 1, next_event_id, dict(continuation.pending))
    landing_now = state.due(d)
    for batch in batches.values():
        landing_day = (batch.ts_us - start_us) // MICROS_PER_DAY
        landing_now.append(batch.take(np.flatnonzero(landing_day == d)))
        later = np.flatnonzero(landing_day > d)
        state.add(batch.take(later), landing_day[later])
    ad_events = contract_table("ad_events", AdEventBatch.concat(landing_now).rows(world))

    opportunities_per_user = np.bincount(opportunities.rows, minlength=len(sessions.active_users))
    return ServedDay(
        day=config.day(d),
        landing={"behavior_events": contract_table("behavior_events", behavior_columns), "ad_events": ad_events},
        impressions=pd.concat([_impressions(world, arm, deliveries[arm], batches[arm]) for arm in ARMS],
                              ignore_index=True),
        users=pd.DataFrame({"user_id": world.ids("user", sessions.active_users),
                            "arm": np.where(treated[sessions.active_users], "treatment", "control"),
                            "opportunities": opportunities_per_user}),
        campaigns=pd.concat([pd.DataFrame({"campaign_id": world.ids("campaign", np.arange(config.n_campaigns)),
                                           "arm": arm, "budget": budget * arms[arm][3],
                                           "spend": deliveries[arm].campaign_spend}) for arm in ARMS],
                            ignore_index=True),
        truth=pd.concat([_truth(world, deliveries[arm], batches[arm]) for arm in ARMS], ignore_index=True),
        continuation=state,
        treatment_fallback_share=policy.fallback_opportunities / max(policy.offered_opportunities, 1),
    )


def _impressions(world: World, arm: str, delivery: DayDelivery, batch: AdEventBatch) -> pd.DataFrame:
    n = delivery.n_impressions
    clicks = np.bincount(delivery.click_impression, minlength=n)
    conversions = np.bincount(delivery.conversion_impression, minlength=n)
    cost = (np.bincount(delivery.click_impression, weights=delivery.click_cost, minlength=n)
            + np.bincount(delivery.conversion_impression, weights=delivery.conversion_cost, minlength=n))
    return pd.DataFrame({
        "arm": arm, "impression_id": batch.impression_id[:n], "user_id": world.ids("user", delivery.user_idx),
        "ad_id": world.ids("ad", delivery.ad_idx),
        "campaign_id": world.ids("campaign", world.ad_campaign[delivery.ad_idx]), "slot": delivery.slot,
        "propensity": delivery.propensity, "clicks": clicks, "conversions": conversions,
        # Advertiser value = what the advertiser pays: the bid on a click (CPC) or a conversion (CPA).
        "value": cost,
    })


def _truth(world: World, delivery: DayDelivery, batch: AdEventBatch) -> pd.DataFrame:
    n = delivery.n_impressions
    return pd.DataFrame({
        "impression_id": batch.impression_id[:n], "user_id": world.ids("user", delivery.user_idx),
        "ad_id": world.ids("ad", delivery.ad_idx), "ts": datetime_us(delivery.ts_us),
        "slot": delivery.slot.astype(np.int32), "true_pctr": delivery.true_pctr, "true_pcvr": delivery.true_pcvr,
        "creative_id": pd.array(creative_ids(world, delivery.creative_idx).to_pandas(), dtype="Int64"),
    })


def served_day_dir(data_root: Path, day: dt.date) -> Path:
    return Path(data_root) / "ab_tests" / day.isoformat()


_FRAMES = ("impressions", "users", "campaigns", "truth")


def save_served_day(served: ServedDay, directory: Path) -> Path:
    """Write a served day under `directory` (replacing an earlier run of the same day)."""
    directory = Path(directory)
    shutil.rmtree(directory, ignore_errors=True)
    (directory / "landing").mkdir(parents=True)
    for table, rows in served.landing.items():
        pq.write_table(rows, directory / "landing" / f"{table}.parquet")
    for name in _FRAMES:
        getattr(served, name).to_parquet(directory / f"{name}.parquet", index=False)
    served.continuation.save(directory / "continuation")
    (directory / "served.json").write_text(json.dumps({
        "day": served.day.isoformat(), "treatment_fallback_share": served.treatment_fallback_share}, indent=2))
    return directory


def load_served_day(directory: Path) -> ServedDay:
    directory = Path(directory)
    meta = json.loads((directory / "served.json").read_text())
    return ServedDay(
        day=dt.date.fromisoformat(meta["day"]),
        landing={path.stem: pq.read_table(path) for path in sorted((directory / "landing").glob("*.parquet"))},
        **{name: pd.read_parquet(directory / f"{name}.parquet") for name in _FRAMES},
        continuation=Continuation.load(directory / "continuation"),
        treatment_fallback_share=float(meta["treatment_fallback_share"]),
    )
