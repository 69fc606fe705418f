"""Plots of A/B readouts: value per opportunity by arm over the test days, and the last day's lift
beside the off-policy prediction made before the test."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: plots are files for Dagster / MLflow, never windows
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ml.plotting import save_figure  # noqa: E402


def plot_ab_readout(arms_by_day: pd.DataFrame, lift: pd.Series, path: Path) -> Path:
    """`arms_by_day`: schedule_date, arm, value_per_opportunity (one row per arm and day);
    `lift`: the value-per-impression row of the lift table, with predicted_* columns when known."""
    fig, (by_day, today) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    for arm, rows in arms_by_day.sort_values("schedule_date").groupby("arm", sort=True):
        by_day.plot(pd.to_datetime(rows["schedule_date"]), rows["value_per_opportunity"], marker="o", label=arm)
    by_day.set_title("Advertiser value per opportunity, by arm and day")
    by_day.set_ylabel("value per impression opportunity")
    by_day.legend(loc="best", fontsize=8)
    by_day.tick_params(axis="x", rotation=20)

    labels, centres, lows, highs = ["realised (A/B)"], [lift["lift"]], [lift["ci_low"]], [lift["ci_high"]]
    if pd.notna(lift.get("predicted_lift")):
        labels.append("predicted off-policy (DR)")
        centres.append(lift["predicted_lift"])
        lows.append(lift["predicted_ci_low"])
        highs.append(lift["predicted_ci_high"])
    for x, (centre, low, high) in enumerate(zip(centres, lows, highs)):
        today.errorbar([x], [centre], yerr=[[centre - low], [high - centre]], fmt="o", capsize=5)
    today.axhline(0.0, color="grey", linewidth=0.8)
    today.set_xticks(range(len(labels)), labels)
    today.set_xlim(-0.5, len(labels) - 0.5)
    today.set_title("Lift, treatment minus control (95% interval)")
    today.set_ylabel("value per impression")
    return save_figure(fig, path)
