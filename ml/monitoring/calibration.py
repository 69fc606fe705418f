"""Calibration of a model on final labels: observed / predicted, per day.

Ratio = sum of labels / sum of predictions over a day's logged rows: 1 is calibrated, below 1 the
model predicts too high, above 1 too low. Outside [0.8, 1.25] (a fifth either way, symmetric on the
log scale) the model's expected value is off by enough to move budgets, so the check warns.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import poisson

CALIBRATION_RANGE = (0.8, 1.25)
# A ratio outside the band only counts when the labels could not plausibly have come from the model:
# observed positives against a Poisson with the predicted mean, two-sided. With a handful of expected
# conversions a ratio of 2 is noise (3 seen where 1.5 expected: p = 0.19), not decay.
SIGNIFICANCE = 0.05


def observed_to_predicted_by_day(days, labels, predictions) -> pd.DataFrame:
    """One row per day: rows, observed (label sum), predicted (prediction sum), ratio (NaN when
    nothing was predicted), in day order."""
    frame = pd.DataFrame({"day": pd.to_datetime(pd.Series(days)).dt.date.to_numpy(),
                          "observed": np.asarray(labels, dtype=float),
                          "predicted": np.asarray(predictions, dtype=float)})
    table = frame.groupby("day", sort=True).agg(
        rows=("observed", "size"), observed=("observed", "sum"), predicted=("predicted", "sum")).reset_index()
    table["ratio"] = table["observed"] / table["predicted"].where(table["predicted"] > 0)
    return table


def beyond_noise(observed: float, predicted: float, significance: float = SIGNIFICANCE) -> bool:
    """Whether `observed` positives are implausible under Poisson(`predicted`) (two-sided)."""
    if not (np.isfinite(predicted) and predicted > 0):
        return False
    p_value = 2 * min(poisson.cdf(observed, predicted), poisson.sf(observed - 1, predicted))
    return bool(min(p_value, 1.0) < significance)


def is_calibrated(ratio: float, allowed: tuple[float, float] = CALIBRATION_RANGE) -> bool:
    """NaN (no prediction mass) counts as not calibrated: the check cannot vouch for the model."""
    return bool(np.isfinite(ratio) and allowed[0] <= ratio <= allowed[1])
