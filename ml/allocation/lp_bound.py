"""The exact LP relaxation of the allocation (no hours), solved with HiGHS: an upper bound on value.

Variables x[option] in [0, 1] (an option is a (user, ad) impression; the per-(user, ad) cap appears as
option copies exactly as in the allocator). Constraints: per user sum x <= K; per (user, campaign)
sum x <= campaign cap; per (user, advertiser) sum x <= m; per campaign sum cost x <= daily budget.
Pacing only removes schedules, so the bound also holds for the paced allocator. Meant for small
instances (thousands to ~100k options).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import linprog

from ml.allocation.config import AllocationConfig
from ml.allocation.instance import AllocationInstance, build_instance


@dataclass
class LPBound:
    value: float                 # optimal LP objective: the upper bound on expected value
    x: np.ndarray                # fractional solution per option (instance row order)
    budget_duals: pd.Series      # shadow price of each campaign budget (campaign_id index)
    status: str
    instance: AllocationInstance


def _group_rows(keys: list[np.ndarray], limit: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(member options, their constraint ids, number of constraints) for groups that can actually exceed `limit` (others are redundant)."""
    group, _ = pd.factorize(pd.MultiIndex.from_arrays(keys)) if len(keys) > 1 else pd.factorize(keys[0])
    sizes = np.bincount(group)
    binding = sizes > limit
    renumber = np.cumsum(binding) - 1
    member = binding[group]
    return np.flatnonzero(member), renumber[group[member]], int(binding.sum())


def lp_upper_bound(candidates: pd.DataFrame, campaigns: pd.DataFrame, schedule_date: dt.date,
                   config: AllocationConfig = AllocationConfig()) -> LPBound:
    instance = build_instance(candidates, campaigns, schedule_date, config)
    n = len(instance.value)
    blocks, limits = [], []
    for keys, limit in [([instance.user_idx], config.slots_per_user),
                        ([instance.user_idx, instance.campaign_idx], config.max_impressions_per_user_campaign),
                        ([instance.user_idx, instance.advertiser_idx], config.max_ads_per_advertiser_per_user)]:
        columns, row_ids, n_rows = _group_rows(keys, limit)
        if n_rows:
            blocks.append(sparse.csr_matrix((np.ones(len(columns)), (row_ids, columns)), shape=(n_rows, n)))
            limits.append(np.full(n_rows, float(limit)))
    n_campaigns = len(instance.campaigns)
    budget_block = sparse.csr_matrix((instance.cost, (instance.campaign_idx, np.arange(n))), shape=(n_campaigns, n))
    blocks.append(budget_block)
    limits.append(instance.budgets)
    result = linprog(-instance.value, A_ub=sparse.vstack(blocks).tocsr(), b_ub=np.concatenate(limits),
                     bounds=(0.0, 1.0), method="highs")
    if result.status != 0:
        raise RuntimeError(f"HiGHS did not solve the allocation LP: {result.message}")
    duals = -result.ineqlin.marginals[-n_campaigns:]
    return LPBound(value=float(-result.fun), x=result.x,
                   budget_duals=pd.Series(duals, index=instance.campaigns["campaign_id"].to_numpy(), name="budget_dual"),
                   status=result.message, instance=instance)
