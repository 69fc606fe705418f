"""Logged rounds as the estimators read them, validated once at construction."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PROBABILITY_TOLERANCE = 1e-9  # probabilities computed in floating point may exceed 1 by rounding


def _vector(name: str, values, n: int | None) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if n is not None and len(array) != n:
        raise ValueError(f"{name} has {len(array)} rows, rewards has {n}")
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"{name} has {int(bad.sum())} NaN or infinite values (first at row {int(np.argmax(bad))})")
    return array


def _check_range(name: str, array: np.ndarray, low: float, high: float, low_open: bool) -> None:
    below = array <= low if low_open else array < low
    bad = below | (array > high + PROBABILITY_TOLERANCE)
    if bad.any():
        bound = "(" if low_open else "["
        first = int(np.argmax(bad))
        raise ValueError(f"{name} must lie in {bound}{low}, {high}]: {int(bad.sum())} rows do not "
                         f"(first at row {first}: {array[first]!r})")


@dataclass(frozen=True)
class LoggedRounds:
    """One row per logged (round, position): what was shown, its reward, and the two policies' odds of it.

    rewards: observed reward of the logged action (a click: 0/1).
    propensities: pi_log(logged action | context, position), in (0, 1].
    target_probabilities: pi_target(logged action | context, position), in [0, 1].
    q_logged: reward model's prediction for the logged action, q_hat(x, a_logged).
    q_target_expected: the reward model's value of the target's choice, sum_a pi_target(a|x) q_hat(x, a).
    clusters: the unit of independence (the user); None = every row its own unit.
    positions: slot of the row (0-based), kept for per-position reports; estimates pool all positions.
    target_mass_on_support: per row, sum_a pi_target(a|x) 1[pi_log(a|x) > 0]; when the caller knows the
        logging policy's support. IPS/DR are blind to target mass outside it.
    """

    rewards: np.ndarray
    propensities: np.ndarray | None = None
    target_probabilities: np.ndarray | None = None
    q_logged: np.ndarray | None = None
    q_target_expected: np.ndarray | None = None
    clusters: np.ndarray | None = None
    positions: np.ndarray | None = None
    target_mass_on_support: np.ndarray | None = None

    def __post_init__(self) -> None:
        rewards = _vector("rewards", self.rewards, None)
        n = len(rewards)
        if n == 0:
            raise ValueError("no logged rounds")
        object.__setattr__(self, "rewards", rewards)
        if (self.propensities is None) != (self.target_probabilities is None):
            raise ValueError("give both propensities and target_probabilities (the weight needs both) or neither")
        if (self.q_logged is None) != (self.q_target_expected is None):
            raise ValueError("give both q_logged and q_target_expected (DR needs both) or neither")
        for name in ("propensities", "target_probabilities", "q_logged", "q_target_expected", "target_mass_on_support"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _vector(name, value, n))
        if self.propensities is not None:
            _check_range("propensities", self.propensities, 0.0, 1.0, low_open=True)
            _check_range("target_probabilities", self.target_probabilities, 0.0, 1.0, low_open=False)
        if self.target_mass_on_support is not None:
            _check_range("target_mass_on_support", self.target_mass_on_support, 0.0, 1.0, low_open=False)
        if self.clusters is not None:
            clusters = np.asarray(self.clusters)
            if clusters.shape != (n,):
                raise ValueError(f"clusters has shape {clusters.shape}, rewards has {n} rows")
            if pd.isna(clusters).any():
                raise ValueError("clusters has missing values: every row needs its user")
            object.__setattr__(self, "clusters", clusters)
        if self.positions is not None:
            positions = np.asarray(self.positions)
            if positions.shape != (n,) or not np.issubdtype(positions.dtype, np.integer) or (positions < 0).any():
                raise ValueError("positions must be non-negative integers, one per row")
            object.__setattr__(self, "positions", positions)

    @property
    def n_rounds(self) -> int:
        return len(self.rewards)

    @property
    def weights(self) -> np.ndarray:
        """Importance weights pi_target / pi_log of the logged actions."""
        if self.propensities is None:
            raise ValueError("this estimator needs propensities and target_probabilities")
        return self.target_probabilities / self.propensities

    def cluster_codes(self) -> tuple[np.ndarray, int]:
        """Integer cluster code per row (0..G-1) and G."""
        if self.clusters is None:
            return np.arange(self.n_rounds), self.n_rounds
        codes, uniques = pd.factorize(self.clusters)
        return codes, len(uniques)

    def require_reward_model(self) -> tuple[np.ndarray, np.ndarray]:
        if self.q_logged is None:
            raise ValueError("this estimator needs reward-model predictions q_logged and q_target_expected")
        return self.q_logged, self.q_target_expected
