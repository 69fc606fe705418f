"""Promotion by value: a challenger ranker replaces its champion only when the schedule it produces is
worth more, off-policy, on the same logged day, beyond noise. AUC is a guard, not the judge.

Why: a ranker can order clicks better (higher AUC) and still produce a worse schedule, e.g. when it is
mis-calibrated across bid types or campaigns, because the allocator spends on bid x pCTR (x pCVR),
not on the ranking alone. This project measured a higher-AUC ranker giving 79% instead of 89% of the
oracle's value.

Rules (each decision carries its reason in words):
- first version (no champion yet): becomes champion only if its holdout AUC beats a constant scorer
  (0.5) and the popularity baseline beyond noise (the lower end of the 95% interval of the paired
  difference above 0); otherwise it is refused and scheduling falls back (see the caller);
- challenger vs champion: the guard refuses a challenger whose AUC is worse than the champion's
  beyond noise (paired DeLong, upper end of the 95% interval below 0); a challenger that passes is
  promoted only if the doubly robust value of its schedule minus the champion's, on the same logged
  rounds, has a 95% interval above 0.
"""
from __future__ import annotations

from dataclasses import dataclass

Z_95 = 1.959964


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reason: str


def beats_trivial_scorers(auc: float, auc_minus_constant_se: float, auc_minus_popularity: float,
                          auc_minus_popularity_se: float) -> GateResult:
    """First-version rule: AUC above 0.5 and above the popularity baseline's, each beyond noise."""
    constant_low = (auc - 0.5) - Z_95 * auc_minus_constant_se
    popularity_low = auc_minus_popularity - Z_95 * auc_minus_popularity_se
    if not constant_low > 0:
        return GateResult(False, f"AUC {auc:.4f} is not above a constant scorer's 0.5 beyond noise "
                                 f"(95% lower bound of the difference {constant_low:+.4f})")
    if not popularity_low > 0:
        return GateResult(False, f"AUC {auc:.4f} is not above the popularity baseline beyond noise "
                                 f"(difference {auc_minus_popularity:+.4f}, lower bound {popularity_low:+.4f})")
    margin = Z_95 * auc_minus_popularity_se
    return GateResult(True, f"AUC {auc:.4f} beats a constant scorer and popularity beyond noise "
                            f"(popularity difference {auc_minus_popularity:+.4f} ± {margin:.4f})")


def auc_guard(challenger_minus_champion: float, difference_se: float) -> GateResult:
    """The challenger may not be worse than the champion on the holdout beyond noise."""
    high = challenger_minus_champion + Z_95 * difference_se
    if high < 0:
        return GateResult(False, f"AUC worse than the champion's beyond noise ({challenger_minus_champion:+.4f}, "
                                 f"95% upper bound {high:+.4f})")
    return GateResult(True, f"AUC guard passed ({challenger_minus_champion:+.4f} ± {Z_95 * difference_se:.4f})")


def value_verdict(difference: dict) -> GateResult:
    """`difference`: paired DR value of the challenger's schedule minus the champion's (per impression)."""
    estimate, low, high = difference["difference"], difference["ci_low"], difference["ci_high"]
    if low > 0:
        return GateResult(True, f"its schedule is worth {estimate:+.5f} per impression more (DR, 95% "
                                f"[{low:+.5f}, {high:+.5f}])")
    return GateResult(False, f"its schedule is not worth more beyond noise (DR difference {estimate:+.5f}, "
                             f"95% [{low:+.5f}, {high:+.5f}])")
