"""Log a fitted encoder to MLflow (params, per-epoch metrics, model) and register it as challenger."""
from __future__ import annotations

import dataclasses
import tempfile
from importlib.metadata import version as package_version
from pathlib import Path

import mlflow
import mlflow.pyfunc
import numpy as np
import torch
from mlflow.models import infer_signature

from ml.encoder import encoder_pyfunc
from ml.encoder.fitted import FittedEncoder
from ml.encoder.model import SEQUENCE_INPUTS, PackedClickScorer
from ml.registry import register_challenger

RUNTIME_PACKAGES = ("torch", "numpy", "pandas", "pyarrow", "mlflow")


def packed_input_example(fitted: FittedEncoder, n_rows: int = 2) -> np.ndarray:
    """A valid packed input: a short history of known ads' tokens, then a target ad."""
    length = fitted.config.max_len
    example = np.zeros((n_rows, len(SEQUENCE_INPUTS) * length + 3), dtype=np.int64)
    example[:, :length] = np.arange(1, length + 1)[None, :] % fitted.config.item_buckets
    example[:, 5 * length:6 * length] = 1  # all positions valid
    example[:, -3:] = [1, 1, 1]
    return example


def _numeric(values: dict) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def log_encoder_to_mlflow(fitted: FittedEncoder, registered_name: str = "interest_encoder",
                          tags: dict | None = None):
    """Returns (run_id, model_version). The caller configures MLflow (ml.registry.configure_mlflow)."""
    tags = {str(k): str(v) for k, v in (tags or {}).items()}
    run_tags = {**tags, "device": fitted.metrics.get("device", ""), "precision": fitted.metrics.get("precision", "")}
    with mlflow.start_run(run_name=registered_name, tags=run_tags) as run:
        mlflow.log_params(dataclasses.asdict(fitted.config))
        for epoch_metrics in fitted.history:
            mlflow.log_metrics(_numeric({k: v for k, v in epoch_metrics.items() if k != "epoch"}),
                               step=int(epoch_metrics["epoch"]))
        mlflow.log_metrics({f"final_{k}": v for k, v in _numeric(fitted.metrics).items()})
        scorer = PackedClickScorer(fitted.model).cpu().eval()
        example = packed_input_example(fitted)
        with torch.no_grad():
            example_output = scorer(torch.from_numpy(example)).numpy()
        fitted.model.to(fitted.device_choice.device)
        with tempfile.TemporaryDirectory() as saved:
            # The FittedEncoder folder (weights, config, ad catalog) lets Python scoring reload it,
            # and is the registered model's only data: loading it runs no pickled code.
            files = str(fitted.save(saved))
            mlflow.log_artifacts(files, artifact_path="fitted_encoder")
            model_info = mlflow.pyfunc.log_model(
                name="model", python_model=str(Path(encoder_pyfunc.__file__)),
                artifacts={encoder_pyfunc.ARTIFACT_KEY: files},
                signature=infer_signature(example, example_output), input_example=example,
                pip_requirements=[f"{package}=={package_version(package)}" for package in RUNTIME_PACKAGES],
            )
        version = register_challenger(model_info.model_uri, registered_name, tags=tags)
    return run.info.run_id, version
