"""Monitoring plots as PNG files (matplotlib Agg: no display in Dagster steps)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot loads)
import pandas as pd  # noqa: E402

from ml.monitoring.psi import PSI_MODERATE, PSI_WARN  # noqa: E402
from ml.plotting import save_figure  # noqa: E402


def plot_psi(table: pd.DataFrame, path: Path, title: str) -> Path:
    """Horizontal bars of PSI per row of `table` (columns `feature`, `psi`) with the two thresholds."""
    ordered = table.sort_values("psi")
    figure, axis = plt.subplots(figsize=(7, 0.28 * len(ordered) + 1.2))
    colors = ["#c0392b" if v > PSI_WARN else "#e67e22" if v > PSI_MODERATE else "#2e86c1" for v in ordered["psi"]]
    axis.barh(ordered["feature"].astype(str), ordered["psi"], color=colors)
    for threshold, style in ((PSI_MODERATE, ":"), (PSI_WARN, "--")):
        axis.axvline(threshold, color="black", linestyle=style, linewidth=1, label=f"PSI {threshold}")
    axis.set_xlabel("population stability index")
    axis.set_title(title)
    axis.legend(loc="lower right")
    return save_figure(figure, path, dpi=90)


def plot_calibration_ratios(table: pd.DataFrame, path: Path, allowed: tuple[float, float]) -> Path:
    """Observed / predicted per day, one line per `model` in `table` (columns day, model, ratio)."""
    figure, axis = plt.subplots(figsize=(7, 3.5))
    for model, rows in table.groupby("model", sort=True):
        axis.plot(pd.to_datetime(rows["day"]), rows["ratio"], marker="o", label=model)
    axis.axhspan(*allowed, color="green", alpha=0.1, label=f"allowed [{allowed[0]}, {allowed[1]}]")
    axis.axhline(1.0, color="black", linewidth=0.8)
    axis.set_ylabel("observed / predicted")
    axis.set_title("Champions' calibration on days with final labels")
    axis.legend()
    figure.autofmt_xdate()
    return save_figure(figure, path, dpi=90)
