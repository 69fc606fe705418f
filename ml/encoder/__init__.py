"""Transformer interest encoder over user behaviour sequences (BST/SASRec style)."""
from ml.encoder.config import EncoderConfig
from ml.encoder.fitted import FittedEncoder
from ml.encoder.train import fit_interest_encoder

__all__ = ["EncoderConfig", "FittedEncoder", "fit_interest_encoder", "log_encoder_to_mlflow"]


def __getattr__(name: str):
    # MLflow is heavy to import; load it only when logging is asked for.
    if name == "log_encoder_to_mlflow":
        from ml.encoder.mlflow_io import log_encoder_to_mlflow
        return log_encoder_to_mlflow
    raise AttributeError(name)
