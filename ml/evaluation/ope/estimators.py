"""DM, IPS, SNIPS, DR and two weight-capped DR variants, each with a 95% interval and weight diagnostics.

Formulas follow OBP 0.5.7 (`obp/ope/estimators.py`); see the package docstring. Each estimator
states its per-row numerator and denominator; `ratio_interval` does the rest.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ml.evaluation.ope.diagnostics import WeightDiagnostics, weight_diagnostics
from ml.evaluation.ope.intervals import IntervalMethod, ratio_interval
from ml.evaluation.ope.rounds import LoggedRounds

ESTIMATORS = ("dm", "ips", "snips", "dr")


@dataclass(frozen=True)
class OffPolicyEstimate:
    """Value per impression (per logged (round, position)) unless `scaled` says otherwise."""

    estimator: str
    estimate: float
    ci_low: float
    ci_high: float
    standard_error: float
    interval_method: str
    level: float
    diagnostics: WeightDiagnostics
    unit: str = "per impression"

    def scaled(self, factor: float, unit: str) -> "OffPolicyEstimate":
        return replace(self, estimate=self.estimate * factor, ci_low=self.ci_low * factor,
                       ci_high=self.ci_high * factor, standard_error=self.standard_error * abs(factor), unit=unit)

    def per_day(self, impressions_per_day: float) -> "OffPolicyEstimate":
        """Value per day if the target served `impressions_per_day` impressions (the interval scales too)."""
        return self.scaled(impressions_per_day, "per day")

    def covers(self, value: float) -> bool:
        return bool(self.ci_low <= value <= self.ci_high)

    def as_row(self) -> dict[str, object]:
        d = self.diagnostics
        return {"estimator": self.estimator, "estimate": self.estimate, "ci_low": self.ci_low,
                "ci_high": self.ci_high, "standard_error": self.standard_error, "ess": d.effective_sample_size,
                "max_weight": d.max_weight, "support_share": d.support_share, "n_rounds": d.n_rounds,
                "n_clusters": d.n_clusters, "unit": self.unit, "interval": self.interval_method}


def _estimate(name: str, rounds: LoggedRounds, numerators: np.ndarray, denominators: np.ndarray,
              weights_used: np.ndarray | None, level: float, interval: IntervalMethod, n_bootstrap: int,
              seed: int) -> OffPolicyEstimate:
    codes, n_clusters = rounds.cluster_codes()
    result = ratio_interval(numerators, denominators, codes, n_clusters, level, interval, n_bootstrap, seed)
    diagnostics = weight_diagnostics(weights_used, rounds.n_rounds, n_clusters, rounds.target_mass_on_support)
    return OffPolicyEstimate(name, result.estimate, result.low, result.high, result.standard_error, result.method,
                             level, diagnostics)


def _ones(rounds: LoggedRounds) -> np.ndarray:
    return np.ones(rounds.n_rounds)


def direct_method(rounds: LoggedRounds, *, level: float = 0.95, interval: IntervalMethod = "analytic",
                  n_bootstrap: int = 2_000, seed: int = 0) -> OffPolicyEstimate:
    """Mean of the reward model's value of the target's choice; biased exactly as much as the model is.

    The interval is sampling noise over contexts only: it knows nothing of the model's bias.
    """
    _, q_target = rounds.require_reward_model()
    weights = rounds.weights if rounds.propensities is not None else None  # diagnostics of the logs only
    return _estimate("dm", rounds, q_target, _ones(rounds), weights, level, interval, n_bootstrap, seed)


def ips(rounds: LoggedRounds, *, clip: float | None = None, level: float = 0.95,
        interval: IntervalMethod = "analytic", n_bootstrap: int = 2_000, seed: int = 0) -> OffPolicyEstimate:
    weights = rounds.weights if clip is None else np.minimum(rounds.weights, clip)
    name = "ips" if clip is None else f"ips-clip({clip:g})"
    return _estimate(name, rounds, weights * rounds.rewards, _ones(rounds), weights, level, interval, n_bootstrap,
                     seed)


def snips(rounds: LoggedRounds, *, level: float = 0.95, interval: IntervalMethod = "analytic",
          n_bootstrap: int = 2_000, seed: int = 0) -> OffPolicyEstimate:
    """Weighted mean of rewards: bounded by the rewards' range, slightly biased (O(1/n)), lower variance."""
    weights = rounds.weights
    return _estimate("snips", rounds, weights * rounds.rewards, weights, weights, level, interval, n_bootstrap,
                     seed)


def _doubly_robust(name: str, rounds: LoggedRounds, weights: np.ndarray, level: float, interval: IntervalMethod,
                   n_bootstrap: int, seed: int) -> OffPolicyEstimate:
    q_logged, q_target = rounds.require_reward_model()
    contributions = q_target + weights * (rounds.rewards - q_logged)
    return _estimate(name, rounds, contributions, _ones(rounds), weights, level, interval, n_bootstrap, seed)


def doubly_robust(rounds: LoggedRounds, *, clip: float | None = None, level: float = 0.95,
                  interval: IntervalMethod = "analytic", n_bootstrap: int = 2_000, seed: int = 0) -> OffPolicyEstimate:
    """DM plus the weighted residual of the logged action; unbiased if either weights or model are right.

    `clip` caps the weights at a value (OBP's `DoublyRobust(lambda_=clip)`): less variance, bias
    towards DM on the capped rows.
    """
    weights = rounds.weights if clip is None else np.minimum(rounds.weights, clip)
    name = "dr" if clip is None else f"dr-clip({clip:g})"
    return _doubly_robust(name, rounds, weights, level, interval, n_bootstrap, seed)


def switch_doubly_robust(rounds: LoggedRounds, *, threshold: float, level: float = 0.95,
                         interval: IntervalMethod = "analytic", n_bootstrap: int = 2_000,
                         seed: int = 0) -> OffPolicyEstimate:
    """DR on rows whose weight is <= threshold, DM alone on the others (OBP's `SwitchDoublyRobust`)."""
    weights = rounds.weights
    weights = np.where(weights <= threshold, weights, 0.0)
    return _doubly_robust(f"switch-dr({threshold:g})", rounds, weights, level, interval, n_bootstrap, seed)


def on_policy_value(rewards, clusters=None, *, level: float = 0.95, interval: IntervalMethod = "analytic",
                    n_bootstrap: int = 2_000, seed: int = 0) -> OffPolicyEstimate:
    """Mean reward of a policy's own logs, with the same kind of interval: the truth OPE is judged against."""
    rounds = LoggedRounds(rewards=rewards, clusters=clusters)
    return _estimate("on-policy", rounds, rounds.rewards, _ones(rounds), None, level, interval, n_bootstrap, seed)


def estimate_all(rounds: LoggedRounds, estimators: tuple[str, ...] | None = None, *, clip: float | None = None,
                 switch_threshold: float | None = None, level: float = 0.95, interval: IntervalMethod = "analytic",
                 n_bootstrap: int = 2_000, seed: int = 0) -> list[OffPolicyEstimate]:
    """The named estimators (default: every one the inputs allow), plus DR-clip / Switch-DR when given a cap."""
    if estimators is None:
        has_weights, has_model = rounds.propensities is not None, rounds.q_logged is not None
        estimators = tuple(name for name in ESTIMATORS
                           if (name == "dm" and has_model) or (name in ("ips", "snips") and has_weights)
                           or (name == "dr" and has_weights and has_model))
    options = {"level": level, "interval": interval, "n_bootstrap": n_bootstrap, "seed": seed}
    by_name = {"dm": direct_method, "ips": ips, "snips": snips, "dr": doubly_robust}
    unknown = set(estimators) - set(by_name)
    if unknown:
        raise ValueError(f"unknown estimators {sorted(unknown)}; known: {list(by_name)}")
    results = [by_name[name](rounds, **options) for name in estimators]
    if clip is not None:
        results.append(doubly_robust(rounds, clip=clip, **options))
    if switch_threshold is not None:
        results.append(switch_doubly_robust(rounds, threshold=switch_threshold, **options))
    return results
