"""The registered ranker as an MLflow model from code: MLflow stores this file beside the model's
files (`ml.rankers.ranker_model`) and runs it to load, instead of unpickling an object. Feature frame
in, calibrated probabilities out: `mlflow.pyfunc.load_model('models:/ctr_ranker@champion')`."""
from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import set_model

from ml.rankers.ranker_model import RankerModel

ARTIFACT_KEY = "ranker"


class RankerPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        self.ranker = RankerModel.load(context.artifacts[ARTIFACT_KEY])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.ranker.predict(pd.DataFrame(model_input))


set_model(RankerPyfunc())
