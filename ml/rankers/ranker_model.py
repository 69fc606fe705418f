"""A ranker as scoring needs it: the booster, the frozen feature levels and the calibrator, saved as
plain files (LightGBM's model text and JSON), so loading one runs no pickled code.

Scoring goes through the encoded float matrix LightGBM builds from a frame anyway: the service
encodes its candidates once and only rewrites the live columns per request, and the daily schedule
takes the same path, so both get the same numbers.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from ml.rankers.calibration import Calibrator
from ml.rankers.explain import top_contributions, top_feature_order
from ml.rankers.features import FeatureSpec
from ml.rankers.why import explain_in_words

BOOSTER_FILE, SPEC_FILE = "booster.txt", "ranker.json"


@dataclass
class RankerModel:
    booster: lgb.Booster  # trimmed to its best iteration
    feature_spec: FeatureSpec
    calibrator: Calibrator

    @property
    def features(self) -> list[str]:
        return self.feature_spec.features

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        return self.feature_spec.encode(frame)

    def predict_encoded(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of rows encoded by `encode`."""
        return self.calibrator.transform(self.booster.predict(matrix))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict_encoded(self.encode(frame))

    def explain_encoded(self, matrix: np.ndarray, top_k: int = 2) -> pd.DataFrame:
        """Top SHAP features per row, from LightGBM's own TreeSHAP (pred_contrib), and `why`: the
        largest positive contributions in words (ml.rankers.why)."""
        contributions = self.booster.predict(matrix, pred_contrib=True)
        explained = top_contributions(contributions, self.features, top_k)
        explained["why"] = self._in_words(contributions, matrix)
        return explained

    def top_features_and_why(self, matrix: np.ndarray, top_k: int = 2) -> tuple[np.ndarray, list[str]]:
        """explain_encoded's feature names, [rows, top_k], and its words, without building a frame."""
        contributions = self.booster.predict(matrix, pred_contrib=True)
        names = np.asarray(self.features, dtype=object)[top_feature_order(contributions, top_k)]
        return names, self._in_words(contributions, matrix)

    def _in_words(self, contributions: np.ndarray, matrix: np.ndarray) -> list[str]:
        return explain_in_words(contributions, matrix, self.features, self.feature_spec.categorical_levels)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(directory / BOOSTER_FILE)
        spec = {"feature_spec": self.feature_spec.to_dict(), "calibrator": self.calibrator.to_dict()}
        (directory / SPEC_FILE).write_text(json.dumps(spec, indent=1))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "RankerModel":
        directory = Path(directory)
        spec = json.loads((directory / SPEC_FILE).read_text())
        return cls(lgb.Booster(model_file=str(directory / BOOSTER_FILE)), FeatureSpec.from_dict(spec["feature_spec"]),
                   Calibrator.from_dict(spec["calibrator"]))

    @classmethod
    def of(cls, booster: lgb.Booster, best_iteration: int, feature_spec: FeatureSpec,
           calibrator: Calibrator) -> "RankerModel":
        """A fitted booster cut at its best iteration, as it is deployed."""
        return cls(lgb.Booster(model_str=booster.model_to_string(num_iteration=best_iteration)), feature_spec,
                   calibrator)
