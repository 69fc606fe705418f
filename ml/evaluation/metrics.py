"""Ranking and calibration metrics with the names and protocols the field publishes (FuxiCTR, RecBole).

- AUC: sklearn's ROC AUC; undefined (NaN) when only one class is present.
- GAUC: per-user AUC averaged with weights = the user's number of impressions (FuxiCTR's `gAUC`),
  over users that have both a positive and a negative; users with one class carry no ranking signal.
- logloss: binary cross-entropy with predictions clipped to [1e-7, 1 - 1e-7].
- ECE: expected calibration error = sum_b (n_b / n) * |mean(label)_b - mean(pred)_b|, with either
  equal-width bins on [0, 1] (`binning="width"`) or equal-mass bins by prediction quantile
  (`binning="mass"`, the default: CTRs sit near 0, so equal-width bins put nearly every row in bin 0).
- paired AUC difference: DeLong et al. (1988), two models scored on the same rows; the difference's
  standard error accounts for the rows being shared, so it is far smaller than either AUC's own.
- HR@K, NDCG@K: next-item metrics for one held-out positive per user (RecBole's leave-one-out protocol).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import log_loss, roc_auc_score

EPSILON = 1e-7
Binning = Literal["width", "mass"]


def _as_arrays(labels, predictions) -> tuple[np.ndarray, np.ndarray]:
    label_array = np.asarray(labels, dtype=float)
    prediction_array = np.asarray(predictions, dtype=float)
    if label_array.shape != prediction_array.shape:
        raise ValueError(f"labels {label_array.shape} and predictions {prediction_array.shape} differ in shape")
    return label_array, prediction_array


def auc(labels, predictions) -> float:
    label_array, prediction_array = _as_arrays(labels, predictions)
    if len(np.unique(label_array)) < 2:
        return float("nan")
    return float(roc_auc_score(label_array, prediction_array))


def gauc(labels, predictions, groups) -> float:
    """Impression-weighted mean of per-group AUC over groups with both classes (FuxiCTR gAUC).

    Vectorised with within-group average ranks (Mann-Whitney U), so millions of rows take seconds.
    """
    label_array, prediction_array = _as_arrays(labels, predictions)
    frame = pd.DataFrame({"label": label_array, "prediction": prediction_array, "group": np.asarray(groups)})
    frame["rank"] = frame.groupby("group", sort=False)["prediction"].rank(method="average")
    frame["positive_rank"] = frame["rank"] * frame["label"]
    per_group = frame.groupby("group", sort=False).agg(
        impressions=("label", "size"), positives=("label", "sum"), positive_rank_sum=("positive_rank", "sum")
    )
    negatives = per_group["impressions"] - per_group["positives"]
    both_classes = (per_group["positives"] > 0) & (negatives > 0)
    per_group, negatives = per_group[both_classes], negatives[both_classes]
    if per_group.empty:
        return float("nan")
    positives = per_group["positives"]
    group_auc = (per_group["positive_rank_sum"] - positives * (positives + 1) / 2) / (positives * negatives)
    return float(np.average(group_auc, weights=per_group["impressions"]))


def logloss(labels, predictions) -> float:
    label_array, prediction_array = _as_arrays(labels, predictions)
    if len(label_array) == 0:
        return float("nan")
    return float(log_loss(label_array, np.clip(prediction_array, EPSILON, 1 - EPSILON), labels=[0, 1]))


def ece(labels, predictions, n_bins: int = 15, binning: Binning = "mass") -> float:
    """Expected calibration error; see the module docstring for the two binning schemes."""
    label_array, prediction_array = _as_arrays(labels, predictions)
    if len(label_array) == 0:
        return float("nan")
    if binning == "width":
        bin_ids = np.minimum((prediction_array * n_bins).astype(int), n_bins - 1)
    elif binning == "mass":
        order = np.argsort(prediction_array, kind="stable")
        bin_ids = np.empty(len(order), dtype=int)
        bin_ids[order] = np.arange(len(order)) * n_bins // len(order)
    else:
        raise ValueError(f"binning must be 'width' or 'mass', got {binning!r}")
    counts = np.bincount(bin_ids, minlength=n_bins)
    label_sums = np.bincount(bin_ids, weights=label_array, minlength=n_bins)
    prediction_sums = np.bincount(bin_ids, weights=prediction_array, minlength=n_bins)
    filled = counts > 0
    gaps = np.abs(label_sums[filled] - prediction_sums[filled])  # = n_b * |mean label - mean pred|
    return float(gaps.sum() / len(label_array))


def paired_auc_difference(labels, predictions_a, predictions_b) -> tuple[float, float]:
    """AUC(a) - AUC(b) on the same rows and DeLong's standard error of that difference.

    Each model's placement values (the share of the other class a row outranks) give the two AUCs'
    covariance, computed with midranks in O(n log n) (Sun & Xu's fast DeLong).
    """
    label_array, scores_a = _as_arrays(labels, predictions_a)
    _, scores_b = _as_arrays(labels, predictions_b)
    positive = label_array == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos < 2 or n_neg < 2:
        return float("nan"), float("nan")
    placements_pos, placements_neg, aucs = [], [], []
    for scores in (scores_a, scores_b):
        rank_all = rankdata(scores)
        rank_pos, rank_neg = rankdata(scores[positive]), rankdata(scores[~positive])
        # A positive's placement: share of negatives below it; a negative's: share of positives above.
        v_pos = (rank_all[positive] - rank_pos) / n_neg
        v_neg = 1.0 - (rank_all[~positive] - rank_neg) / n_pos
        placements_pos.append(v_pos)
        placements_neg.append(v_neg)
        aucs.append(v_pos.mean())
    cov_pos = np.cov(np.vstack(placements_pos))
    cov_neg = np.cov(np.vstack(placements_neg))
    contrast = np.array([1.0, -1.0])
    variance = contrast @ cov_pos @ contrast / n_pos + contrast @ cov_neg @ contrast / n_neg
    return float(aucs[0] - aucs[1]), float(np.sqrt(max(variance, 0.0)))


def reliability_curve(labels, predictions, n_bins: int = 10, binning: Binning = "mass") -> pd.DataFrame:
    """Per-bin mean prediction vs observed rate, for reliability plots (same bins as `ece`)."""
    label_array, prediction_array = _as_arrays(labels, predictions)
    if binning == "width":
        bin_ids = np.minimum((prediction_array * n_bins).astype(int), n_bins - 1)
    else:
        order = np.argsort(prediction_array, kind="stable")
        bin_ids = np.empty(len(order), dtype=int)
        bin_ids[order] = np.arange(len(order)) * n_bins // max(len(order), 1)
    frame = pd.DataFrame({"bin": bin_ids, "label": label_array, "prediction": prediction_array})
    return (
        frame.groupby("bin")
        .agg(mean_prediction=("prediction", "mean"), observed_rate=("label", "mean"), count=("label", "size"))
        .reset_index()
    )


def hit_rate_at_k(ranked_items: list[list], target_items: list, k: int = 10) -> float:
    """HR@K: share of users whose held-out item is among their top-K ranked items."""
    if not target_items:
        return float("nan")
    hits = [target in list(ranking)[:k] for ranking, target in zip(ranked_items, target_items, strict=True)]
    return float(np.mean(hits))


def ndcg_at_k(ranked_items: list[list], target_items: list, k: int = 10) -> float:
    """NDCG@K with one relevant item per user: 1 / log2(rank + 2) when it is in the top K, else 0."""
    if not target_items:
        return float("nan")
    gains = []
    for ranking, target in zip(ranked_items, target_items, strict=True):
        top_k = list(ranking)[:k]
        gains.append(1.0 / np.log2(top_k.index(target) + 2) if target in top_k else 0.0)
    return float(np.mean(gains))


def binary_metrics(labels, predictions, groups=None, ece_bins: int = 15) -> dict[str, float]:
    """The standard row of a ranker report: AUC, GAUC (when groups are given), logloss, ECE."""
    return {
        "auc": auc(labels, predictions),
        "gauc": gauc(labels, predictions, groups) if groups is not None else float("nan"),
        "logloss": logloss(labels, predictions),
        "ece": ece(labels, predictions, n_bins=ece_bins),
    }
