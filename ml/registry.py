"""MLflow tracking and registry helpers shared by every model: one experiment, aliases not stages.

A new model version gets the `challenger` alias; it becomes `champion` only when it scores at least
as well as the current champion on the same holdout (or when there is no champion yet).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from ml.settings import Settings

CHAMPION = "champion"
CHALLENGER = "challenger"
EXPERIMENT_NAME = "adflow"


def configure_mlflow(settings: Settings, experiment_name: str = EXPERIMENT_NAME) -> str:
    """Point MLflow at the configured store; create the experiment with artifacts under the data root."""
    # Artifacts are read from local disk in milliseconds: MLflow's per-download progress bars only
    # cluttered the daily run's and the service's logs (a user may still turn them on).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    if settings.mlflow_tracking_uri.startswith("sqlite:///"):
        (settings.data_root / "mlflow").mkdir(parents=True, exist_ok=True)
    experiment = mlflow.get_experiment_by_name(experiment_name)
    if experiment is None and settings.mlflow_tracking_uri.startswith(("http://", "https://")):
        experiment_id = mlflow.create_experiment(experiment_name)  # artifacts where the server keeps them
    elif experiment is None:
        settings.mlflow_artifacts_dir.mkdir(parents=True, exist_ok=True)
        experiment_id = mlflow.create_experiment(
            experiment_name, artifact_location=settings.mlflow_artifacts_dir.as_uri()
        )
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def version_by_alias(name: str, alias: str) -> ModelVersion | None:
    try:
        return MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def register_challenger(model_uri: str, name: str, tags: dict[str, str] | None = None) -> ModelVersion:
    """Register a logged model as a new version of `name` and give it the `challenger` alias."""
    version = mlflow.register_model(model_uri, name, tags=tags or {})
    MlflowClient().set_registered_model_alias(name, CHALLENGER, version.version)
    return version


@dataclass(frozen=True)
class PromotionDecision:
    model_name: str
    challenger_version: str
    champion_version_before: str | None
    challenger_score: float
    champion_score: float | None
    metric: str
    promoted: bool
    reason: str

    def as_metadata(self) -> dict[str, object]:
        return {
            "model": self.model_name,
            "metric": self.metric,
            "challenger_version": self.challenger_version,
            "challenger_score": round(self.challenger_score, 6),
            "champion_version_before": self.champion_version_before or "none",
            "champion_score": None if self.champion_score is None else round(self.champion_score, 6),
            "promoted": self.promoted,
            "reason": self.reason,
        }


def decide_promotion(
    name: str,
    challenger_version: str,
    challenger_score: float,
    champion_score: float | None,
    metric: str,
    higher_is_better: bool = True,
) -> PromotionDecision:
    """Pure decision: the challenger wins if there is no champion or it is at least as good."""
    champion = version_by_alias(name, CHAMPION)
    champion_version = str(champion.version) if champion else None
    if champion is None or champion_score is None:
        promoted, reason = True, "no champion yet"
    elif str(champion_version) == str(challenger_version):
        promoted, reason = True, "challenger already champion"
    else:
        better = challenger_score >= champion_score if higher_is_better else challenger_score <= champion_score
        promoted = bool(better)
        verdict = "not worse than" if promoted else "worse than"
        reason = (
            f"challenger {metric}={challenger_score:.4f} is {verdict} "
            f"champion v{champion_version} {metric}={champion_score:.4f}"
        )
    return PromotionDecision(
        name, str(challenger_version), champion_version, float(challenger_score),
        None if champion_score is None else float(champion_score), metric, promoted, reason,
    )


def apply_promotion(decision: PromotionDecision) -> None:
    if decision.promoted:
        MlflowClient().set_registered_model_alias(decision.model_name, CHAMPION, decision.challenger_version)


def champion_uri(name: str) -> str:
    return f"models:/{name}@{CHAMPION}"
