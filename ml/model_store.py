"""Load registered models by alias, in the form scoring code needs (probabilities + explanations).

Used by the schedule and by the real-time service, so both score with exactly the registered
versions. Call `ml.registry.configure_mlflow` first.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import Model

from ml.rankers import ranker_pyfunc
from ml.rankers.features import RESTRICTED_COLUMN, FeatureSpec
from ml.rankers.ranker_model import RankerModel
from ml.registry import CHAMPION, version_by_alias


@dataclass
class RegisteredRanker:
    name: str
    version: str
    run_id: str
    model: RankerModel
    input_columns: list[str]  # the registered signature's columns

    def inputs(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The signature's columns, and the restricted-category flag when the frame has it (it
        decides which rows hide their protected attributes: ml.rankers.features)."""
        flag = [RESTRICTED_COLUMN] if RESTRICTED_COLUMN in frame and RESTRICTED_COLUMN not in self.input_columns else []
        return frame[self.input_columns + flag]

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.predict(self.inputs(frame))

    def explain(self, frame: pd.DataFrame, top_k: int = 2) -> pd.DataFrame:
        """Top SHAP features per row from LightGBM's own pred_contrib, indexed like `frame`."""
        explained = self.model.explain_encoded(self.model.encode(self.inputs(frame)), top_k)
        explained.index = frame.index
        return explained


def _ranker_model(model_uri: str) -> tuple[RankerModel, list[str]]:
    """The ranker's files and signature columns. Versions registered before rankers were logged as
    models from code hold a cloudpickled pyfunc: still loaded (a champion may be one), by unpickling."""
    local = Path(mlflow.artifacts.download_artifacts(model_uri))
    columns = Model.load(local).get_input_schema().input_names()
    files = local / "artifacts" / ranker_pyfunc.ARTIFACT_KEY
    if files.is_dir():
        return RankerModel.load(files), columns
    with open(local / "python_model.pkl", "rb") as pickled:
        legacy = _LegacyRankerUnpickler(pickled).load()
    return RankerModel(lgb.Booster(model_str=legacy.booster_model_string),
                       FeatureSpec.from_dict(legacy.feature_spec_dict), legacy.calibrator), columns


class _LegacyRankerState:
    """The fields of the pickled pyfunc class adflow used before (ml.rankers.mlflow_io.RankerPyfunc)."""


class _LegacyRankerUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) == ("ml.rankers.mlflow_io", "RankerPyfunc"):
            return _LegacyRankerState
        return super().find_class(module, name)


def load_ranker(name: str, alias: str = CHAMPION) -> RegisteredRanker | None:
    version = version_by_alias(name, alias)
    if version is None:
        return None
    model, columns = _ranker_model(f"models:/{name}@{alias}")
    return RegisteredRanker(name, str(version.version), version.run_id, model, columns)


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
