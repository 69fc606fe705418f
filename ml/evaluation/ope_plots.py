"""Plot of off-policy estimates with their intervals, beside the true value where one is known."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: plots are files for Dagster / MLflow, never windows
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ml.plotting import save_figure  # noqa: E402


def plot_policy_value_estimates(estimates: pd.DataFrame, path: Path) -> Path:
    """One panel per policy: estimate ± 95% interval per estimator; a dashed line at `true_value`
    (per impression) when the column holds one."""
    policies = list(dict.fromkeys(estimates["policy"]))
    fig, axes = plt.subplots(1, len(policies), figsize=(5.5 * len(policies), 3.6), squeeze=False, sharey=True)
    for ax, policy in zip(axes[0], policies):
        rows = estimates[estimates["policy"] == policy].reset_index(drop=True)
        low = rows["estimate"] - rows["ci_low"]
        high = rows["ci_high"] - rows["estimate"]
        ax.errorbar(rows.index, rows["estimate"], yerr=[low, high], fmt="o", capsize=4)
        ax.set_xticks(rows.index, rows["estimator"], rotation=20)
        truth = rows["true_value"].dropna() if "true_value" in rows else pd.Series(dtype=float)
        if len(truth):
            ax.axhline(truth.iloc[0], color="black", linestyle="--", label="true value (simulator)")
            ax.legend(loc="best", fontsize=8)
        ax.set_title(policy)
        ax.set_ylabel("advertiser value per impression")
    return save_figure(fig, path)
