"""Fit LightGBM (with and without encoder features) and every baseline; score the holdouts.

CTR learns from the days whose click labels are final (`ctr`), CVR from the clicks of the days whose
conversions are final (`cvr_train`/`cvr_valid`, split like `conversion`). For CTCVR on every
impression of the conversion holdout each model family also needs a pCTR there from a CTR model that
has not seen that day: the same recipe fitted on `conversion`'s earlier days. When both splits are the
same days (every label final), one CTR fit serves both.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np
import pandas as pd

from ml.rankers.baselines import (
    LogisticRegressionBaseline,
    MatrixFactorizationBaseline,
    PopularityBaseline,
    oracle_predictions,
)
from ml.rankers.report import Holdouts, ModelScores
from ml.rankers.splits import DaySplit
from ml.rankers.training import FittedRanker, fit_ranker

LIGHTGBM = "lightgbm"
LIGHTGBM_UNCALIBRATED = "lightgbm_uncalibrated"
LIGHTGBM_NO_ENCODER = "lightgbm_no_encoder"
LIGHTGBM_NO_CONTENT = "lightgbm_no_content"  # without the title's terms (ml.rankers.content): cold start
ORACLE = "oracle"
ORACLE_DAY_AHEAD = "oracle_day_ahead"

# A model family: fit on (train, valid) for a task, return a scoring function.
Recipe = Callable[[pd.DataFrame, pd.DataFrame, str], Callable[[pd.DataFrame], np.ndarray]]


@dataclass
class RankerComparison:
    ctr_ranker: FittedRanker
    cvr_ranker: FittedRanker | None  # None when conversions were too scarce (ml/label_sufficiency.py)
    holdouts: Holdouts
    predictions: dict[str, ModelScores]


def _clicked(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["label_click"] == 1]


def _same_days(a: DaySplit, b: DaySplit) -> bool:
    return a.test is b.test or (
        set(a.test["impression_date"]) == set(b.test["impression_date"])
        and set(a.valid["impression_date"]) == set(b.valid["impression_date"])
    )


def _lightgbm(use_encoder_features: bool, use_content_features: bool = True) -> Recipe:
    def fit(train: pd.DataFrame, valid: pd.DataFrame, task: str):
        return fit_ranker(train, valid, task, use_encoder_features=use_encoder_features,
                          use_content_features=use_content_features).predict
    return fit


def _baseline(baseline_class) -> Recipe:
    def fit(train: pd.DataFrame, valid: pd.DataFrame, task: str):
        return baseline_class().fit(train, task).predict
    return fit


def _baseline_recipes(use_encoder_features: bool, include_matrix_factorization: bool) -> dict[str, Recipe]:
    recipes: dict[str, Recipe] = {}
    if use_encoder_features:
        recipes[LIGHTGBM_NO_ENCODER] = _lightgbm(use_encoder_features=False)
    recipes[LIGHTGBM_NO_CONTENT] = _lightgbm(use_encoder_features, use_content_features=False)
    recipes["popularity"] = _baseline(PopularityBaseline)
    recipes["logistic_regression"] = _baseline(LogisticRegressionBaseline)
    if include_matrix_factorization:
        recipes["matrix_factorization"] = _baseline(MatrixFactorizationBaseline)
    return recipes


def _compare_ctr_only(ctr: DaySplit, use_encoder_features: bool, include_matrix_factorization: bool) -> RankerComparison:
    ctr_ranker = fit_ranker(ctr.train, ctr.valid, "ctr", use_encoder_features=use_encoder_features)
    predictions = {LIGHTGBM: ModelScores(ctr=ctr_ranker.predict(ctr.test)),
                   LIGHTGBM_UNCALIBRATED: ModelScores(ctr=ctr_ranker.predict_raw(ctr.test))}
    for name, recipe in _baseline_recipes(use_encoder_features, include_matrix_factorization).items():
        predictions[name] = ModelScores(ctr=recipe(ctr.train, ctr.valid, "ctr")(ctr.test))
    for name, day_ahead in ((ORACLE, False), (ORACLE_DAY_AHEAD, True)):
        true_ctr = oracle_predictions(ctr.test, task="ctr", day_ahead=day_ahead)
        if true_ctr is not None:
            predictions[name] = ModelScores(ctr=true_ctr)
    return RankerComparison(ctr_ranker=ctr_ranker, cvr_ranker=None,
                            holdouts=Holdouts(ctr=ctr.test, conversion=ctr.test), predictions=predictions)


def compare_rankers(
    ctr: DaySplit,
    cvr_train: pd.DataFrame | None = None,
    cvr_valid: pd.DataFrame | None = None,
    conversion: DaySplit | None = None,
    use_encoder_features: bool = True,
    include_matrix_factorization: bool = True,
    with_cvr: bool = True,
) -> RankerComparison:
    """`conversion` defaults to `ctr` (one split for both labels); `cvr_*` to its clicked rows.
    `with_cvr=False` fits and scores CTR only (conversions too scarce to learn from)."""
    if not with_cvr:
        return _compare_ctr_only(ctr, use_encoder_features, include_matrix_factorization)
    conversion = ctr if conversion is None else conversion
    cvr_train = _clicked(conversion.train) if cvr_train is None else cvr_train
    cvr_valid = _clicked(conversion.valid) if cvr_valid is None else cvr_valid
    one_split = _same_days(ctr, conversion)

    def scores(ctr_model, ctr_model_before_conversion_holdout, cvr_model) -> ModelScores:
        return ModelScores(ctr=ctr_model(ctr.test), cvr_on_conversion=cvr_model(conversion.test),
                           ctr_on_conversion=ctr_model_before_conversion_holdout(conversion.test))

    ctr_ranker = fit_ranker(ctr.train, ctr.valid, "ctr", use_encoder_features=use_encoder_features)
    cvr_ranker = fit_ranker(cvr_train, cvr_valid, "cvr", use_encoder_features=use_encoder_features)
    early_ctr_ranker = ctr_ranker if one_split else fit_ranker(
        conversion.train, conversion.valid, "ctr", use_encoder_features=use_encoder_features)
    predictions = {
        LIGHTGBM: scores(ctr_ranker.predict, early_ctr_ranker.predict, cvr_ranker.predict),
        LIGHTGBM_UNCALIBRATED: scores(ctr_ranker.predict_raw, early_ctr_ranker.predict_raw, cvr_ranker.predict_raw),
    }
    recipes = _baseline_recipes(use_encoder_features, include_matrix_factorization)
    for name, recipe in recipes.items():
        ctr_model = recipe(ctr.train, ctr.valid, "ctr")
        early_ctr_model = ctr_model if one_split else recipe(conversion.train, conversion.valid, "ctr")
        predictions[name] = scores(ctr_model, early_ctr_model, recipe(cvr_train, cvr_valid, "cvr"))
    for name, day_ahead in ((ORACLE, False), (ORACLE_DAY_AHEAD, True)):
        true_ctr = partial(oracle_predictions, task="ctr", day_ahead=day_ahead)
        true_cvr = partial(oracle_predictions, task="cvr", day_ahead=day_ahead)
        if true_ctr(ctr.test) is not None and true_cvr(conversion.test) is not None:
            predictions[name] = scores(true_ctr, true_ctr, true_cvr)
    return RankerComparison(ctr_ranker=ctr_ranker, cvr_ranker=cvr_ranker,
                            holdouts=Holdouts(ctr=ctr.test, conversion=conversion.test), predictions=predictions)
