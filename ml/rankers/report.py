"""The ranker report: one row per model and task (CTR, CVR, CTCVR), each on its own holdout.

- ctr: every impression of the CTR test day (the latest day whose click labels are final);
- cvr: the clicked impressions of the conversion holdout (the latest day whose conversion labels are
  final, a conversion window older), label_conversion vs pCVR (the CVR model's training space);
- ctcvr: every impression of the conversion holdout, click-and-convert vs pCTR x pCVR (ESMM's
  entire-space target). Its pCTR comes from the same model recipe fitted on the days before that
  holdout: the registered CTR model has trained on it.
GAUC groups by user_key, weighted by the user's impressions in that task's rows. `auc_se` is the
Hanley-McNeil standard error: with a few hundred positives on one test day it is ~0.01, so AUC
differences smaller than that are not evidence either way between models judged on different rows.
Models judged on the SAME rows are compared by `reference_auc_minus_this` (the reference model's AUC
minus this row's) with DeLong's paired standard error `difference_se`: shared rows cancel most of the
noise, so a difference of two or more paired standard errors is evidence of a real gap.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.evaluation.metrics import binary_metrics, paired_auc_difference
from ml.rankers.features import labels_for

REPORT_COLUMNS = [
    "model", "task", "rows", "positives", "auc", "auc_se", "reference_auc_minus_this", "difference_se",
    "gauc", "logloss", "ece",
]


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC estimated from `positives` and `negatives`."""
    if positives == 0 or negatives == 0 or np.isnan(auc):
        return float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)) / (
        positives * negatives
    )
    return float(np.sqrt(max(variance, 0.0)))


@dataclass(frozen=True)
class Holdouts:
    """The rows the tasks are judged on; `conversion` is `ctr` when both labels are final on one day."""

    ctr: pd.DataFrame
    conversion: pd.DataFrame

    @classmethod
    def same_day(cls, test: pd.DataFrame) -> "Holdouts":
        return cls(ctr=test, conversion=test)


@dataclass(frozen=True)
class ModelScores:
    """One model's predictions: pCTR over `Holdouts.ctr`; pCVR and pCTR over `Holdouts.conversion`
    (both None when conversions were too scarce to train a CVR model: the model has CTR rows only)."""

    ctr: np.ndarray
    cvr_on_conversion: np.ndarray | None = None
    ctr_on_conversion: np.ndarray | None = None

    @property
    def tasks(self) -> tuple[str, ...]:
        return ("ctr",) if self.cvr_on_conversion is None else ("ctr", "cvr", "ctcvr")

    @classmethod
    def same_day(cls, pctr: np.ndarray, pcvr: np.ndarray) -> "ModelScores":
        return cls(ctr=pctr, cvr_on_conversion=pcvr, ctr_on_conversion=pctr)

    def check_sizes(self, name: str, holdouts: Holdouts) -> None:
        if self.cvr_on_conversion is None:
            expected, actual = (len(holdouts.ctr),) * 3, (len(self.ctr), len(holdouts.ctr), len(holdouts.ctr))
        else:
            expected = (len(holdouts.ctr), len(holdouts.conversion), len(holdouts.conversion))
            actual = (len(self.ctr), len(self.cvr_on_conversion), len(self.ctr_on_conversion))
        if actual != expected:
            raise ValueError(
                f"predictions for {name!r} have (pCTR, pCVR, pCTR on the conversion holdout) sizes {actual} "
                f"for holdouts of {expected} impressions; score every test impression with both models"
            )


def task_rows_and_scores(holdouts: Holdouts, scores: ModelScores, task: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(rows, labels, scores) a task is judged on; shared by the report and the plots."""
    if task == "ctr":
        return holdouts.ctr, labels_for(holdouts.ctr, "ctr"), np.asarray(scores.ctr, dtype=float)
    conversion = holdouts.conversion
    pcvr = np.asarray(scores.cvr_on_conversion, dtype=float)
    if task == "cvr":
        clicked = (conversion["label_click"] == 1).to_numpy()
        rows = conversion[clicked]
        return rows, labels_for(rows, "cvr"), pcvr[clicked]
    if task == "ctcvr":
        return conversion, labels_for(conversion, "ctcvr"), np.asarray(scores.ctr_on_conversion, dtype=float) * pcvr
    raise ValueError(f"task must be 'ctr', 'cvr' or 'ctcvr', got {task!r}")


def build_ranker_report(
    holdouts: Holdouts, predictions: dict[str, ModelScores], reference: str | None = None
) -> pd.DataFrame:
    """One row per model and task; `reference` (default: the first model) is what the others are
    compared with, pairwise on the same rows."""
    reference = reference or next(iter(predictions), None)
    if predictions and reference not in predictions:
        raise ValueError(f"reference model {reference!r} is not among the predictions {list(predictions)}")
    for name, scores in predictions.items():
        scores.check_sizes(name, holdouts)
    rows = []
    for name, scores in predictions.items():
        for task in scores.tasks:
            task_rows, labels, task_scores = task_rows_and_scores(holdouts, scores, task)
            metrics = binary_metrics(labels, task_scores, groups=task_rows["user_key"].to_numpy())
            positives = int(labels.sum())
            _, _, reference_scores = task_rows_and_scores(holdouts, predictions[reference], task)
            difference, difference_se = paired_auc_difference(labels, reference_scores, task_scores)
            rows.append({
                "model": name, "task": task, "rows": len(labels), "positives": positives, **metrics,
                "auc_se": auc_standard_error(metrics["auc"], positives, len(labels) - positives),
                "reference_auc_minus_this": difference, "difference_se": difference_se,
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
