"""The encoder's features are stacked under the rankers: the rankers must only learn from
out-of-sample encoder outputs, and the report must say how much an AUC difference means."""
import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ml.evaluation.metrics import paired_auc_difference
from ml.rankers.features import ENCODER_FEATURES, ENCODER_SAW_LABEL, join_encoder_features
from ml.rankers.report import auc_standard_error
from ml.training_days import choose_holdout_days, choose_ranker_days, encoder_days
from ml.warehouse import replace_rows

DAYS = [dt.date(2026, 11, 1) + dt.timedelta(days=i) for i in range(7)]


def test_encoder_learns_from_the_earlier_half_of_the_ranker_training_days():
    days = choose_holdout_days(DAYS)  # train 1..5, validation 6, test 7
    learn = encoder_days(days)
    assert learn.train_dates == tuple(DAYS[:2])
    assert learn.validation_date == DAYS[2]
    # Never the rankers' validation or test day, and later ranker training days stay unseen.
    assert days.validation_date not in learn.train_dates and days.test_date not in learn.train_dates
    assert set(days.train_dates) - set(learn.train_dates) - {learn.validation_date}


def test_with_one_training_day_the_encoder_stops_on_the_rankers_validation_day():
    days = choose_holdout_days(DAYS[:3])
    learn = encoder_days(days)
    assert learn.train_dates == (DAYS[0],) and learn.validation_date == days.validation_date


def test_in_sample_encoder_features_are_masked_for_the_rankers():
    frame = pd.DataFrame({"impression_id": [1, 2, 3], "label_click": [0, 1, 0]})
    scores = pd.DataFrame({
        "impression_id": [1, 2, 3], "encoder_logit": [0.1, 2.0, -1.0], "encoder_similarity": [0.2, 0.9, 0.0],
        ENCODER_SAW_LABEL: [True, False, False],
    })
    joined = join_encoder_features(frame, scores).set_index("impression_id")
    assert joined.loc[1, ENCODER_FEATURES].isna().all()
    assert joined.loc[2, "encoder_logit"] == 2.0 and joined.loc[3, "encoder_similarity"] == 0.0


def test_replace_rows_adds_columns_an_older_table_lacks():
    conn = duckdb.connect()
    replace_rows(conn, "ml.scores", pd.DataFrame({"day": [1], "x": [0.5]}), "day", 1)
    replace_rows(conn, "ml.scores", pd.DataFrame({"day": [2], "x": [0.7], "flag": [True]}), "day", 2)
    rows = conn.sql("select day, x, flag from ml.scores order by day").fetchall()
    assert rows == [(1, 0.5, None), (2, 0.7, True)]


def test_auc_standard_error_matches_the_bootstrap():
    rng = np.random.default_rng(0)
    labels = rng.random(20_000) < 0.03
    scores = rng.normal(size=labels.size) + 0.6 * labels
    auc = roc_auc_score(labels, scores)
    boot = []
    for _ in range(200):
        rows = rng.integers(0, labels.size, labels.size)
        boot.append(roc_auc_score(labels[rows], scores[rows]))
    se = auc_standard_error(auc, int(labels.sum()), int((~labels).sum()))
    assert se == pytest.approx(np.std(boot), rel=0.25)
    assert np.isnan(auc_standard_error(auc, 0, 100))


def test_paired_auc_difference_matches_the_paired_bootstrap_and_is_tighter_than_either_auc():
    rng = np.random.default_rng(1)
    labels = rng.random(20_000) < 0.04
    strong = rng.normal(size=labels.size) + 0.8 * labels
    weaker = strong + 0.6 * rng.normal(size=labels.size)  # the same model plus noise: highly correlated
    difference, se = paired_auc_difference(labels, strong, weaker)
    assert difference == pytest.approx(roc_auc_score(labels, strong) - roc_auc_score(labels, weaker), abs=1e-12)
    boot = []
    for _ in range(200):
        rows = rng.integers(0, labels.size, labels.size)
        boot.append(roc_auc_score(labels[rows], strong[rows]) - roc_auc_score(labels[rows], weaker[rows]))
    assert se == pytest.approx(np.std(boot), rel=0.25)
    unpaired = auc_standard_error(roc_auc_score(labels, weaker), int(labels.sum()), int((~labels).sum()))
    assert se < 0.7 * unpaired
    assert difference / se > 3  # the added noise costs AUC, and the paired test sees it
    assert paired_auc_difference(labels, strong, strong) == (0.0, 0.0)
    assert all(np.isnan(paired_auc_difference(np.zeros(10), strong[:10], weaker[:10])))


def test_ctr_splits_on_click_final_days_and_conversion_on_conversion_final_days():
    ranker_days = choose_ranker_days(click_final_days=DAYS, conversion_final_days=DAYS[:4])
    assert ranker_days.ctr.test_date == DAYS[-1] and ranker_days.ctr.validation_date == DAYS[-2]
    assert ranker_days.conversion.test_date == DAYS[3] and ranker_days.conversion.train_dates == tuple(DAYS[:2])
    # The encoder follows the CTR split: it learns clicks, and the CTR ranker stacks on it.
    assert encoder_days(ranker_days.ctr).train_dates == tuple(DAYS[:2])
    assert {"ctr_test_day", "conversion_test_day"} <= set(ranker_days.as_metadata())
