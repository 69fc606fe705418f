"""Metrics checked against hand computations on tiny examples."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ml.evaluation.metrics import auc, ece, gauc, hit_rate_at_k, logloss, ndcg_at_k, reliability_curve


def test_gauc_is_impression_weighted_mean_of_user_aucs():
    # user a: 4 rows, positives ranked (0.9 > 0.8 > 0.3 ... ) -> pairs (0.9>0.3, 0.9>0.1, 0.2<0.3, 0.2>0.1): 3/4
    # user b: 2 rows, positive below negative -> 0.0
    # user c: all negatives -> skipped (no ranking signal), although it has 3 impressions
    labels = [1, 0, 1, 0, 1, 0, 0, 0, 0]
    scores = [0.9, 0.3, 0.2, 0.1, 0.4, 0.6, 0.5, 0.5, 0.5]
    users = ["a", "a", "a", "a", "b", "b", "c", "c", "c"]
    expected = (4 * 0.75 + 2 * 0.0) / (4 + 2)
    assert gauc(labels, scores, users) == pytest.approx(expected)


def test_gauc_counts_ties_as_half():
    assert gauc([1, 0, 1, 0], [0.5, 0.5, 0.7, 0.2], ["u", "u", "v", "v"]) == pytest.approx(0.75)


def test_gauc_without_any_mixed_user_is_nan():
    assert math.isnan(gauc([1, 1, 0], [0.1, 0.2, 0.3], ["a", "a", "b"]))


def test_auc_and_logloss_by_hand():
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    expected = -(math.log(0.8) + math.log(0.6)) / 2
    assert logloss([1, 0], [0.8, 0.4]) == pytest.approx(expected)
    assert math.isnan(auc([1, 1], [0.2, 0.3]))


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_ece_of_perfectly_calibrated_predictions_is_near_zero(binning):
    rng = np.random.default_rng(0)
    predictions = rng.beta(1, 12, 200_000)
    labels = rng.random(len(predictions)) < predictions
    assert ece(labels, predictions, binning=binning) < 0.003
    # The same labels with every prediction doubled are badly calibrated.
    assert ece(labels, np.clip(2 * predictions, 0, 1), binning=binning) > 0.05


def test_ece_by_hand_with_equal_width_bins():
    # bin [0, 0.5): preds 0.1, 0.3 -> mean 0.2, labels mean 0.5 -> gap 0.3, weight 2/4
    # bin [0.5, 1]: preds 0.6, 1.0 -> mean 0.8, labels mean 1.0 -> gap 0.2, weight 2/4
    assert ece([0, 1, 1, 1], [0.1, 0.3, 0.6, 1.0], n_bins=2, binning="width") == pytest.approx(0.25)


def test_reliability_curve_uses_equal_mass_bins():
    curve = reliability_curve(np.zeros(100), np.linspace(0, 1, 100), n_bins=4)
    assert curve["count"].tolist() == [25, 25, 25, 25]


def test_hit_rate_and_ndcg_at_k():
    rankings = [["a", "b", "c"], ["c", "a", "b"], ["b", "c", "d"]]
    targets = ["a", "a", "a"]
    assert hit_rate_at_k(rankings, targets, k=2) == pytest.approx(2 / 3)
    assert ndcg_at_k(rankings, targets, k=2) == pytest.approx((1.0 + 1 / math.log2(3) + 0.0) / 3)
