"""Creative report: learned against true CTR per creative, regret against always showing the best, and
their plot (simulations, where the truth is known)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ml.creatives.selector import ALL_SEGMENTS, ThompsonSelector
from ml.plotting import plt, save_figure

REPORT_COLUMNS = ["ad_id", "segment", "creative_id", "impressions", "clicks", "learned_ctr", "true_ctr",
                  "is_best", "is_learned_best"]
REGRET_COLUMNS = ["impressions", "cumulative_regret", "regret_per_impression"]
_LEARNED_COLUMNS = ["ad_id", "creative_id", "impressions", "clicks", "learned_ctr"]
_MAX_PLOTTED_POINTS = 2_000  # a regret curve of 10^6 impressions draws the same line from 2,000 of them


def creative_report(learned: ThompsonSelector | pd.DataFrame, true_ctr: pd.DataFrame) -> pd.DataFrame:
    """Per creative: ad_id, segment, creative_id, impressions, clicks, learned_ctr, true_ctr, is_best,
    is_learned_best.

    `learned`: a selector (its `posterior_means()`) or such a frame; without a segment column its rows
    are ad-level (ALL_SEGMENTS). `true_ctr`: ad_id, creative_id, true_ctr, and segment when the truth
    differs by segment; without one, the creative's truth holds in every segment, ad-level rows included.
    Creatives without a true CTR are left out. `is_best`: the creative has the highest true CTR of its
    (ad, segment) (ties are all best); `is_learned_best`: the highest learned CTR.
    """
    frame = learned.posterior_means() if isinstance(learned, ThompsonSelector) else learned.copy()
    missing = set(_LEARNED_COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"learned frame lacks columns {sorted(missing)}")
    if "segment" not in frame.columns:
        frame["segment"] = ALL_SEGMENTS
    truth_missing = {"ad_id", "creative_id", "true_ctr"} - set(true_ctr.columns)
    if truth_missing:
        raise ValueError(f"true_ctr lacks columns {sorted(truth_missing)}")
    keys = ["ad_id", "segment", "creative_id"] if "segment" in true_ctr.columns else ["ad_id", "creative_id"]
    report = frame.merge(true_ctr[keys + ["true_ctr"]].drop_duplicates(keys), on=keys, how="inner")
    if report.empty and len(frame) and len(true_ctr):
        raise ValueError(f"no creative of the learned frame has a true CTR (joined on {keys})")
    group = report.groupby(["ad_id", "segment"], sort=False)
    report["is_best"] = report["true_ctr"] >= group["true_ctr"].transform("max")
    report["is_learned_best"] = report["learned_ctr"] >= group["learned_ctr"].transform("max")
    return report[REPORT_COLUMNS].reset_index(drop=True)


def regret_curve(chosen_true_ctr: np.ndarray, best_true_ctr: np.ndarray) -> pd.DataFrame:
    """Expected regret against always showing the best creative, impression by impression.

    Per impression, best true CTR - true CTR of the creative shown (expected clicks lost, not the
    realised ones, so the curve is not click noise). `best_true_ctr`: one value per impression (the
    best creative of that impression's ad and segment) or one for all. Rows: impressions (1..n),
    cumulative_regret, regret_per_impression (cumulative / impressions, the running average, which
    goes to 0 when the regret grows sublinearly).
    """
    chosen = np.asarray(chosen_true_ctr, dtype=float)
    if chosen.ndim != 1:
        raise ValueError(f"chosen_true_ctr must be one-dimensional, got shape {chosen.shape}")
    best = np.broadcast_to(np.asarray(best_true_ctr, dtype=float), chosen.shape)
    lost = best - chosen
    if (lost < -1e-12).any():
        raise ValueError("a chosen creative's true CTR is above the best one's")
    cumulative = np.cumsum(lost)
    impressions = np.arange(1, len(chosen) + 1)
    return pd.DataFrame({"impressions": impressions, "cumulative_regret": cumulative,
                         "regret_per_impression": cumulative / np.maximum(impressions, 1)})


def plot_creative_report(report: pd.DataFrame, regret: pd.DataFrame, path: Path) -> Path:
    """Left: learned against true CTR per creative (the best by truth highlighted) with the diagonal.
    Right: cumulative regret against impressions with c sqrt(n) through its last point: a curve above
    that reference before the end grows slower than sqrt(n) (it is flattening); a linear one is below."""
    figure, (learned_axis, regret_axis) = plt.subplots(1, 2, figsize=(9.6, 4.2))
    best = report["is_best"].to_numpy(bool)
    size = 8 + 40 * np.sqrt(report["impressions"].to_numpy(float) / max(float(report["impressions"].max()), 1.0))
    learned_axis.scatter(report.loc[~best, "true_ctr"], report.loc[~best, "learned_ctr"], s=size[~best],
                         alpha=0.7, label="other creatives")
    learned_axis.scatter(report.loc[best, "true_ctr"], report.loc[best, "learned_ctr"], s=size[best],
                         alpha=0.8, marker="*", label="best by truth")
    top = float(max(report[["true_ctr", "learned_ctr"]].max().max(), 1e-3)) * 1.05
    learned_axis.plot([0, top], [0, top], color="grey", linewidth=0.8, linestyle="--")
    learned_axis.set_xlabel("true CTR")
    learned_axis.set_ylabel("learned CTR (posterior mean)")
    learned_axis.set_title("Creatives: learned vs true CTR (size ~ impressions)")
    learned_axis.legend(fontsize=8)

    shown = regret.iloc[np.unique(np.linspace(0, len(regret) - 1, min(len(regret), _MAX_PLOTTED_POINTS)).astype(int))]
    regret_axis.plot(shown["impressions"], shown["cumulative_regret"], label="Thompson sampling")
    if len(regret):
        last = regret.iloc[-1]
        scale = float(last["cumulative_regret"]) / np.sqrt(float(last["impressions"]))
        regret_axis.plot(shown["impressions"], scale * np.sqrt(shown["impressions"].to_numpy(float)),
                         color="grey", linewidth=0.8, linestyle="--", label="c·sqrt(n)")
    regret_axis.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))  # 10^5 impressions: no overlapping ticks
    regret_axis.set_xlabel("impressions")
    regret_axis.set_ylabel("cumulative expected regret (clicks)")
    regret_axis.set_title("Regret against always showing the best creative")
    regret_axis.legend(fontsize=8)
    return save_figure(figure, path)
