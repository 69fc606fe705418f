"""Per-user greedy assignment, vectorized across users.

Each user's options are sorted by priority once; then one pass per rank position takes, for every
user at once, the option at that position if it fits the user's remaining slots, the per-campaign
cap and the per-advertiser cap. Per-(user, ad) caps are handled upstream as option copies.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.allocation.config import AllocationConfig
from ml.allocation.instance import AllocationInstance


@dataclass
class UserState:
    """What each user already holds: campaigns and advertisers of taken options, and how many."""
    taken_campaign: np.ndarray    # (n_users, K), -1 = free
    taken_advertiser: np.ndarray  # (n_users, K), -1 = free
    n_taken: np.ndarray           # (n_users,)

    @classmethod
    def empty(cls, n_users: int, k: int) -> "UserState":
        return cls(np.full((n_users, k), -1, np.int64), np.full((n_users, k), -1, np.int64),
                   np.zeros(n_users, np.int64))

    @classmethod
    def from_picks(cls, instance: AllocationInstance, picked_rows: np.ndarray, k: int) -> "UserState":
        state = cls.empty(instance.n_users, k)
        users = instance.user_idx[picked_rows]
        order = np.argsort(users, kind="stable")
        users, rows = users[order], picked_rows[order]
        counts = np.bincount(users, minlength=instance.n_users)
        rank = np.arange(len(users)) - np.repeat(np.r_[0, np.cumsum(counts)[:-1]], counts)
        state.taken_campaign[users, rank] = instance.campaign_idx[rows]
        state.taken_advertiser[users, rank] = instance.advertiser_idx[rows]
        state.n_taken = counts
        return state


def greedy_pick(instance: AllocationInstance, priority: np.ndarray, config: AllocationConfig,
                state: UserState | None = None, allowed: np.ndarray | None = None,
                slot_limit: int | None = None) -> np.ndarray:
    """Rows picked, as (n_users, K) row positions in pick order (-1 = none); only priority > 0 is taken.

    `state` (updated in place) holds what users already have; `allowed` masks rows out (e.g. taken,
    or their campaign has no budget left); `slot_limit` < K stops users at that many ads."""
    k = config.slots_per_user
    limit = k if slot_limit is None else min(slot_limit, k)
    state = UserState.empty(instance.n_users, k) if state is None else state
    picks = np.full((instance.n_users, k), -1, np.int64)
    options = instance.options
    if options.size == 0:
        return picks
    row_priority = priority if allowed is None else np.where(allowed, priority, -np.inf)
    option_priority = np.where(options >= 0, row_priority[np.maximum(options, 0)], -np.inf)
    order = np.argsort(-option_priority, axis=1, kind="stable")
    sorted_rows = np.take_along_axis(options, order, axis=1)
    sorted_priority = np.take_along_axis(option_priority, order, axis=1)
    n_new = np.zeros(instance.n_users, np.int64)
    cap_campaign = config.max_impressions_per_user_campaign
    cap_advertiser = config.max_ads_per_advertiser_per_user
    for position in range(options.shape[1]):
        live = np.flatnonzero((sorted_priority[:, position] > 0) & (state.n_taken < limit))
        if len(live) == 0:
            break
        rows = sorted_rows[live, position]
        campaign = instance.campaign_idx[rows]
        advertiser = instance.advertiser_idx[rows]
        fits = ((state.taken_campaign[live] == campaign[:, None]).sum(axis=1) < cap_campaign) & \
               ((state.taken_advertiser[live] == advertiser[:, None]).sum(axis=1) < cap_advertiser)
        users, rows = live[fits], rows[fits]
        slot = state.n_taken[users]
        state.taken_campaign[users, slot] = campaign[fits]
        state.taken_advertiser[users, slot] = advertiser[fits]
        state.n_taken[users] += 1
        picks[users, n_new[users]] = rows
        n_new[users] += 1
    return picks


def spend_by_campaign(instance: AllocationInstance, picks: np.ndarray) -> np.ndarray:
    rows = picks[picks >= 0]
    return np.bincount(instance.campaign_idx[rows], weights=instance.cost[rows], minlength=len(instance.campaigns))
