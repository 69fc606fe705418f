"""Off-policy value of a target policy from logged rounds, with intervals that treat the user as the unit.

Estimators (formulas as OBP 0.5.7 `obp/ope/estimators.py`, per logged row i with importance weight
w_i = pi_target(a_i|x_i) / pi_log(a_i|x_i)):

- DM:     mean_i  q_target_i                              (q_target_i = sum_a pi_target(a|x_i) q_hat(x_i, a))
- IPS:    mean_i  w_i r_i
- SNIPS:  sum_i w_i r_i / sum_i w_i
- DR:     mean_i  q_target_i + w_i (r_i - q_logged_i)     (q_logged_i = q_hat(x_i, a_i))
- DR-clip: DR with w_i replaced by min(w_i, clip)          (OBP's DoublyRobust(lambda_=clip))
- Switch-DR: DR with w_i replaced by w_i 1[w_i <= threshold] (OBP's SwitchDoublyRobust)

Every estimator is a ratio of sums, sum_i a_i / sum_i b_i (b_i = 1 except SNIPS, b_i = w_i), so one
interval code path serves all: per-cluster (per-user) sums A_g, B_g, then either the delta-method
(cluster-robust, "sandwich") variance sum_g (A_g - theta B_g)^2 / (sum_g B_g)^2 * G / (G - 1), or a
percentile bootstrap that resamples whole clusters. Rounds of one user share the user, so they are
not independent; without a cluster id every row is its own cluster (OBP's iid bootstrap unit).

Positions: per-position (slot) independence, as OBP does for the Open Bandit Dataset. Each
(round, position) is its own bandit round whose propensities are that position's marginal
probabilities (pi(a | x, position)); the value is the mean reward per shown (round, position), i.e.
per impression. This ignores interactions between the items of one list (a slate estimator would
not), and is exact when a position's click depends only on the item shown there.
"""
from ml.evaluation.ope.diagnostics import WeightDiagnostics, kish_effective_size, support_share
from ml.evaluation.ope.estimators import (
    ESTIMATORS,
    OffPolicyEstimate,
    direct_method,
    doubly_robust,
    estimate_all,
    ips,
    on_policy_value,
    snips,
    switch_doubly_robust,
)
from ml.evaluation.ope.frame import estimate_frame
from ml.evaluation.ope.rounds import LoggedRounds

__all__ = [
    "ESTIMATORS", "LoggedRounds", "OffPolicyEstimate", "WeightDiagnostics", "direct_method", "doubly_robust",
    "estimate_all", "estimate_frame", "ips", "kish_effective_size", "on_policy_value", "snips", "support_share",
    "switch_doubly_robust",
]
