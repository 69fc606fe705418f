"""Fit one LightGBM ranker (CTR on impressions or CVR on clicks) with early stopping and calibration."""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import lightgbm as lgb
import numpy as np
import pandas as pd

from ml.evaluation.metrics import binary_metrics, ece
from ml.ordering import in_key_order
from ml.rankers.calibration import CalibrationMethod, Calibrator, fit_calibrator
from ml.rankers.explain import top_contributions
from ml.rankers.features import FeatureSpec, labels_for
from ml.rankers.ranker_model import RankerModel
from ml.settings import Settings

Task = Literal["ctr", "cvr"]

DEFAULT_PARAMS: dict[str, object] = {
    "objective": "binary",
    "metric": "binary_logloss",
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    # Brand and category ids are high-cardinality: smoothing keeps rare levels from overfitting.
    "cat_smooth": 20.0,
    "min_data_per_group": 50,
    "max_bin": 63,  # 63 vs 127 bins: same test AUC to 4 decimals on 1M rows, less histogram work
    "force_col_wise": True,  # skips LightGBM's row-vs-column timing probe at every fit
    # Same rows, same order, same thread count: same model. With several threads LightGBM's
    # histogram sums can otherwise differ in the last bits from run to run.
    "deterministic": True,
    "verbose": -1,
    "seed": 7,
}
DEFAULT_NUM_BOOST_ROUND = 400
DEFAULT_EARLY_STOPPING_ROUNDS = 30
# OpenMP threads spin-wait, so on a shared box extra threads cost more than they bring: measured on
# this 2-core machine under load, 2 threads ran 6-20x slower than 1 on 25k rows and 3.3x slower on
# 715k rows (benchmarks/ranker_training.py). Multi-threading is kept for big data on big machines, at
# half the cores to leave room for the other steps; override with params={"num_threads": n}.
MULTITHREAD_MIN_ROWS = 200_000
MULTITHREAD_MIN_CPUS = 4


def default_num_threads(training_rows: int) -> int:
    cpus = os.cpu_count() or 1
    if training_rows < MULTITHREAD_MIN_ROWS or cpus < MULTITHREAD_MIN_CPUS:
        return 1
    return min(cpus // 2, 8)


@dataclass
class FittedRanker:
    """A trained booster with its frozen feature spec and validation-fitted calibrator."""

    task: Task
    booster: lgb.Booster
    feature_spec: FeatureSpec
    calibrator: Calibrator
    params: dict[str, object]
    best_iteration: int
    use_encoder_features: bool
    training_rows: int
    validation_rows: int
    training_seconds: float
    validation_metrics: dict[str, float] = field(default_factory=dict)
    # A few raw training rows of the feature columns: MLflow's input example and signature source.
    input_example: pd.DataFrame = field(default_factory=pd.DataFrame)

    def predict_raw(self, frame: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(self.feature_spec.transform(frame), num_iteration=self.best_iteration)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities."""
        return self.calibrator.transform(self.predict_raw(frame))

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """TreeSHAP values in log-odds, n_features columns plus the bias column last."""
        return self.booster.predict(
            self.feature_spec.transform(frame), num_iteration=self.best_iteration, pred_contrib=True
        )

    def explain(self, frame: pd.DataFrame, top_k: int = 3) -> pd.DataFrame:
        """Per-row top-k SHAP features (columns + readable string), indexed like `frame`."""
        explained = top_contributions(self.contributions(frame), self.feature_spec.features, top_k)
        explained.index = frame.index
        return explained

    def deployable(self) -> RankerModel:
        """What gets registered: the booster at its best iteration, the levels and the calibrator."""
        return RankerModel.of(self.booster, self.best_iteration, self.feature_spec, self.calibrator)

    def feature_importance(self) -> pd.DataFrame:
        gains = self.booster.feature_importance(importance_type="gain", iteration=self.best_iteration)
        importance = pd.DataFrame({"feature": self.feature_spec.features, "gain": gains})
        importance["gain_share"] = importance["gain"] / max(importance["gain"].sum(), 1e-12)
        return importance.sort_values("gain", ascending=False, ignore_index=True)


def fit_ranker(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    task: Task,
    use_encoder_features: bool = True,
    params: dict[str, object] | None = None,
    calibration: CalibrationMethod = "auto",
    num_boost_round: int = DEFAULT_NUM_BOOST_ROUND,
    early_stopping_rounds: int = DEFAULT_EARLY_STOPPING_ROUNDS,
    extra_numeric: Sequence[str] = (),
    dask_scheduler: str | None = None,
    use_content_features: bool = True,
) -> FittedRanker:
    """Train on `train`, early-stop and calibrate on `valid` (the day before the test day).

    For task 'cvr' pass clicked impressions (cvr_training_set). The validation day serves both early
    stopping and calibration: both only pick a handful of parameters, and the test day stays untouched.
    `dask_scheduler` (default: AD_DASK_SCHEDULER) trains the booster on that dask.distributed cluster
    (ml/rankers/dask_training.py); everything else is the same.
    """
    if task not in ("ctr", "cvr"):
        raise ValueError(f"task must be 'ctr' or 'cvr', got {task!r}")
    # LightGBM samples rows by position to build its bins (and bags by position): the same rows in
    # another order would give another model.
    train, valid = (in_key_order(rows, ["impression_id"]) if "impression_id" in rows else rows
                    for rows in (train, valid))
    feature_spec = FeatureSpec.fit(train, use_encoder_features, extra_numeric, use_content_features)
    train_labels, valid_labels = labels_for(train, task), labels_for(valid, task)
    if len(np.unique(train_labels)) < 2:
        raise ValueError(f"{task} training rows hold a single class ({len(train_labels)} rows); need both labels")
    merged_params = {**DEFAULT_PARAMS, "num_threads": default_num_threads(len(train)), **(params or {})}

    valid_features = feature_spec.transform(valid)
    dask_scheduler = dask_scheduler or Settings.from_env().dask_scheduler
    started = time.perf_counter()
    if dask_scheduler:
        from ml.rankers.dask_training import train_booster_on_dask  # dask costs ~1 s to import; only here

        booster = train_booster_on_dask(
            dask_scheduler, feature_spec.transform(train), train_labels, valid_features, valid_labels,
            feature_spec.categorical, merged_params, num_boost_round, early_stopping_rounds,
        )
    else:
        train_set = lgb.Dataset(
            feature_spec.transform(train), label=train_labels,
            categorical_feature=feature_spec.categorical, free_raw_data=True,
        )
        valid_set = lgb.Dataset(
            valid_features, label=valid_labels,
            categorical_feature=feature_spec.categorical, reference=train_set,
        )
        booster = lgb.train(
            merged_params, train_set, num_boost_round=num_boost_round,
            valid_sets=[valid_set], valid_names=["validation"],
            callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False)],
        )
    training_seconds = time.perf_counter() - started
    best_iteration = booster.best_iteration or booster.current_iteration()

    raw_valid = booster.predict(valid_features, num_iteration=best_iteration)
    calibrator = fit_calibrator(raw_valid, valid_labels, calibration)
    calibrated_valid = calibrator.transform(raw_valid)
    groups = valid["user_key"] if "user_key" in valid.columns else None
    validation_metrics = {
        **{f"valid_{k}": v for k, v in binary_metrics(valid_labels, calibrated_valid, groups).items()},
        "valid_ece_raw": ece(valid_labels, raw_valid),
        "valid_ece_calibrated": ece(valid_labels, calibrated_valid),
    }
    return FittedRanker(
        task=task, booster=booster, feature_spec=feature_spec, calibrator=calibrator,
        params=merged_params, best_iteration=int(best_iteration), use_encoder_features=use_encoder_features,
        training_rows=len(train), validation_rows=len(valid), training_seconds=training_seconds,
        validation_metrics=validation_metrics,
        input_example=train[feature_spec.input_columns].head(5).reset_index(drop=True),
    )
