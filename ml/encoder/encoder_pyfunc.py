"""The registered encoder as an MLflow model from code: MLflow stores this file beside the encoder's
files (weights as a state dict, read with `weights_only`, config and ad catalog as JSON/Parquet) and
runs it to load, instead of unpickling a module. Packed int64 rows in (sequence tokens, then the
target ad's; `ml.encoder.model.PackedClickScorer`), click logits out."""
from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import torch
from mlflow.models import set_model

from ml.encoder.fitted import FittedEncoder
from ml.encoder.model import PackedClickScorer

ARTIFACT_KEY = "fitted_encoder"


class EncoderPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        fitted = FittedEncoder.load(context.artifacts[ARTIFACT_KEY], device="cpu")
        self.scorer = PackedClickScorer(fitted.model).eval()

    def predict(self, context, model_input: np.ndarray, params=None) -> np.ndarray:
        with torch.no_grad():
            return self.scorer(torch.as_tensor(np.asarray(model_input, dtype=np.int64))).numpy()


set_model(EncoderPyfunc())
