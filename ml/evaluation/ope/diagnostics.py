"""How much the logs can say about the target: effective sample size, largest weight, support coverage."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WeightDiagnostics:
    effective_sample_size: float  # Kish: (sum w)^2 / sum w^2; n when all weights are equal
    max_weight: float
    support_share: float  # target mass on actions the logger could take; NaN when the caller did not say
    n_rounds: int
    n_clusters: int


def kish_effective_size(weights) -> float:
    weights = np.asarray(weights, dtype=float)
    squares = float((weights**2).sum())
    return float(weights.sum() ** 2 / squares) if squares > 0 else 0.0


def support_share(target_distribution, logging_distribution) -> float:
    """Share of the target's mass on actions with logging propensity > 0.

    Both arrays hold each row's distribution over actions, shape (rows, actions) or
    (rows, actions, positions): sum of target mass where pi_log > 0, over total target mass.
    """
    target = np.asarray(target_distribution, dtype=float)
    logging = np.asarray(logging_distribution, dtype=float)
    if target.shape != logging.shape:
        raise ValueError(f"target {target.shape} and logging {logging.shape} distributions differ in shape")
    total = target.sum()
    if total <= 0:
        raise ValueError("the target distribution has no mass")
    return float(target[logging > 0].sum() / total)


def target_mass_on_support(target_distribution, logging_distribution) -> np.ndarray:
    """Per row (first axis): target mass on actions the logger could take; LoggedRounds.target_mass_on_support."""
    target = np.asarray(target_distribution, dtype=float)
    logging = np.asarray(logging_distribution, dtype=float)
    if target.shape != logging.shape:
        raise ValueError(f"target {target.shape} and logging {logging.shape} distributions differ in shape")
    return np.where(logging > 0, target, 0.0).reshape(len(target), -1).sum(axis=1)


def weight_diagnostics(weights: np.ndarray | None, n_rounds: int, n_clusters: int,
                       mass_on_support: np.ndarray | None) -> WeightDiagnostics:
    share = float(mass_on_support.mean()) if mass_on_support is not None else float("nan")
    if weights is None:
        return WeightDiagnostics(float("nan"), float("nan"), share, n_rounds, n_clusters)
    return WeightDiagnostics(kish_effective_size(weights), float(weights.max()), share, n_rounds, n_clusters)
