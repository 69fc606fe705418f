"""Level correction for scoring pairs the logging policy rarely showed.

The rankers learn and are calibrated on logged impressions, which the logging policy picked because
it expected them to be clicked. The schedule scores candidates the policy would mostly not have
shown, and there the same model predicts too high: on the demo, its mean pCTR on the candidates was
1.3x the truth, so the allocator believed budgets were spent early and under-delivered them.
Weighting each logged row by 1 / propensity (the logging policy's probability of showing it)
re-weights the logged day towards "any ad could have been shown"; the ratio of weighted label to
weighted prediction is the level the model should be scaled by on such pairs (self-normalised IPS).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WEIGHT_CLIP_QUANTILE = 0.99  # a few near-zero propensities must not decide the estimate alone
FACTOR_RANGE = (0.25, 4.0)  # beyond this the estimate says more about the logs than about the model


@dataclass(frozen=True)
class LevelCorrection:
    factor: float
    rows: int
    effective_rows: float  # Kish effective sample size of the weights
    reason: str

    def as_metadata(self) -> dict[str, object]:
        return {"factor": round(self.factor, 4), "rows": self.rows,
                "effective_rows": round(self.effective_rows, 1), "reason": self.reason}


def ips_level_factor(labels, predictions, propensities) -> LevelCorrection:
    """Self-normalised IPS estimate of (mean label) / (mean prediction) on the re-weighted rows.

    Returns factor 1.0 with the reason when the rows carry no usable propensities (real logs
    without them) or no positive label.
    """
    labels = np.asarray(labels, dtype=float)
    predictions = np.asarray(predictions, dtype=float)
    propensities = np.asarray(propensities, dtype=float)
    usable = np.isfinite(propensities) & (propensities > 0) & np.isfinite(predictions)
    if not usable.any():
        return LevelCorrection(1.0, 0, 0.0, "no logging propensities: no correction")
    labels, predictions, weights = labels[usable], predictions[usable], 1.0 / propensities[usable]
    weights = np.minimum(weights, np.quantile(weights, WEIGHT_CLIP_QUANTILE))
    effective_rows = float(weights.sum() ** 2 / (weights**2).sum())
    if labels.sum() == 0 or predictions.sum() == 0:
        return LevelCorrection(1.0, int(usable.sum()), effective_rows, "no positive labels: no correction")
    factor = float((weights * labels).sum() / (weights * predictions).sum())
    clipped = float(np.clip(factor, *FACTOR_RANGE))
    reason = "self-normalised IPS" if clipped == factor else f"self-normalised IPS {factor:.3f}, clipped"
    return LevelCorrection(clipped, int(usable.sum()), effective_rows, reason)
