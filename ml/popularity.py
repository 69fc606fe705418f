"""The fallback scorer when a task has no champion ranker: the ad's own recent rate, smoothed toward
the pooled rate, (ad positives + s x pooled) / (ad trials + s), with s = 50 as the ranker report's
popularity baseline (ml.rankers.baselines.PopularityBaseline). It is what a first ranker version must
beat beyond noise to become champion (ml.evaluation.value_gate.beats_trivial_scorers), so a refused
version is replaced by a scorer at least as good on its holdout, not by a constant.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

SMOOTHING_STRENGTH = 50.0
# (positives, trials) of each ad over the 7 days before the snapshot, as the rankers see them.
AD_COUNTS = {"ctr": ("ad_clicks_7d", "ad_impressions_7d"), "cvr": ("ad_conversions_7d", "ad_clicks_7d")}


def has_ad_counts(features: pd.DataFrame, task: str) -> bool:
    return set(AD_COUNTS[task]) <= set(features.columns)


def pooled_rate(features: pd.DataFrame, task: str) -> float | None:
    """Positives over trials summed over the distinct ads of `features`; None without any trial."""
    positives, trials = AD_COUNTS[task]
    per_ad = features.drop_duplicates("ad_id")
    total = float(per_ad[trials].fillna(0).sum())
    return float(per_ad[positives].fillna(0).sum()) / total if total > 0 else None


def popularity_rate(features: pd.DataFrame, task: str, prior: float) -> np.ndarray:
    """Each row's ad rate, smoothed toward `prior`."""
    positives, trials = AD_COUNTS[task]
    hits = features[positives].fillna(0).to_numpy(float)
    tries = features[trials].fillna(0).to_numpy(float)
    return (hits + SMOOTHING_STRENGTH * prior) / (tries + SMOOTHING_STRENGTH)
