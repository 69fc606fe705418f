"""A reward model for context-free slates, cross-fitted so DR's correction term stays honest.

q_hat(item, position) = position click rate x item lift: the position rate is smoothed towards the
overall rate, the item lift (clicks over the clicks its positions predict) towards 1. Clicks are
rare (~0.5% on Open Bandit), so a free rate per (item, position) cell would be mostly zeros.
Each row's prediction comes from a model fitted on the other folds: a model that has seen the
row's own click would pull DR's residual r - q_hat towards zero and its interval with it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POSITION_PRIOR_ROWS = 100.0  # pseudo-rows at the overall click rate per position
ITEM_PRIOR_CLICKS = 2.0  # pseudo-clicks at lift 1 per item


@dataclass(frozen=True)
class CrossFittedClickRates:
    fold: np.ndarray  # per row: the fold it was held out in
    tables: np.ndarray  # (n_folds, n_items, n_positions): q_hat fitted without that fold

    def q_logged(self, actions: np.ndarray, positions: np.ndarray) -> np.ndarray:
        return self.tables[self.fold, actions, positions]

    def q_expected(self, distribution: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """sum_a pi(a | position) q_hat(a, position) per row, pi given as (n_items, n_positions)."""
        per_fold = (self.tables * distribution[None]).sum(axis=1)  # (n_folds, n_positions)
        return per_fold[self.fold, positions]


def fit_click_rates(actions: np.ndarray, positions: np.ndarray, rewards: np.ndarray, n_items: int,
                    n_positions: int) -> np.ndarray:
    """(n_items, n_positions) smoothed click rates from logged rows."""
    overall = rewards.mean() if len(rewards) else 0.0
    rows_by_position = np.bincount(positions, minlength=n_positions)
    clicks_by_position = np.bincount(positions, weights=rewards, minlength=n_positions)
    position_rate = (clicks_by_position + POSITION_PRIOR_ROWS * overall) / (rows_by_position + POSITION_PRIOR_ROWS)
    clicks_by_item = np.bincount(actions, weights=rewards, minlength=n_items)
    expected_by_item = np.bincount(actions, weights=position_rate[positions], minlength=n_items)
    lift = (clicks_by_item + ITEM_PRIOR_CLICKS) / (expected_by_item + ITEM_PRIOR_CLICKS)
    return np.clip(lift[:, None] * position_rate[None, :], 0.0, 1.0)


def cross_fit_click_rates(actions, positions, rewards, n_items: int, n_positions: int, n_folds: int = 5,
                          seed: int = 0) -> CrossFittedClickRates:
    actions, positions = np.asarray(actions, dtype=np.int64), np.asarray(positions, dtype=np.int64)
    rewards = np.asarray(rewards, dtype=float)
    if n_folds < 2:
        raise ValueError("cross-fitting needs at least 2 folds")
    fold = np.random.default_rng(seed).permutation(len(rewards)) % n_folds
    tables = np.stack([fit_click_rates(actions[fold != k], positions[fold != k], rewards[fold != k], n_items,
                                       n_positions) for k in range(n_folds)])
    return CrossFittedClickRates(fold, tables)


def direct_method_refit_bootstrap(actions, positions, rewards, target: np.ndarray, n_items: int,
                                  n_positions: int, n_bootstrap: int = 500, level: float = 0.95,
                                  seed: int = 0) -> tuple[float, float, float]:
    """DM's value of `target` ((n_items, n_positions) slot probabilities) with a percentile interval
    from resampling logged rows AND refitting the click rates on each resample.

    The interval `direct_method` reports holds the model fixed and so only sees context noise; with a
    context-free target that is almost nothing, while the model itself rests on a few dozen clicks.
    """
    actions, positions = np.asarray(actions, dtype=np.int64), np.asarray(positions, dtype=np.int64)
    rewards = np.asarray(rewards, dtype=float)

    def value(rows: np.ndarray) -> float:
        table = fit_click_rates(actions[rows], positions[rows], rewards[rows], n_items, n_positions)
        return float((table * target).sum(axis=0)[positions[rows]].mean())

    n = len(rewards)
    rng = np.random.default_rng(seed)
    replicates = np.array([value(rng.integers(0, n, n)) for _ in range(n_bootstrap)])
    low, high = np.quantile(replicates, [0.5 - level / 2, 0.5 + level / 2])
    return value(np.arange(n)), float(low), float(high)
