"""Post-hoc probability calibration fitted on the validation day.

Bids are priced on pCTR x bid, so a ranker that ranks well but is off in level overspends or
underspends budgets; calibration fixes the level without touching the ranking much.
- platt (the default): logistic regression on the raw logit, two parameters and strictly
  increasing, so the ranking and the AUC are exactly the raw model's;
- isotonic: a monotone step function, flexible but flat within each step: the ties it makes cost
  AUC. Measured on the demo's CTR test day: -0.0028 AUC (paired SE 0.0011) against the raw model,
  for an ECE no better than Platt's (LightGBM's binary objective is close to calibrated already).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

CalibrationMethod = Literal["auto", "isotonic", "platt", "none"]
PROBABILITY_FLOOR = 1e-6


def _logit(probabilities: np.ndarray) -> np.ndarray:
    clipped = np.clip(probabilities, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return np.log(clipped / (1 - clipped))


@dataclass
class Calibrator:
    method: CalibrationMethod
    isotonic: IsotonicRegression | None = None
    platt: LogisticRegression | None = None

    def transform(self, raw_probabilities) -> np.ndarray:
        raw = np.asarray(raw_probabilities, dtype=float)
        if self.method == "isotonic":
            calibrated = self.isotonic.predict(raw)
        elif self.method == "platt":
            # LogisticRegression.predict_proba's own arithmetic (x @ coef.T + intercept, then expit),
            # without its input validation: a tenth of a millisecond per served request.
            decision = _logit(raw).reshape(-1, 1) @ self.platt.coef_.T + self.platt.intercept_
            calibrated = expit(decision.reshape(-1))
        else:
            calibrated = raw
        # Keep probabilities strictly inside (0, 1): downstream logloss and log-odds bids need it.
        return np.clip(calibrated, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)

    def to_dict(self) -> dict[str, object]:
        """The fitted numbers as JSON (a registered model holds no pickled object)."""
        if self.method == "platt":
            return {"method": "platt", "coef": float(self.platt.coef_[0, 0]),
                    "intercept": float(self.platt.intercept_[0])}
        if self.method == "isotonic":
            return {"method": "isotonic", "x": self.isotonic.X_thresholds_.tolist(),
                    "y": self.isotonic.y_thresholds_.tolist(), "increasing": bool(self.isotonic.increasing_)}
        return {"method": self.method}

    @classmethod
    def from_dict(cls, payload: dict[str, object]) -> "Calibrator":
        """The calibrator `to_dict` wrote, predicting exactly as the fitted one did."""
        method = payload["method"]
        if method == "platt":
            platt = LogisticRegression(C=1e6)
            platt.classes_, platt.n_features_in_ = np.array([0, 1]), 1
            platt.coef_, platt.intercept_ = np.array([[payload["coef"]]]), np.array([payload["intercept"]])
            return cls(method="platt", platt=platt)
        if method == "isotonic":
            x, y = np.asarray(payload["x"], dtype=float), np.asarray(payload["y"], dtype=float)
            isotonic = IsotonicRegression(y_min=PROBABILITY_FLOOR, y_max=1 - PROBABILITY_FLOOR, out_of_bounds="clip")
            isotonic.X_thresholds_, isotonic.y_thresholds_, isotonic.X_min_, isotonic.X_max_ = x, y, x.min(), x.max()
            isotonic.increasing_ = payload["increasing"]
            isotonic._build_f(x, y)  # the interpolation predict() reads, as fit() builds it
            return cls(method="isotonic", isotonic=isotonic)
        return cls(method=method)


def fit_calibrator(raw_probabilities, labels, method: CalibrationMethod = "auto") -> Calibrator:
    raw = np.asarray(raw_probabilities, dtype=float)
    label_array = np.asarray(labels, dtype=int)
    if method == "auto":
        method = "platt"
    if method == "none" or len(np.unique(label_array)) < 2:
        # One class on the validation day: nothing to calibrate against, keep raw scores.
        return Calibrator(method="none")
    if method == "isotonic":
        isotonic = IsotonicRegression(y_min=PROBABILITY_FLOOR, y_max=1 - PROBABILITY_FLOOR, out_of_bounds="clip")
        isotonic.fit(raw, label_array)
        return Calibrator(method="isotonic", isotonic=isotonic)
    if method == "platt":
        platt = LogisticRegression(C=1e6)  # effectively unregularised: two parameters, many rows
        platt.fit(_logit(raw).reshape(-1, 1), label_array)
        return Calibrator(method="platt", platt=platt)
    raise ValueError(f"calibration method must be 'isotonic', 'platt' or 'none', got {method!r}")
