"""Offline evaluation of a day's schedule with the simulator's ground truth.

The product's schedule is compared with a random and a popularity schedule and with the same
allocator fed the oracle's true probabilities, all over the same candidates and constraints, and
all valued with the TRUE probabilities at the hour and slot each row was placed in.

The headline share compares value within budget (`capped_spend`: per campaign, expected value up
to its daily budget). Uncapped value would reward a schedule for planning more impressions than a
budget pays for, which a model that under-predicts its own CTR does by accident.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ml.allocation import AllocationConfig
from ml.allocation.baselines import oracle_schedule, popularity_schedule, random_schedule
from ml.allocation.instance import CANDIDATE_KEYS
from ml.allocation.value import schedule_value
from ml.ordering import in_key_order
from ml.privacy.pseudonyms import pseudonymize
from ml.simulator import GroundTruth
from ml.simulator.world import World


SCHEDULE_KEYS = ["user_key", "hour", "slot", "ad_id"]


def user_ids_by_key(truth: GroundTruth, key: str) -> pd.Series:
    """user_key (pseudonym, as in the warehouse) → the simulator's user_id, for ground-truth lookups."""
    user_ids = World.ids("user", np.arange(truth.world.n_users))
    return pd.Series(user_ids, index=[pseudonymize(int(u), key) for u in user_ids])


def true_probabilities_for(truth: GroundTruth, rows: pd.DataFrame, user_ids: pd.Series, day: dt.date,
                           hour_column: str = "hour", slot_column: str | None = "slot") -> tuple[np.ndarray, np.ndarray]:
    n = len(rows)
    slots = rows[slot_column].to_numpy() if slot_column else np.ones(n, dtype=int)
    return truth.true_probabilities(
        user_ids.reindex(rows["user_key"]).to_numpy(), rows["ad_id"].to_numpy(), np.repeat(np.datetime64(day), n),
        rows[hour_column].to_numpy(), slots,
    )


def evaluate_schedules(
    truth: GroundTruth, key: str, schedule: pd.DataFrame, scored_candidates: pd.DataFrame,
    campaigns: pd.DataFrame, user_hours: pd.DataFrame, schedule_date: dt.date, config: AllocationConfig,
) -> pd.DataFrame:
    """One row per policy: expected clicks, conversions, advertiser value, spend, and share of the oracle's value."""
    # Sums run in row order: the same rows read in another order must give the same table.
    schedule = in_key_order(schedule, SCHEDULE_KEYS)
    scored_candidates = in_key_order(scored_candidates, CANDIDATE_KEYS)
    user_ids = user_ids_by_key(truth, key)
    # The oracle sees the truth at the hour the candidate was scored for, in slot 1, like the rankers.
    candidate_pctr, candidate_pcvr = true_probabilities_for(truth, scored_candidates, user_ids, schedule_date,
                                                            slot_column=None)
    policies = {
        "product (champion rankers)": schedule,
        "random": random_schedule(scored_candidates, campaigns, user_hours, schedule_date, config).schedule,
        "popularity": popularity_schedule(scored_candidates, campaigns, user_hours, schedule_date, config).schedule,
        "oracle probabilities": oracle_schedule(scored_candidates, candidate_pctr, candidate_pcvr, campaigns,
                                                user_hours, schedule_date, config).schedule,
    }
    budgets = campaigns.drop_duplicates("campaign_id").set_index("campaign_id")["daily_budget"]
    rows = []
    for name, policy_schedule in policies.items():
        pctr, pcvr = true_probabilities_for(truth, policy_schedule, user_ids, schedule_date)
        rows.append({"policy": name, **schedule_value(policy_schedule, pctr, pcvr, daily_budget_by_campaign=budgets)})
    report = pd.DataFrame(rows)
    oracle_value = report.loc[report["policy"] == "oracle probabilities", "capped_spend"].iloc[0]
    report["share_of_oracle_value"] = report["capped_spend"] / oracle_value if oracle_value > 0 else np.nan
    return report
