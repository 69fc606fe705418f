"""Fit the interest encoder on impressions: (sequence before the impression, target ad) -> click."""
from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import log_loss, roc_auc_score

from ml.encoder.config import EncoderConfig
from ml.encoder.device import DeviceChoice, resolve_device
from ml.encoder.fitted import FittedEncoder
from ml.encoder.loop import train_with_early_stopping
from ml.encoder.model import InterestEncoder, ModelSizes
from ml.encoder.sequences import EventIndex, ad_tokens

log = logging.getLogger(__name__)


def click_tensors(index: EventIndex, impressions: pd.DataFrame, ads: pd.DataFrame,
                  config: EncoderConfig) -> dict[str, torch.Tensor]:
    """Model inputs for each impression: the sequence cut strictly before its impression_ts."""
    sequences = index.cut(impressions["user_key"], impressions["impression_ts"], config.max_len)
    targets = ad_tokens(impressions["ad_id"], ads, config)
    tensors = sequences.to_tensors()
    tensors.update(target_ad=torch.from_numpy(targets["ad"]), target_category=torch.from_numpy(targets["category"]),
                   target_brand=torch.from_numpy(targets["brand"]))
    if "label_click" in impressions:
        tensors["label"] = torch.from_numpy(impressions["label_click"].to_numpy(dtype=np.float32))
    return tensors


def predict_click_logits(model: InterestEncoder, tensors: dict[str, torch.Tensor], batch_size: int,
                         device_choice: DeviceChoice) -> np.ndarray:
    model.eval()
    inputs = {name: values for name, values in tensors.items() if name != "label"}
    n_rows = len(next(iter(inputs.values())))
    logits = []
    with torch.no_grad(), device_choice.autocast():
        for start in range(0, n_rows, batch_size):
            batch = {name: device_choice.to_device(values[start:start + batch_size]) for name, values in inputs.items()}
            logits.append(model(**batch).float().cpu())
    return torch.cat(logits).numpy() if logits else np.zeros(0, dtype=np.float32)


def click_metrics(labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    probabilities = np.clip(1.0 / (1.0 + np.exp(-logits.astype(np.float64))), 1e-7, 1 - 1e-7)
    both_classes = len(np.unique(labels)) == 2
    return {
        "val_auc": float(roc_auc_score(labels, logits)) if both_classes else float("nan"),
        "val_logloss": float(log_loss(labels, probabilities, labels=[0, 1])),
    }


def _split_by_day(impressions: pd.DataFrame, validation_date: dt.date, config: EncoderConfig):
    in_time_order = impressions.sort_values(["impression_ts", "impression_id"], kind="stable")
    days = pd.to_datetime(in_time_order["impression_date"]).dt.date
    train_rows = in_time_order[days < validation_date]
    validation_rows = in_time_order[days == validation_date]
    if config.max_train_examples is not None:
        train_rows = train_rows.tail(config.max_train_examples)  # the most recent days matter most
    if config.max_validation_examples is not None and len(validation_rows) > config.max_validation_examples:
        sample = np.random.default_rng(config.seed).choice(len(validation_rows), config.max_validation_examples,
                                                           replace=False)
        validation_rows = validation_rows.iloc[np.sort(sample)]  # still in time order
    if train_rows.empty or validation_rows.empty:
        raise ValueError(
            f"interest encoder needs impressions before and on the validation day {validation_date}: "
            f"found {len(train_rows)} before and {len(validation_rows)} on it; pick another validation_date"
        )
    return train_rows, validation_rows


def fit_interest_encoder(event_stream: pd.DataFrame, impressions: pd.DataFrame, ads: pd.DataFrame,
                         validation_date: dt.date, config: EncoderConfig, progress: bool = True) -> FittedEncoder:
    torch.manual_seed(config.seed)
    device_choice = resolve_device(config.device, config.precision, config.compile)
    train_rows, validation_rows = _split_by_day(impressions, validation_date, config)
    index = EventIndex.from_event_stream(event_stream, config)
    train_tensors = click_tensors(index, train_rows, ads, config)
    validation_tensors = click_tensors(index, validation_rows, ads, config)
    validation_labels = validation_tensors["label"].numpy()

    model = InterestEncoder(ModelSizes.from_config(config))

    def loss_fn(model: InterestEncoder, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        label = batch.pop("label")
        return F.binary_cross_entropy_with_logits(model(**batch).float(), label)

    def validate(model: InterestEncoder) -> dict[str, float]:
        logits = predict_click_logits(model, validation_tensors, config.batch_size * 4, device_choice)
        return click_metrics(validation_labels, logits)

    result = train_with_early_stopping(
        model, train_tensors, loss_fn, validate, "val_auc",
        batch_size=config.batch_size, lr=config.lr, max_epochs=config.max_epochs, patience=config.patience,
        seed=config.seed, device_choice=device_choice, progress=progress, description="interest encoder",
    )
    best = result.history[result.best_epoch - 1] if result.best_epoch else result.history[-1]
    metrics = {
        "val_auc": best["val_auc"], "val_logloss": best["val_logloss"],
        "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
        "device": str(device_choice.device), "precision": device_choice.precision,
        "train_seconds": result.train_seconds,
        "train_sequences_per_second": result.train_sequences_per_second,
        "n_train": len(train_rows), "n_validation": len(validation_rows),
    }
    log.info("interest encoder: %s", metrics)
    return FittedEncoder(model, config, ads[["ad_id", "category_id", "brand_id"]], metrics, result.history)
