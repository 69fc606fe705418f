"""Off-policy estimators on a contextual bandit whose value is known exactly, identities, bad input."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from ml.evaluation.ope import (
    LoggedRounds,
    direct_method,
    doubly_robust,
    estimate_all,
    estimate_frame,
    ips,
    kish_effective_size,
    on_policy_value,
    snips,
    support_share,
    switch_doubly_robust,
)
from ml.evaluation.ope.diagnostics import target_mass_on_support
from ml.evaluation.ope.reward_model import cross_fit_click_rates, direct_method_refit_bootstrap, fit_click_rates

# The world: 4 contexts, 5 actions, two kinds of user. Heavy users (15 rounds each) click more than
# light ones (3 rounds each), so a user's rounds are correlated and the per-user count is random.
CONTEXT_P = np.array([0.4, 0.3, 0.2, 0.1])
BASE_CLICK = np.array([[0.10, 0.30, 0.20, 0.05, 0.40],
                       [0.50, 0.10, 0.25, 0.30, 0.15],
                       [0.20, 0.20, 0.60, 0.10, 0.05],
                       [0.05, 0.45, 0.10, 0.35, 0.20]])
TYPE_P = np.array([0.7, 0.3])
TYPE_ROUNDS = np.array([3, 15])
TYPE_SHIFT = np.array([-0.15, 0.35])
CLICK_BY_TYPE = np.clip(BASE_CLICK[None] + TYPE_SHIFT[:, None, None], 0.0, 1.0)  # (type, context, action)


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


LOGGING = _softmax(np.array([[0.0, 0.5, 0.2, -0.3, 0.1], [0.3, 0.0, 0.0, 0.2, -0.2],
                             [-0.1, 0.2, 0.1, 0.0, 0.3], [0.2, -0.2, 0.1, 0.4, 0.0]]))
TARGET = _softmax(3.0 * BASE_CLICK / BASE_CLICK.max())  # leans towards the better actions
# An impression comes from a type in proportion to P(type) x rounds per user of that type.
IMPRESSION_TYPE_P = TYPE_P * TYPE_ROUNDS / (TYPE_P * TYPE_ROUNDS).sum()
TRUE_Q = np.tensordot(IMPRESSION_TYPE_P, CLICK_BY_TYPE, axes=1)  # E[click | context, action]
EXACT_VALUE = float(CONTEXT_P @ (TARGET * TRUE_Q).sum(axis=1))


@dataclass
class Logs:
    context: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    user: np.ndarray


def simulate(rng: np.random.Generator, n_users: int = 150, logging: np.ndarray = LOGGING) -> Logs:
    types = rng.choice(2, size=n_users, p=TYPE_P)
    user = np.repeat(np.arange(n_users), TYPE_ROUNDS[types])
    row_type = types[user]
    context = rng.choice(len(CONTEXT_P), size=len(user), p=CONTEXT_P)
    cumulative = logging[context].cumsum(axis=1)
    action = (rng.random(len(user))[:, None] > cumulative).sum(axis=1)
    reward = (rng.random(len(user)) < CLICK_BY_TYPE[row_type, context, action]).astype(float)
    return Logs(context, action, reward, user)


def rounds_for(logs: Logs, q: np.ndarray = TRUE_Q, target: np.ndarray = TARGET, logging: np.ndarray = LOGGING,
               clustered: bool = True) -> LoggedRounds:
    return LoggedRounds(
        rewards=logs.reward,
        propensities=logging[logs.context, logs.action],
        target_probabilities=target[logs.context, logs.action],
        q_logged=q[logs.context, logs.action],
        q_target_expected=(target * q).sum(axis=1)[logs.context],
        clusters=logs.user if clustered else None,
    )


WRONG_Q = np.full_like(TRUE_Q, 0.1)  # a reward model that knows nothing


@pytest.fixture(scope="module")
def replications() -> dict[str, np.ndarray]:
    """200 seeded replications: estimate, interval and standard error per estimator."""
    out: dict[str, list] = {}
    for seed in range(200):
        logs = simulate(np.random.default_rng(seed))
        good, wrong = rounds_for(logs), rounds_for(logs, q=WRONG_Q)
        iid = rounds_for(logs, clustered=False)
        results = {"dm": direct_method(good), "dm_wrong_model": direct_method(wrong), "ips": ips(good),
                   "snips": snips(good), "dr": doubly_robust(good), "dr_wrong_model": doubly_robust(wrong),
                   "ips_iid": ips(iid)}
        for name, result in results.items():
            out.setdefault(name, []).append((result.estimate, result.ci_low, result.ci_high, result.standard_error))
    return {name: np.array(rows) for name, rows in out.items()}


@pytest.mark.parametrize("name", ["dm", "ips", "snips", "dr", "dr_wrong_model"])
def test_mean_over_replications_matches_exact_value(replications, name):
    estimates = replications[name][:, 0]
    tolerance = 4 * estimates.std(ddof=1) / np.sqrt(len(estimates))
    assert abs(estimates.mean() - EXACT_VALUE) < tolerance, (estimates.mean(), EXACT_VALUE, tolerance)
    assert abs(estimates.mean() - EXACT_VALUE) < 0.01


def test_direct_method_with_a_wrong_model_is_biased_and_dr_repairs_it(replications):
    dm_wrong = replications["dm_wrong_model"][:, 0]
    assert abs(dm_wrong.mean() - EXACT_VALUE) > 0.2  # 0.1 everywhere vs a value above 0.4
    assert abs(replications["dr_wrong_model"][:, 0].mean() - EXACT_VALUE) < 0.01


@pytest.mark.parametrize("name", ["ips", "snips", "dr", "dr_wrong_model"])
def test_cluster_robust_intervals_cover_the_exact_value(replications, name):
    _, low, high, _ = replications[name].T
    coverage = np.mean((low <= EXACT_VALUE) & (EXACT_VALUE <= high))
    assert coverage >= 0.90, coverage


def test_treating_correlated_rounds_as_independent_understates_the_error(replications):
    """Same estimate, but per-row standard errors ignore that heavy users click more: narrower intervals."""
    assert np.allclose(replications["ips"][:, 0], replications["ips_iid"][:, 0])
    assert np.mean(replications["ips"][:, 3] / replications["ips_iid"][:, 3]) > 1.1


def test_cluster_bootstrap_intervals_cover_the_exact_value():
    covered = []
    for seed in range(200):
        logs = simulate(np.random.default_rng(1_000 + seed))
        result = doubly_robust(rounds_for(logs, q=WRONG_Q), interval="bootstrap", n_bootstrap=300, seed=seed)
        covered.append(result.covers(EXACT_VALUE))
    assert np.mean(covered) >= 0.90, np.mean(covered)


def test_bootstrap_and_analytic_intervals_agree_on_a_large_sample():
    rounds = rounds_for(simulate(np.random.default_rng(7), n_users=3_000))
    analytic = snips(rounds)
    bootstrap = snips(rounds, interval="bootstrap", n_bootstrap=1_000, seed=3)
    assert bootstrap.estimate == analytic.estimate
    width_ratio = (bootstrap.ci_high - bootstrap.ci_low) / (analytic.ci_high - analytic.ci_low)
    assert 0.85 < width_ratio < 1.15, width_ratio
    again = snips(rounds, interval="bootstrap", n_bootstrap=1_000, seed=3)
    other = snips(rounds, interval="bootstrap", n_bootstrap=1_000, seed=4)
    assert (again.ci_low, again.ci_high) == (bootstrap.ci_low, bootstrap.ci_high)
    assert (other.ci_low, other.ci_high) != (bootstrap.ci_low, bootstrap.ci_high)


def test_ips_equals_the_on_policy_mean_when_target_is_the_logger():
    logs = simulate(np.random.default_rng(11))
    rounds = rounds_for(logs, target=LOGGING)
    on_policy = on_policy_value(logs.reward, clusters=logs.user)
    for result in (ips(rounds), snips(rounds)):
        assert result.estimate == pytest.approx(logs.reward.mean(), abs=1e-12)
        assert (result.ci_low, result.ci_high) == pytest.approx((on_policy.ci_low, on_policy.ci_high), abs=1e-12)
        assert result.diagnostics.effective_sample_size == pytest.approx(len(logs.reward))
        assert result.diagnostics.max_weight == pytest.approx(1.0)


def test_dr_equals_dm_when_the_target_never_takes_the_logged_actions():
    logs = simulate(np.random.default_rng(12))
    rounds = rounds_for(logs, q=WRONG_Q * 0.7)
    zero_weights = LoggedRounds(rewards=rounds.rewards, propensities=rounds.propensities,
                                target_probabilities=np.zeros(rounds.n_rounds), q_logged=rounds.q_logged,
                                q_target_expected=rounds.q_target_expected, clusters=logs.user)
    dr, dm = doubly_robust(zero_weights), direct_method(zero_weights)
    assert (dr.estimate, dr.ci_low, dr.ci_high) == pytest.approx((dm.estimate, dm.ci_low, dm.ci_high), abs=1e-15)
    assert ips(zero_weights).estimate == 0.0


def test_dr_with_the_true_reward_model_varies_less_than_ips(replications):
    assert replications["dr"][:, 0].std() < 0.85 * replications["ips"][:, 0].std()


def test_snips_with_constant_weights_is_the_logged_mean():
    rng = np.random.default_rng(13)
    rewards = rng.random(500)
    rounds = LoggedRounds(rewards=rewards, propensities=np.full(500, 0.2), target_probabilities=np.full(500, 0.5))
    assert snips(rounds).estimate == pytest.approx(rewards.mean(), abs=1e-12)
    assert ips(rounds).estimate == pytest.approx(2.5 * rewards.mean(), abs=1e-12)


def test_analytic_standard_errors_match_textbook_formulas():
    logs = simulate(np.random.default_rng(14))
    rounds = rounds_for(logs, clustered=False)
    contributions = rounds.weights * rounds.rewards
    assert ips(rounds).standard_error == pytest.approx(contributions.std(ddof=1) / np.sqrt(len(contributions)))
    # Clustered: linearised ratio sum_g (A_g - theta n_g)^2 / N^2 * G / (G - 1), computed with pandas here.
    clustered = rounds_for(logs)
    theta = contributions.mean()
    per_user = pd.DataFrame({"c": contributions, "u": logs.user}).groupby("u")["c"].agg(["sum", "size"])
    g, n = len(per_user), len(contributions)
    expected = np.sqrt(((per_user["sum"] - theta * per_user["size"]) ** 2).sum() / n**2 * g / (g - 1))
    assert ips(clustered).standard_error == pytest.approx(expected)


def test_weight_caps_reduce_to_dr_and_dm_at_the_extremes():
    rounds = rounds_for(simulate(np.random.default_rng(15)), q=WRONG_Q)
    dr, dm = doubly_robust(rounds), direct_method(rounds)
    assert doubly_robust(rounds, clip=np.inf).estimate == pytest.approx(dr.estimate)
    assert switch_doubly_robust(rounds, threshold=np.inf).estimate == pytest.approx(dr.estimate)
    assert switch_doubly_robust(rounds, threshold=0.0).estimate == pytest.approx(dm.estimate)
    capped = doubly_robust(rounds, clip=1.0)
    assert capped.diagnostics.max_weight <= 1.0 < dr.diagnostics.max_weight
    assert capped.estimator == "dr-clip(1)"


def test_per_day_scales_estimate_and_interval():
    result = ips(rounds_for(simulate(np.random.default_rng(16))))
    daily = result.per_day(1_000_000)
    assert daily.estimate == pytest.approx(result.estimate * 1e6)
    assert (daily.ci_low, daily.ci_high) == pytest.approx((result.ci_low * 1e6, result.ci_high * 1e6))
    assert daily.unit == "per day" and result.unit == "per impression"


def test_diagnostics_ess_and_support_share():
    assert kish_effective_size([1.0, 1.0, 1.0, 1.0]) == pytest.approx(4.0)
    assert kish_effective_size([4.0, 0.0, 0.0, 0.0]) == pytest.approx(1.0)
    logging = np.array([[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    target = np.array([[0.2, 0.5, 0.3], [0.0, 0.0, 1.0]])
    assert support_share(target, logging) == pytest.approx(1.7 / 2)
    mass = target_mass_on_support(target, logging)
    assert mass == pytest.approx([0.7, 1.0])
    rounds = LoggedRounds(rewards=[1.0, 0.0], propensities=[0.5, 1 / 3], target_probabilities=[0.5, 1.0],
                          target_mass_on_support=mass)
    assert ips(rounds).diagnostics.support_share == pytest.approx(0.85)
    assert np.isnan(ips(LoggedRounds(rewards=[1.0], propensities=[0.5], target_probabilities=[0.5]))
                    .diagnostics.support_share)


def test_estimate_frame_returns_a_tidy_table():
    logs = simulate(np.random.default_rng(17))
    rounds = rounds_for(logs)
    frame = pd.DataFrame({"user_key": [f"u{u}" for u in logs.user], "reward": rounds.rewards,
                          "propensity": rounds.propensities, "target_probability": rounds.target_probabilities,
                          "q_logged": rounds.q_logged, "q_target_expected": rounds.q_target_expected,
                          "position": np.zeros(rounds.n_rounds, dtype=int)})
    table = estimate_frame(frame, clip=5.0, impressions_per_day=10_000)
    assert table["estimator"].tolist() == ["dm", "ips", "snips", "dr", "dr-clip(5)"]
    for column in ("estimate", "ci_low", "ci_high", "ess", "max_weight", "support_share", "n_rounds", "n_clusters",
                   "estimate_per_day"):
        assert column in table.columns
    assert (table["n_clusters"] == len(np.unique(logs.user))).all()
    assert (table["n_rounds"] == len(frame)).all()
    assert table.set_index("estimator").loc["dr", "estimate"] == pytest.approx(doubly_robust(rounds).estimate)
    assert table["estimate_per_day"].to_numpy() == pytest.approx(table["estimate"].to_numpy() * 10_000)
    weights_only = estimate_frame(frame[["reward", "propensity", "target_probability"]])
    assert weights_only["estimator"].tolist() == ["ips", "snips"]
    assert (weights_only["n_clusters"] == len(frame)).all()  # no user column: every row its own unit


def _valid_kwargs() -> dict:
    return {"rewards": [1.0, 0.0, 1.0], "propensities": [0.5, 0.2, 1.0], "target_probabilities": [0.1, 0.0, 1.0],
            "q_logged": [0.3, 0.3, 0.3], "q_target_expected": [0.4, 0.4, 0.4], "clusters": ["a", "a", "b"]}


@pytest.mark.parametrize("change, message", [
    ({"propensities": [0.5, 0.0, 1.0]}, "propensities must lie in"),
    ({"propensities": [0.5, 1.2, 1.0]}, "propensities must lie in"),
    ({"target_probabilities": [0.5, -0.1, 1.0]}, "target_probabilities must lie in"),
    ({"rewards": [1.0, np.nan, 0.0]}, "rewards has 1 NaN"),
    ({"q_logged": [0.3, np.inf, 0.3]}, "q_logged has 1 NaN or infinite"),
    ({"propensities": [0.5, 0.2]}, "propensities has 2 rows, rewards has 3"),
    ({"clusters": ["a", None, "b"]}, "clusters has missing values"),
    ({"clusters": ["a", "b"]}, "clusters has shape"),
    ({"target_probabilities": None}, "give both propensities and target_probabilities"),
    ({"q_target_expected": None}, "give both q_logged and q_target_expected"),
    ({"rewards": []}, "no logged rounds"),
])
def test_bad_input_raises_a_clear_value_error(change, message):
    with pytest.raises(ValueError, match=message):
        LoggedRounds(**{**_valid_kwargs(), **change})


def test_estimators_say_what_input_they_miss():
    no_model = LoggedRounds(rewards=[1.0, 0.0], propensities=[0.5, 0.5], target_probabilities=[0.5, 0.5])
    with pytest.raises(ValueError, match="needs reward-model predictions"):
        doubly_robust(no_model)
    no_weights = LoggedRounds(rewards=[1.0, 0.0], q_logged=[0.1, 0.1], q_target_expected=[0.2, 0.2])
    with pytest.raises(ValueError, match="needs propensities"):
        ips(no_weights)
    assert direct_method(no_weights).estimate == pytest.approx(0.2)
    with pytest.raises(ValueError, match="unknown estimators"):
        estimate_all(no_model, ("ips", "magic"))
    with pytest.raises(ValueError, match="unknown interval method"):
        ips(no_model, interval="jackknife")


def test_cross_fitted_click_rates_learn_items_and_positions_without_seeing_the_row():
    rng = np.random.default_rng(21)
    n, n_items, n_positions = 60_000, 4, 3
    true_rate = np.array([0.02, 0.05, 0.10, 0.20])[:, None] * np.array([1.0, 0.6, 0.3])[None, :]
    actions, positions = rng.integers(0, n_items, n), rng.integers(0, n_positions, n)
    rewards = (rng.random(n) < true_rate[actions, positions]).astype(float)
    model = cross_fit_click_rates(actions, positions, rewards, n_items, n_positions, n_folds=4, seed=0)
    assert model.tables.shape == (4, n_items, n_positions)
    assert np.abs(model.tables - true_rate[None]).max() < 0.015
    # Row i's prediction comes from the table fitted without its fold.
    assert model.q_logged(actions, positions)[5] == model.tables[model.fold[5], actions[5], positions[5]]
    uniform = np.full((n_items, n_positions), 0.25)
    expected = model.q_expected(uniform, positions)
    assert expected[5] == pytest.approx(model.tables[model.fold[5], :, positions[5]].mean())
    # A single click moves only the model that saw it.
    flipped = rewards.copy()
    flipped[0] = 1.0 - flipped[0]
    other = cross_fit_click_rates(actions, positions, flipped, n_items, n_positions, n_folds=4, seed=0)
    assert np.array_equal(other.tables[model.fold[0]], model.tables[model.fold[0]])
    assert not np.array_equal(other.tables, model.tables)


def test_direct_method_refit_bootstrap_sees_the_model_noise():
    rng = np.random.default_rng(22)
    n, n_items, n_positions = 5_000, 10, 3
    true_rate = np.linspace(0.002, 0.02, n_items)[:, None] * np.array([1.0, 0.7, 0.5])[None, :]
    actions, positions = rng.integers(0, n_items, n), rng.integers(0, n_positions, n)
    rewards = (rng.random(n) < true_rate[actions, positions]).astype(float)
    target = np.zeros((n_items, n_positions))
    target[-1, :] = 1.0  # always the best item
    estimate, low, high = direct_method_refit_bootstrap(actions, positions, rewards, target, n_items, n_positions,
                                                        n_bootstrap=300, seed=1)
    assert low < estimate < high
    table = fit_click_rates(actions, positions, rewards, n_items, n_positions)
    q_target = (table * target).sum(axis=0)[positions]
    fixed_model = direct_method(LoggedRounds(rewards=rewards, q_logged=np.zeros(n), q_target_expected=q_target))
    assert fixed_model.estimate == pytest.approx(estimate)
    assert (high - low) > 5 * (fixed_model.ci_high - fixed_model.ci_low)


def test_estimators_on_two_rounds_computed_by_hand():
    # weights 0.5 and 2; DR rows: 0.3 + 0.5 (1 - 0.2) = 0.7 and 0.9 + 2 (0 - 0.4) = 0.1
    rounds = LoggedRounds(rewards=[1.0, 0.0], propensities=[0.5, 0.25], target_probabilities=[0.25, 0.5],
                          q_logged=[0.2, 0.4], q_target_expected=[0.3, 0.9])
    assert direct_method(rounds).estimate == pytest.approx(0.6)
    assert ips(rounds).estimate == pytest.approx(0.25)
    assert snips(rounds).estimate == pytest.approx(0.2)
    assert doubly_robust(rounds).estimate == pytest.approx(0.4)
    assert doubly_robust(rounds, clip=1.0).estimate == pytest.approx((0.7 + 0.5) / 2)  # 0.9 + 1 (0 - 0.4)
    assert switch_doubly_robust(rounds, threshold=1.0).estimate == pytest.approx((0.7 + 0.9) / 2)
    assert ips(rounds, clip=1.0).estimate == pytest.approx(0.25)


def test_estimate_frame_per_position_and_cluster_options():
    rng = np.random.default_rng(23)
    n = 3_000
    frame = pd.DataFrame({"cluster": rng.integers(0, 300, n), "reward": rng.random(n) < 0.1,
                          "propensity": np.full(n, 0.5), "target_probability": np.full(n, 0.5),
                          "position": rng.integers(0, 3, n)})
    frame["reward"] = frame["reward"].astype(float)
    table = estimate_frame(frame, by_position=True)
    pooled = table[table["position"].isna()]
    assert pooled["n_clusters"].tolist() == [300, 300]
    for slot in range(3):
        rows = table[table["position"] == slot].set_index("estimator")
        assert rows.loc["ips", "estimate"] == pytest.approx(frame.loc[frame["position"] == slot, "reward"].mean())
    iid = estimate_frame(frame, cluster_column=None, interval="bootstrap", n_bootstrap=200)
    assert (iid["n_clusters"] == n).all()
    with pytest.raises(ValueError, match="cluster column 'user' is not in the frame"):
        estimate_frame(frame, cluster_column="user")
    with pytest.raises(ValueError, match="by_position needs"):
        estimate_frame(frame.drop(columns="position"), by_position=True)
