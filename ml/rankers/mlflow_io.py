"""MLflow logging, registration and champion scoring for rankers.

The logged model is a model from code (`ml/rankers/ranker_pyfunc.py`) over plain files: the booster
as LightGBM's model text, the calibrator and the frozen categorical levels as JSON
(`ml.rankers.ranker_model`). `mlflow.pyfunc.load_model('models:/ctr_ranker@champion')
.predict(feature_frame)` returns calibrated probabilities with the training-time codes, in any
process that can import `ml` (serving, Dagster steps, notebooks), and loading runs no pickled code.
"""
from __future__ import annotations

import logging
import tempfile
import warnings
from importlib.metadata import version as package_version
from pathlib import Path

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

from ml.evaluation import metrics as evaluation_metrics
from ml.rankers import ranker_pyfunc
from ml.rankers.features import labels_for
from ml.rankers.training import FittedRanker
from ml.registry import (
    CHAMPION,
    PromotionDecision,
    apply_promotion,
    champion_uri,
    decide_promotion,
    register_challenger,
    version_by_alias,
)

logger = logging.getLogger(__name__)
MODEL_ARTIFACT_NAME = "ranker"
# Listed explicitly: MLflow's requirement inference re-loads the model in a subprocess (slow).
RUNTIME_PACKAGES = ("lightgbm", "scikit-learn", "pandas", "numpy", "mlflow")
NUMERIC_DATA_TYPES = (DataType.integer, DataType.long, DataType.float, DataType.double, DataType.boolean)
HIGHER_IS_BETTER = {"auc": True, "gauc": True, "logloss": False, "ece": False}


def _model_signature(example: pd.DataFrame, output: np.ndarray) -> ModelSignature:
    """Inferred signature with numeric columns typed `Any` (names and presence still enforced).

    MLflow rejects int64 -> double and double -> int64, yet one mart column arrives as int64 on a
    day without NULLs and as float64 on a day with one; FeatureSpec.transform coerces both.
    """
    with warnings.catch_warnings():  # its hint on integer columns and missing values: they become Any here
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        inferred = infer_signature(example, output)
    columns = [
        ColSpec(AnyType(), column.name, required=column.required) if column.type in NUMERIC_DATA_TYPES else column
        for column in inferred.inputs.inputs
    ]
    return ModelSignature(inputs=Schema(columns), outputs=inferred.outputs)


def log_ranker_to_mlflow(
    fitted: FittedRanker,
    registered_name: str,
    report_df: pd.DataFrame | None = None,
    plot_paths: dict[str, Path] | list[Path] | None = None,
    tags: dict[str, str] | None = None,
    holdout_metrics: dict[str, float] | None = None,
) -> tuple[str, str]:
    """Log one ranker run and register it as the `challenger` of `registered_name`.

    `tags` (e.g. partition, git_commit, dagster_run_id) go on the run and on the model version.
    Call `ml.registry.configure_mlflow` first. Returns (run_id, model_version).
    """
    tags = {key: str(value) for key, value in (tags or {}).items()}
    with mlflow.start_run(run_name=f"{registered_name}-{tags.get('partition', 'adhoc')}") as run:
        mlflow.set_tags({**tags, "task": fitted.task, "model_family": "lightgbm"})
        mlflow.log_params({
            **{f"lgb_{key}": value for key, value in fitted.params.items()},
            "task": fitted.task,
            "best_iteration": fitted.best_iteration,
            "use_encoder_features": fitted.use_encoder_features,
            "calibration": fitted.calibrator.method,
            "n_features": len(fitted.feature_spec.features),
            "training_rows": fitted.training_rows,
            "validation_rows": fitted.validation_rows,
        })
        run_metrics = {**fitted.validation_metrics, "training_seconds": fitted.training_seconds}
        run_metrics.update(holdout_metrics or {})
        mlflow.log_metrics({key: float(value) for key, value in run_metrics.items() if np.isfinite(value)})

        with tempfile.TemporaryDirectory() as scratch:
            importance_path = Path(scratch) / "feature_importance.csv"
            fitted.feature_importance().to_csv(importance_path, index=False)
            mlflow.log_artifact(str(importance_path), artifact_path="report")
            if report_df is not None:
                report_path = Path(scratch) / "ranker_report.csv"
                report_df.to_csv(report_path, index=False)
                mlflow.log_artifact(str(report_path), artifact_path="report")
                mlflow.log_table(report_df, artifact_file="report/ranker_report.json")
        paths = plot_paths.values() if isinstance(plot_paths, dict) else (plot_paths or [])
        for plot_path in paths:
            mlflow.log_artifact(str(plot_path), artifact_path="plots")

        example = fitted.input_example
        deployed = fitted.deployable()
        with tempfile.TemporaryDirectory() as scratch:
            model_info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT_NAME,
                python_model=str(Path(ranker_pyfunc.__file__)),
                artifacts={ranker_pyfunc.ARTIFACT_KEY: str(deployed.save(Path(scratch) / "ranker"))},
                signature=_model_signature(example, deployed.predict(example)),
                input_example=example,
                pip_requirements=[f"{package}=={package_version(package)}" for package in RUNTIME_PACKAGES],
            )
        model_version = register_challenger(model_info.model_uri, registered_name, tags={**tags, "run_id": run.info.run_id})
    return run.info.run_id, str(model_version.version)


def load_champion_ranker(name: str) -> mlflow.pyfunc.PyFuncModel | None:
    """The `champion` version of `name` as a pyfunc, or None when no champion exists yet."""
    if version_by_alias(name, CHAMPION) is None:
        return None
    return mlflow.pyfunc.load_model(champion_uri(name))


def holdout_rows(holdout: pd.DataFrame, task: str) -> pd.DataFrame:
    """CTR is judged on every impression, CVR on clicked impressions only."""
    return holdout[holdout["label_click"] == 1] if task == "cvr" else holdout


def holdout_score(predictions, holdout: pd.DataFrame, task: str, metric: str = "auc") -> float:
    rows = holdout_rows(holdout, task)
    labels = labels_for(rows, task)
    if metric == "gauc":
        return evaluation_metrics.gauc(labels, predictions, rows["user_key"].to_numpy())
    return getattr(evaluation_metrics, metric)(labels, predictions)


def champion_holdout_score(name: str, holdout_df: pd.DataFrame, task: str, metric: str = "auc") -> float | None:
    """Score the current champion on the caller's holdout (same rows as the challenger); None if no champion.

    Raises if the champion cannot score the holdout (e.g. it needs a feature column the holdout no
    longer has): silently promoting in that case would hide a contract change.
    """
    champion = load_champion_ranker(name)
    if champion is None:
        return None
    rows = holdout_rows(holdout_df, task)
    model_columns = champion.metadata.get_input_schema().input_names()
    return holdout_score(champion.predict(rows[model_columns]), holdout_df, task, metric)


def compare_and_promote(
    name: str, model_version: str, challenger: FittedRanker, holdout_df: pd.DataFrame, metric: str = "auc"
) -> PromotionDecision:
    """Score challenger and champion on the same holdout, decide with ml.registry, apply the decision."""
    challenger_score = holdout_score(challenger.predict(holdout_rows(holdout_df, challenger.task)),
                                     holdout_df, challenger.task, metric)
    champion_score = champion_holdout_score(name, holdout_df, challenger.task, metric)
    decision = decide_promotion(name, model_version, challenger_score, champion_score, metric,
                                higher_is_better=HIGHER_IS_BETTER[metric])
    apply_promotion(decision)
    logger.info("promotion of %s v%s: %s", name, model_version, decision.reason)
    return decision
