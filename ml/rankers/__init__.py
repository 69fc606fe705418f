"""LightGBM CTR/CVR rankers (pCTCVR = pCTR x pCVR, ESMM-style), calibration, explanations, baselines.

No Dagster imports: orchestration calls `fit_ranker`, `build_ranker_report` and `log_ranker_to_mlflow`.
"""
from ml.rankers.features import CATEGORICAL, ENCODER_FEATURES, NUMERIC, FeatureSpec, join_encoder_features
from ml.rankers.splits import split_by_day
from ml.rankers.training import FittedRanker, fit_ranker

__all__ = [
    "CATEGORICAL",
    "ENCODER_FEATURES",
    "NUMERIC",
    "FeatureSpec",
    "FittedRanker",
    "fit_ranker",
    "join_encoder_features",
    "split_by_day",
]
