"""The off-policy level factor recovers how far a model's level is off on pairs the logging policy
rarely showed, from logged rows only (labels and propensities)."""
import numpy as np
import pytest

from ml.rankers.off_policy import FACTOR_RANGE, ips_level_factor


def logged_world(seed: int = 0, n_pairs: int = 200_000, n_logged: int = 60_000):
    """A logging policy that shows high-CTR pairs more often, and a model that is right where it was
    shown often but 1.6x too high on rarely shown pairs (a compressed model, as in the demo)."""
    rng = np.random.default_rng(seed)
    true_ctr = 1 / (1 + np.exp(-rng.normal(-3.8, 0.8, n_pairs)))
    propensity = true_ctr / true_ctr.sum()
    shown = rng.choice(n_pairs, size=n_logged, p=propensity)
    model = np.where(true_ctr < np.median(true_ctr), 1.6 * true_ctr, true_ctr)
    labels = rng.random(n_logged) < true_ctr[shown]
    return true_ctr, model, shown, labels, propensity


def test_factor_matches_the_models_level_error_over_all_pairs():
    true_ctr, model, shown, labels, propensity = logged_world()
    correction = ips_level_factor(labels, model[shown], propensity[shown])
    truth = true_ctr.mean() / model.mean()  # what the schedule needs: level over every pair
    naive = labels.mean() / model[shown].mean()  # level over what was shown: ~1, the wrong population
    assert correction.factor == pytest.approx(truth, rel=0.08)
    assert abs(correction.factor - truth) < abs(naive - truth)
    assert 0 < correction.effective_rows < correction.rows


def test_without_propensities_there_is_no_correction():
    correction = ips_level_factor([0, 1, 0], [0.1, 0.2, 0.1], [np.nan, np.nan, np.nan])
    assert correction.factor == 1.0 and "no logging propensities" in correction.reason


def test_factor_is_clipped_to_a_sane_range():
    correction = ips_level_factor([1, 1, 1, 0], [0.001, 0.001, 0.001, 0.001], [0.5, 0.5, 0.5, 0.5])
    assert correction.factor == FACTOR_RANGE[1] and "clipped" in correction.reason
