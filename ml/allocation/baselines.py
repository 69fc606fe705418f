"""Baseline schedules under the same constraints, and the oracle input for the same allocator.

- random: each user's options in a seeded random order (no values, no prices);
- popularity: one order for everybody, by an ad's popularity (default: its mean pCTR over all users);
- oracle: the allocator fed the simulator's TRUE probabilities instead of the rankers' predictions.
All go through `allocate`, so budgets, pacing, caps, diversity and flight dates hold for them too.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ml.allocation.allocator import AllocationResult, allocate
from ml.allocation.config import AllocationConfig
from ml.allocation.instance import CANDIDATE_KEYS
from ml.ordering import in_key_order


def random_schedule(candidates: pd.DataFrame, campaigns: pd.DataFrame, user_hours: pd.DataFrame,
                    schedule_date: dt.date, config: AllocationConfig = AllocationConfig()) -> AllocationResult:
    candidates = in_key_order(candidates, CANDIDATE_KEYS)  # each row's random number must not depend on order
    rng = np.random.default_rng(config.seed + 1)
    priority = rng.random(len(candidates)) + 1e-12  # > 0: every option may be taken
    return allocate(candidates, campaigns, user_hours, schedule_date, config, priority_override=priority)


def popularity_schedule(candidates: pd.DataFrame, campaigns: pd.DataFrame, user_hours: pd.DataFrame,
                        schedule_date: dt.date, config: AllocationConfig = AllocationConfig(),
                        ad_popularity: pd.Series | None = None) -> AllocationResult:
    """`ad_popularity` (ad_id index, e.g. 7-day clicks); default: each ad's mean pCTR across users."""
    candidates = in_key_order(candidates, CANDIDATE_KEYS)  # float means must not depend on row order
    if ad_popularity is None:
        ad_popularity = candidates.groupby("ad_id")["pctr"].mean()
    popularity = candidates["ad_id"].map(ad_popularity).fillna(0.0).to_numpy(float)
    priority = popularity - popularity.min() + 1e-9  # keep the order, make every option eligible
    return allocate(candidates, campaigns, user_hours, schedule_date, config, priority_override=priority)


def with_true_probabilities(candidates: pd.DataFrame, true_pctr, true_pcvr) -> pd.DataFrame:
    """The candidates with pctr/pcvr replaced by the caller's true probabilities (one per row), to feed
    `allocate` as the oracle schedule."""
    true_pctr, true_pcvr = np.asarray(true_pctr, dtype=float), np.asarray(true_pcvr, dtype=float)
    if len(true_pctr) != len(candidates) or len(true_pcvr) != len(candidates):
        raise ValueError(f"need one true pCTR and pCVR per candidate row ({len(candidates)})")
    oracle = candidates.copy()
    oracle["pctr"], oracle["pcvr"] = true_pctr, true_pcvr
    return oracle


def oracle_schedule(candidates: pd.DataFrame, true_pctr, true_pcvr, campaigns: pd.DataFrame,
                    user_hours: pd.DataFrame, schedule_date: dt.date,
                    config: AllocationConfig = AllocationConfig()) -> AllocationResult:
    return allocate(with_true_probabilities(candidates, true_pctr, true_pcvr), campaigns, user_hours,
                    schedule_date, config)
