"""PNG plots of a schedule for asset metadata and MLflow: budget utilisation, spend by hour vs plan,
one user's day."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: plots are files for Dagster / MLflow, never windows
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from ml.plotting import save_figure  # noqa: E402



def plot_budget_utilisation(budget_utilisation: pd.DataFrame, path: Path, max_campaigns: int = 60) -> Path:
    """Bars of expected spend / daily budget per campaign (the most utilised first)."""
    data = budget_utilisation.sort_values("utilisation", ascending=False).head(max_campaigns)
    fig, ax = plt.subplots(figsize=(max(6, 0.18 * len(data) + 2), 3.5))
    ax.bar(data["campaign_id"].astype(str), data["utilisation"], color="tab:blue")
    ax.axhline(1.0, color="tab:red", linestyle="--", linewidth=1, label="daily budget")
    ax.set_ylabel("expected spend / budget")
    ax.set_xlabel("campaign")
    ax.set_title("Budget utilisation per campaign")
    ax.tick_params(axis="x", labelrotation=90, labelsize=6)
    ax.legend()
    return save_figure(fig, path)


def plot_spend_by_hour(spend_by_hour: pd.DataFrame, path: Path, pacing_tolerance: float = 0.10) -> Path:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(spend_by_hour["hour"], spend_by_hour["expected_spend"], color="tab:blue", label="scheduled spend")
    ax.step(spend_by_hour["hour"], spend_by_hour["planned_spend"], where="mid", color="tab:orange", label="plan")
    ax.step(spend_by_hour["hour"], spend_by_hour["planned_spend"] * (1 + pacing_tolerance), where="mid",
            color="tab:red", linestyle=":", label=f"plan x {1 + pacing_tolerance:g}")
    ax.set_xlabel("hour")
    ax.set_ylabel("expected spend")
    ax.set_title("Spend by hour vs pacing plan (all campaigns)")
    ax.legend()
    return save_figure(fig, path)


def plot_user_schedule(schedule: pd.DataFrame, user_key, path: Path) -> Path:
    """One user's day: a bar per scheduled ad at its hour, height = expected value, labelled with the ad."""
    day = schedule[schedule["user_key"] == user_key].sort_values("hour")
    if day.empty:
        raise ValueError(f"user {user_key!r} has no scheduled ads")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    positions = range(len(day))
    ax.bar(positions, day["expected_value"], color="tab:green")
    ax.set_xticks(list(positions), [f"{h:02d}:00\nslot {s}" for h, s in zip(day["hour"], day["slot"])], fontsize=7)
    for x, (ad, campaign, value) in enumerate(zip(day["ad_id"], day["campaign_id"], day["expected_value"])):
        ax.annotate(f"ad {ad}\ncamp {campaign}", (x, value), ha="center", va="bottom", fontsize=7)
    ax.set_ylabel("expected value")
    ax.set_title(f"Schedule of user {user_key}")
    return save_figure(fig, path)
