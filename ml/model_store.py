"""Load registered models by alias, in the form scoring code needs (probabilities + explanations).

Used by the schedule and by the real-time service, so both score with exactly the registered
versions. Call `ml.registry.configure_mlflow` first.
"""
from __future__ import annotations

from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd

from ml.rankers.explain import top_contributions
from ml.registry import CHAMPION, version_by_alias


@dataclass
class RegisteredRanker:
    name: str
    version: str
    run_id: str
    model: mlflow.pyfunc.PyFuncModel

    @property
    def input_columns(self) -> list[str]:
        return self.model.metadata.get_input_schema().input_names()

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.predict(frame[self.input_columns]), dtype=float)

    def explain(self, frame: pd.DataFrame, top_k: int = 2) -> pd.DataFrame:
        """Top SHAP features per row from LightGBM's own pred_contrib, indexed like `frame`."""
        wrapper = self.model.unwrap_python_model()
        wrapper._ensure_loaded()
        features = wrapper._feature_spec.transform(frame[self.input_columns])
        explained = top_contributions(wrapper._booster.predict(features, pred_contrib=True),
                                      wrapper._feature_spec.features, top_k)
        explained.index = frame.index
        return explained


def load_ranker(name: str, alias: str = CHAMPION) -> RegisteredRanker | None:
    version = version_by_alias(name, alias)
    if version is None:
        return None
    model = mlflow.pyfunc.load_model(f"models:/{name}@{alias}")
    return RegisteredRanker(name, str(version.version), version.run_id, model)


def load_encoder(name: str = "interest_encoder", alias: str = CHAMPION):
    """(FittedEncoder, version) of the alias, rebuilt from the run's `fitted_encoder` artifacts."""
    from ml.encoder import FittedEncoder

    version = version_by_alias(name, alias)
    if version is None:
        return None, None
    local_dir = mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path="fitted_encoder")
    return FittedEncoder.load(local_dir), str(version.version)


def encoder_run_of(ranker: RegisteredRanker) -> str:
    """The MLflow run of the encoder whose features the ranker was trained on (tag set at training)."""
    encoder_run_id = mlflow.get_run(ranker.run_id).data.tags.get("encoder_run_id")
    if encoder_run_id is None:
        raise ValueError(f"{ranker.name} v{ranker.version} has no encoder_run_id tag: retrain it with the pipeline.")
    return encoder_run_id


def encoder_for_ranker(ranker: RegisteredRanker):
    """The encoder version a ranker was trained with (its features must come from the same one)."""
    from ml.encoder import FittedEncoder

    local_dir = mlflow.artifacts.download_artifacts(run_id=encoder_run_of(ranker), artifact_path="fitted_encoder")
    return FittedEncoder.load(local_dir)
