"""Plots of the fairness report: gaps by group with intervals, advertiser delivery against budget."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ml.evaluation.fairness import GROUP_COLUMNS
from ml.plotting import plt, save_figure


def plot_group_gaps(gaps: pd.DataFrame, path: Path, title: str) -> Path:
    """One panel per group column: each level's ratio to the audience mean per metric, 95% interval bars."""
    metrics = list(dict.fromkeys(gaps["metric"]))
    figure, axes = plt.subplots(1, len(GROUP_COLUMNS), figsize=(4.2 * len(GROUP_COLUMNS), 3.6), sharey=True)
    for axis, column in zip(np.atleast_1d(axes), GROUP_COLUMNS):
        rows = gaps[gaps["group"] == column]
        levels = sorted(rows["level"].unique())
        width = 0.8 / max(len(metrics), 1)
        for number, metric in enumerate(metrics):
            of_metric = rows[rows["metric"] == metric].set_index("level").reindex(levels)
            x = np.arange(len(levels)) + (number - (len(metrics) - 1) / 2) * width
            ratio = of_metric["ratio_to_overall"].to_numpy(dtype=float)
            error = np.abs(np.vstack([ratio - of_metric["ci_low"].to_numpy(dtype=float),
                                      of_metric["ci_high"].to_numpy(dtype=float) - ratio]))
            axis.errorbar(x, ratio, yerr=np.nan_to_num(error), fmt="o", capsize=2, label=metric, markersize=4)
        axis.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
        axis.set_xticks(np.arange(len(levels)), levels, rotation=30, fontsize=8)
        axis.set_title(column)
    np.atleast_1d(axes)[0].set_ylabel("per-user mean / everyone's")
    np.atleast_1d(axes)[-1].legend(fontsize=7, loc="best")
    figure.suptitle(title)
    return save_figure(figure, path)


def plot_advertiser_delivery(table: pd.DataFrame, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(4.6, 4.2))
    axis.scatter(table["budget_share"], table["impression_share"], s=16, label="impressions")
    axis.scatter(table["budget_share"], table["spend_share"], s=16, marker="x", label="expected spend")
    top = float(max(table[["budget_share", "impression_share", "spend_share"]].max().max(), 1e-3))
    axis.plot([0, top], [0, top], color="grey", linewidth=0.8, linestyle="--")
    axis.set_xlabel("share of the day's budget")
    axis.set_ylabel("share delivered")
    axis.set_title("Advertisers: delivery against budget")
    axis.legend(fontsize=8)
    return save_figure(figure, path)
