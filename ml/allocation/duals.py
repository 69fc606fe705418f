"""Dual prices (Lagrange multipliers) on campaign budgets, by projected subgradient steps.

With price lambda_c an option of campaign c is worth value - lambda_c x cost to the greedy. Each
iteration runs the greedy for all users at the current prices; a campaign over budget gets a higher
price, one under budget a lower one (never below 0), with steps shrinking as 1/sqrt(t). Prices of all
campaigns interact (shading one sends users to others), so instead of trusting the last iterate we keep
the prices whose greedy gave the most value once each campaign is scaled down to its budget — the
value the repair pass can actually keep.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ml.allocation.config import AllocationConfig
from ml.allocation.greedy import greedy_pick
from ml.allocation.instance import AllocationInstance

INITIAL_STEP = 0.3  # as a fraction of the price at which a campaign's best option is worth nothing


@dataclass
class DualSearch:
    prices: np.ndarray                       # per in-flight campaign (instance order)
    iterations: int
    history: list[dict] = field(default_factory=list)  # per iteration: over-budget campaigns, values


def adjusted_value(instance: AllocationInstance, prices: np.ndarray) -> np.ndarray:
    return instance.value - prices[instance.campaign_idx] * instance.cost


def budget_feasible_value(instance: AllocationInstance, picks: np.ndarray) -> tuple[float, np.ndarray]:
    """(value after scaling each over-budget campaign down to its budget, spend per campaign)."""
    rows = picks[picks >= 0]
    n_campaigns = len(instance.campaigns)
    value = np.bincount(instance.campaign_idx[rows], weights=instance.value[rows], minlength=n_campaigns)
    spend = np.bincount(instance.campaign_idx[rows], weights=instance.cost[rows], minlength=n_campaigns)
    kept_share = np.minimum(1.0, instance.budgets / np.where(spend > 0, spend, 1.0))
    return float((value * kept_share).sum()), spend


def find_dual_prices(instance: AllocationInstance, config: AllocationConfig) -> DualSearch:
    budgets = instance.budgets
    prices = np.zeros(len(budgets))
    if len(instance.value) == 0 or config.dual_iterations == 0:
        return DualSearch(prices, 0)
    price_ceiling = float(np.max(instance.value / instance.cost))
    best_value, best_prices = -np.inf, prices.copy()
    history: list[dict] = []
    iteration = 0
    for iteration in range(1, config.dual_iterations + 1):
        picks = greedy_pick(instance, adjusted_value(instance, prices), config)
        value, spend = budget_feasible_value(instance, picks)
        over = spend > budgets
        history.append({"iteration": iteration, "campaigns_over_budget": int(over.sum()),
                        "overspend": float(np.maximum(spend - budgets, 0).sum()),
                        "budget_feasible_value": value})
        if value > best_value:
            best_value, best_prices = value, prices.copy()
        if not over.any() and not prices.any():
            break  # no budget binds at zero prices: the plain greedy is already optimal for budgets
        relative_excess = np.clip((spend - budgets) / budgets, -1.0, 1.0)
        step = INITIAL_STEP * price_ceiling / np.sqrt(iteration)
        prices = np.clip(prices + step * relative_excess, 0.0, price_ceiling)
    return DualSearch(best_prices, iteration, history)
