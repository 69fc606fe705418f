"""The ranker report: one row per model and task (CTR, CVR, CTCVR) on the test day.

- ctr: every test impression, label_click vs pCTR;
- cvr: clicked test impressions, label_conversion vs pCVR (the CVR model's training space);
- ctcvr: every test impression, click-and-convert vs pCTR x pCVR (ESMM's entire-space target).
GAUC groups by user_key, weighted by the user's impressions in that task's rows. `auc_se` is the
Hanley-McNeil standard error: with a few hundred positives on one test day it is ~0.01, so AUC
differences smaller than that are not evidence either way.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ml.evaluation.metrics import binary_metrics
from ml.rankers.features import labels_for

REPORT_COLUMNS = ["model", "task", "rows", "positives", "auc", "auc_se", "gauc", "logloss", "ece"]


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC estimated from `positives` and `negatives`."""
    if positives == 0 or negatives == 0 or np.isnan(auc):
        return float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)) / (
        positives * negatives
    )
    return float(np.sqrt(max(variance, 0.0)))


def task_rows_and_scores(
    test: pd.DataFrame, pctr: np.ndarray, pcvr: np.ndarray, task: str
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(rows, labels, scores) a task is judged on; shared by the report and the plots."""
    pctr, pcvr = np.asarray(pctr, dtype=float), np.asarray(pcvr, dtype=float)
    if task == "ctr":
        return test, labels_for(test, "ctr"), pctr
    if task == "cvr":
        clicked = (test["label_click"] == 1).to_numpy()
        rows = test[clicked]
        return rows, labels_for(rows, "cvr"), pcvr[clicked]
    if task == "ctcvr":
        return test, labels_for(test, "ctcvr"), pctr * pcvr
    raise ValueError(f"task must be 'ctr', 'cvr' or 'ctcvr', got {task!r}")


def build_ranker_report(test: pd.DataFrame, predictions: dict[str, tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    for name, (pctr, pcvr) in predictions.items():
        if len(pctr) != len(test) or len(pcvr) != len(test):
            raise ValueError(
                f"predictions for {name!r} have {len(pctr)} pCTR / {len(pcvr)} pCVR values "
                f"for {len(test)} test impressions; score every test impression with both models"
            )
    rows = []
    for name, (pctr, pcvr) in predictions.items():
        for task in ("ctr", "cvr", "ctcvr"):
            task_rows, labels, scores = task_rows_and_scores(test, pctr, pcvr, task)
            metrics = binary_metrics(labels, scores, groups=task_rows["user_key"].to_numpy())
            positives = int(labels.sum())
            rows.append({
                "model": name, "task": task, "rows": len(labels), "positives": positives, **metrics,
                "auc_se": auc_standard_error(metrics["auc"], positives, len(labels) - positives),
            })
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


def report_metrics(report: pd.DataFrame, model: str) -> dict[str, float]:
    """One model's report rows flattened to MLflow metric names, e.g. 'test_ctr_auc'."""
    metrics = {}
    for row in report[report["model"] == model].itertuples(index=False):
        for metric in ("auc", "gauc", "logloss", "ece"):
            value = getattr(row, metric)
            if not np.isnan(value):
                metrics[f"test_{row.task}_{metric}"] = float(value)
    return metrics
