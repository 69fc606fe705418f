"""Two schedules of the same day compared under the simulator's truth, user by user.

Each schedule row is valued with the true click and conversion probabilities of its (user, ad,
hour, slot), summed per user; the difference of two
schedules' totals gets a paired bootstrap interval that resamples users, so users served alike by
both cancel out. For benchmarks that swap one part of the product (benchmarks/cold_start.py,
benchmarks/encoder_worth.py).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ml.allocation.value import expected_value

BOOTSTRAP_DRAWS = 2000


def value_by_user(schedule: pd.DataFrame, true_pctr: np.ndarray, true_pcvr: np.ndarray,
                  flagged_ads: set | None = None) -> pd.DataFrame:
    """Per user_key: `value` (true expected value of the user's planned impressions, not capped by
    budgets; probabilities per schedule row from ml.evaluation.policy.true_probabilities_for), and
    of the impressions of `flagged_ads` (`flagged_value`, `flagged_impressions`)."""
    value = expected_value(schedule["bid"], schedule["bid_type"], true_pctr, true_pcvr)
    flagged = schedule["ad_id"].isin(flagged_ads or set()).to_numpy()
    rows = pd.DataFrame({"user_key": schedule["user_key"].to_numpy(), "value": value,
                         "flagged_value": np.where(flagged, value, 0.0), "flagged_impressions": flagged.astype(int)})
    return rows.groupby("user_key").sum()


def paired_bootstrap_total(a: np.ndarray, b: np.ndarray, seed: int = 0,
                           draws: int = BOOTSTRAP_DRAWS) -> tuple[float, float, float]:
    """Total of `a` minus total of `b` (one entry per user, same order) and its 95% interval."""
    difference = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    totals = difference[rng.integers(0, len(difference), (draws, len(difference)))].sum(axis=1)
    return float(difference.sum()), float(np.quantile(totals, 0.025)), float(np.quantile(totals, 0.975))
