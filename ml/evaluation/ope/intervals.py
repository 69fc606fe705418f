"""Intervals for ratio-of-sums estimates with the cluster (user) as the unit of independence.

An estimate theta = sum_i a_i / sum_i b_i. Summing a and b per cluster gives (A_g, B_g); clusters are
independent, rows of one cluster need not be. The mean estimators have b_i = 1, so B_g is the
cluster's row count, which varies between users: treating it as random (the ratio form) is what
keeps the variance right when heavy users are also the ones with unusual rewards.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import norm

IntervalMethod = Literal["analytic", "bootstrap"]
BOOTSTRAP_CELLS_PER_CHUNK = 2_000_000  # resampled cluster indices held in memory at once


@dataclass(frozen=True)
class Interval:
    estimate: float
    standard_error: float
    low: float
    high: float
    method: str


def cluster_sums(values: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    return np.bincount(codes, weights=values, minlength=n_clusters)


def ratio_interval(numerators: np.ndarray, denominators: np.ndarray, codes: np.ndarray, n_clusters: int,
                   level: float = 0.95, method: IntervalMethod = "analytic", n_bootstrap: int = 2_000,
                   seed: int = 0) -> Interval:
    cluster_a = cluster_sums(numerators, codes, n_clusters)
    cluster_b = cluster_sums(denominators, codes, n_clusters)
    total_b = cluster_b.sum()
    if total_b <= 0:
        nan = float("nan")
        return Interval(nan, nan, nan, nan, method)
    estimate = float(cluster_a.sum() / total_b)
    # Delta method for a ratio of sums, with the small-sample factor G / (G - 1) (Stata's CR1 for a mean).
    residuals = cluster_a - estimate * cluster_b
    g = n_clusters
    variance = float((residuals**2).sum() / total_b**2 * g / (g - 1)) if g > 1 else float("nan")
    standard_error = float(np.sqrt(variance))
    if method == "analytic":
        z = float(norm.ppf(0.5 + level / 2))
        return Interval(estimate, standard_error, estimate - z * standard_error, estimate + z * standard_error,
                        "cluster-robust normal")
    if method == "bootstrap":
        replicates = bootstrap_ratios(cluster_a, cluster_b, n_bootstrap, seed)
        low, high = np.nanquantile(replicates, [0.5 - level / 2, 0.5 + level / 2])
        return Interval(estimate, standard_error, float(low), float(high), "cluster bootstrap percentile")
    raise ValueError(f"unknown interval method {method!r}: use 'analytic' or 'bootstrap'")


def bootstrap_ratios(cluster_a: np.ndarray, cluster_b: np.ndarray, n_bootstrap: int, seed: int) -> np.ndarray:
    """Ratio sum A / sum B over n_bootstrap resamples of whole clusters with replacement (seeded)."""
    rng = np.random.default_rng(seed)
    g = len(cluster_a)
    per_chunk = max(1, BOOTSTRAP_CELLS_PER_CHUNK // g)
    replicates = np.empty(n_bootstrap)
    for start in range(0, n_bootstrap, per_chunk):
        stop = min(start + per_chunk, n_bootstrap)
        picked = rng.integers(0, g, size=(stop - start, g))
        sum_b = cluster_b[picked].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            replicates[start:stop] = np.where(sum_b > 0, cluster_a[picked].sum(axis=1) / sum_b, np.nan)
    return replicates
