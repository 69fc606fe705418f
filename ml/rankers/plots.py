"""Report plots as PNG files (matplotlib Agg: no display on servers or in Dagster steps)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot loads)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from ml.evaluation.metrics import reliability_curve  # noqa: E402
from ml.plotting import save_figure  # noqa: E402
from ml.rankers.report import Holdouts, task_rows_and_scores  # noqa: E402

TASK_TITLES = {
    "ctr": "CTR (CTR test day)",
    "cvr": "CVR (clicks of the conversion holdout)",
    "ctcvr": "CTCVR (all of the conversion holdout)",
}


def plot_roc_curves(holdouts: Holdouts, predictions: dict, path: Path) -> Path:
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for axis, task in zip(axes, TASK_TITLES):
        for name, model_scores in predictions.items():
            if task not in model_scores.tasks:
                continue
            _, labels, scores = task_rows_and_scores(holdouts, model_scores, task)
            if len(np.unique(labels)) < 2:
                continue
            false_positive_rate, true_positive_rate, _ = roc_curve(labels, scores)
            axis.plot(false_positive_rate, true_positive_rate, label=name, linewidth=1.2)
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=0.8)
        axis.set(title=TASK_TITLES[task], xlabel="false positive rate", ylabel="true positive rate")
        if axis.get_legend_handles_labels()[0]:  # a CTR-only report leaves the CVR panels empty
            axis.legend(fontsize=7, loc="lower right")
    return save_figure(figure, path)


def plot_reliability_curves(holdouts: Holdouts, predictions: dict, path: Path, n_bins: int = 10) -> Path:
    """Equal-mass bins (same as the report's ECE); axes log-scaled because CTRs sit near zero."""
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for axis, task in zip(axes, TASK_TITLES):
        low, high = 1.0, 0.0
        for name, model_scores in predictions.items():
            if task not in model_scores.tasks:
                continue
            _, labels, scores = task_rows_and_scores(holdouts, model_scores, task)
            if len(labels) == 0:
                continue
            curve = reliability_curve(labels, scores, n_bins=n_bins)
            axis.plot(curve["mean_prediction"], curve["observed_rate"], marker="o", markersize=3, label=name)
            low = min(low, curve["mean_prediction"].min())
            high = max(high, curve["mean_prediction"].max())
        low, high = max(low, 1e-4), max(high, 2e-4)
        axis.plot([low, high], [low, high], color="grey", linestyle=":", linewidth=0.8)
        axis.set(title=TASK_TITLES[task], xlabel="mean predicted probability", ylabel="observed rate",
                 xscale="log", yscale="symlog")
        axis.set_yscale("symlog", linthresh=low)
        if axis.get_legend_handles_labels()[0]:  # a CTR-only report leaves the CVR panels empty
            axis.legend(fontsize=7, loc="upper left")
    return save_figure(figure, path)


def plot_feature_importance(importance: pd.DataFrame, path: Path, title: str, top_n: int = 20) -> Path:
    """Horizontal bars of gain, largest on top; `importance` from FittedRanker.feature_importance()."""
    top = importance.head(top_n).iloc[::-1]
    figure, axis = plt.subplots(figsize=(7, 0.3 * len(top) + 1.2))
    axis.barh(top["feature"], top["gain"], color="#4477aa")
    axis.set(title=title, xlabel="total gain")
    return save_figure(figure, path)


def save_report_plots(holdouts: Holdouts, predictions: dict, rankers: dict, out_dir: Path) -> dict[str, Path]:
    """ROC + reliability for all models and one importance chart per ranker ({'ctr': FittedRanker, ...})."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "roc_curves": plot_roc_curves(holdouts, predictions, out_dir / "roc_curves.png"),
        "reliability_curves": plot_reliability_curves(holdouts, predictions, out_dir / "reliability_curves.png"),
    }
    for task, ranker in rankers.items():
        paths[f"{task}_feature_importance"] = plot_feature_importance(
            ranker.feature_importance(), out_dir / f"{task}_feature_importance.png", f"{task.upper()} ranker: gain"
        )
    return paths
