"""Fit LightGBM (with and without encoder features) and every baseline; score one test day.

Produces the `predictions` mapping `build_ranker_report` reads: model name -> (pCTR, pCVR), both
over every test impression, so pCTCVR = pCTR x pCVR is defined for all of them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.rankers.baselines import (
    LogisticRegressionBaseline,
    MatrixFactorizationBaseline,
    PopularityBaseline,
    oracle_predictions,
)
from ml.rankers.training import FittedRanker, fit_ranker

LIGHTGBM = "lightgbm"
LIGHTGBM_UNCALIBRATED = "lightgbm_uncalibrated"
LIGHTGBM_NO_ENCODER = "lightgbm_no_encoder"
ORACLE = "oracle"
ORACLE_DAY_AHEAD = "oracle_day_ahead"


@dataclass
class RankerComparison:
    ctr_ranker: FittedRanker
    cvr_ranker: FittedRanker
    predictions: dict[str, tuple[np.ndarray, np.ndarray]]


def _clicked(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["label_click"] == 1]


def compare_rankers(
    ctr_train: pd.DataFrame,
    ctr_valid: pd.DataFrame,
    test: pd.DataFrame,
    cvr_train: pd.DataFrame | None = None,
    cvr_valid: pd.DataFrame | None = None,
    use_encoder_features: bool = True,
    include_matrix_factorization: bool = True,
) -> RankerComparison:
    """`cvr_*` default to the clicked rows of `ctr_*` (what cvr_training_set holds)."""
    cvr_train = _clicked(ctr_train) if cvr_train is None else cvr_train
    cvr_valid = _clicked(ctr_valid) if cvr_valid is None else cvr_valid
    ctr_ranker = fit_ranker(ctr_train, ctr_valid, "ctr", use_encoder_features=use_encoder_features)
    cvr_ranker = fit_ranker(cvr_train, cvr_valid, "cvr", use_encoder_features=use_encoder_features)
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = {
        LIGHTGBM: (ctr_ranker.predict(test), cvr_ranker.predict(test)),
        LIGHTGBM_UNCALIBRATED: (ctr_ranker.predict_raw(test), cvr_ranker.predict_raw(test)),
    }
    if use_encoder_features:
        plain_ctr = fit_ranker(ctr_train, ctr_valid, "ctr", use_encoder_features=False)
        plain_cvr = fit_ranker(cvr_train, cvr_valid, "cvr", use_encoder_features=False)
        predictions[LIGHTGBM_NO_ENCODER] = (plain_ctr.predict(test), plain_cvr.predict(test))
    baselines = {"popularity": PopularityBaseline, "logistic_regression": LogisticRegressionBaseline}
    if include_matrix_factorization:
        baselines["matrix_factorization"] = MatrixFactorizationBaseline
    for name, baseline in baselines.items():
        predictions[name] = (
            baseline().fit(ctr_train, "ctr").predict(test),
            baseline().fit(cvr_train, "cvr").predict(test),
        )
    for name, day_ahead in ((ORACLE, False), (ORACLE_DAY_AHEAD, True)):
        oracle_ctr = oracle_predictions(test, "ctr", day_ahead)
        oracle_cvr = oracle_predictions(test, "cvr", day_ahead)
        if oracle_ctr is not None and oracle_cvr is not None:
            predictions[name] = (oracle_ctr, oracle_cvr)
    return RankerComparison(ctr_ranker=ctr_ranker, cvr_ranker=cvr_ranker, predictions=predictions)
