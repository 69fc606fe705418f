"""LightGBM rankers, calibration, explanations, baselines and the report on planted-signal data."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ml.evaluation.metrics import auc, ece
from ml.rankers import FeatureSpec, fit_ranker, join_encoder_features, split_by_day
from ml.rankers.baselines import LogisticRegressionBaseline, MatrixFactorizationBaseline, PopularityBaseline
from ml.rankers.comparison import LIGHTGBM, LIGHTGBM_NO_ENCODER, ORACLE, ORACLE_DAY_AHEAD, compare_rankers
from ml.rankers.plots import save_report_plots
from ml.rankers.report import Holdouts, ModelScores, build_ranker_report
from ml.rankers.splits import DaySplit
from ml.rankers.synthetic import clicked, synthetic_impressions

TEST_DAY, VALIDATION_DAY = dt.date(2026, 11, 5), dt.date(2026, 11, 4)


@pytest.fixture(scope="module")
def days():
    impressions = synthetic_impressions(n_impressions=24_000, n_users=900, n_ads=100, n_days=5, seed=11)
    return split_by_day(impressions, test_date=TEST_DAY, validation_date=VALIDATION_DAY)


@pytest.fixture(scope="module")
def ctr_ranker(days):
    train, valid, _ = days
    return fit_ranker(train, valid, "ctr")


def test_split_by_day_keeps_days_apart(days):
    train, valid, test = days
    assert pd.to_datetime(train["impression_date"]).dt.date.max() < VALIDATION_DAY
    assert set(valid["impression_date"]) == {VALIDATION_DAY} and set(test["impression_date"]) == {TEST_DAY}
    with pytest.raises(ValueError, match="must come before"):
        split_by_day(train, test_date=VALIDATION_DAY, validation_date=TEST_DAY)


def test_categorical_codes_are_frozen_at_training_time(days):
    train, _, test = days
    spec = FeatureSpec.fit(train)
    scoring = test.iloc[::-1].head(50).copy()  # other order, other subset than training
    scoring["category_id"] = scoring["category_id"].astype(float)  # a NULL elsewhere made it float
    scoring.iloc[0, scoring.columns.get_loc("brand_id")] = 999_999  # never seen in training
    train_frame, scoring_frame = spec.transform(train), spec.transform(scoring)
    for name in spec.categorical:
        assert list(scoring_frame[name].cat.categories) == list(train_frame[name].cat.categories)
    code_of = dict(zip(train["category_id"], train_frame["category_id"].cat.codes))
    assert (scoring_frame["category_id"].cat.codes.to_numpy() == scoring["category_id"].astype(int).map(code_of)).all()
    assert pd.isna(scoring_frame["brand_id"].iloc[0]) and scoring_frame["brand_id"].cat.codes.iloc[0] == -1
    # Round trip through JSON-able dict (what MLflow stores) keeps the same levels.
    assert FeatureSpec.from_dict(spec.to_dict()) == spec


def test_join_encoder_features_by_impression_id(days):
    train, _, _ = days
    encoder_outputs = train[["impression_id", "encoder_logit", "encoder_similarity"]].head(100)
    joined = join_encoder_features(train.drop(columns=["encoder_logit", "encoder_similarity"]), encoder_outputs)
    assert len(joined) == len(train) and joined["encoder_logit"].notna().sum() == 100
    with pytest.raises(KeyError, match="join_encoder_features"):
        FeatureSpec.fit(train.drop(columns=["encoder_logit"]))


def test_ctr_ranker_learns_the_planted_signal_and_uses_encoder_features(days, ctr_ranker):
    train, valid, test = days
    plain = fit_ranker(train, valid, "ctr", use_encoder_features=False)
    with_encoder_auc = auc(test["label_click"], ctr_ranker.predict(test))
    assert with_encoder_auc > 0.72
    assert with_encoder_auc > auc(test["label_click"], plain.predict(test)) + 0.02
    assert 0 < ctr_ranker.best_iteration < 400
    importance = ctr_ranker.feature_importance()
    assert importance["gain"].is_monotonic_decreasing
    assert "encoder_logit" in importance["feature"].head(3).tolist()


def test_shap_contributions_sum_to_raw_margin(days, ctr_ranker):
    _, _, test = days
    rows = test.head(300)
    contributions = ctr_ranker.contributions(rows)
    margin = ctr_ranker.booster.predict(
        ctr_ranker.feature_spec.transform(rows), num_iteration=ctr_ranker.best_iteration, raw_score=True
    )
    np.testing.assert_allclose(contributions.sum(axis=1), margin, atol=1e-6)


def test_explain_gives_top_features_as_columns_and_text(days, ctr_ranker):
    _, _, test = days
    explained = ctr_ranker.explain(test.head(20), top_k=3)
    assert list(explained.index) == list(test.head(20).index)
    first = explained.iloc[0]
    magnitudes = [abs(first[f"top{rank}_contribution"]) for rank in (1, 2, 3)]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert first["explanation"].startswith(f"{first['top1_feature']} {first['top1_contribution']:+.3f}")
    assert set(explained["top1_feature"]) <= set(ctr_ranker.feature_spec.features)


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_lowers_ece_of_a_miscalibrated_ranker(days, method):
    train, valid, test = days
    # Up-weighting positives inflates raw probabilities, as negative down-sampling does in production.
    inflated = fit_ranker(train, valid, "ctr", params={"scale_pos_weight": 4.0}, calibration=method)
    labels = test["label_click"]
    raw_ece, calibrated_ece = ece(labels, inflated.predict_raw(test)), ece(labels, inflated.predict(test))
    assert raw_ece > 0.05
    assert calibrated_ece < raw_ece / 2  # ~5k test rows: ECE noise floor is ~0.01
    assert inflated.validation_metrics["valid_ece_calibrated"] < inflated.validation_metrics["valid_ece_raw"]


def test_popularity_baseline_is_smoothed_ad_rate():
    train = pd.DataFrame({"ad_id": [1, 1, 1, 1, 2], "label_click": [1, 1, 0, 0, 0]})
    popularity = PopularityBaseline(smoothing_strength=2.0).fit(train, "ctr")
    prior = 2 / 5
    expected_ad_1 = (2 + 2.0 * prior) / (4 + 2.0)
    np.testing.assert_allclose(
        popularity.predict(pd.DataFrame({"ad_id": [1, 3]})), [expected_ad_1, prior]
    )


def test_learned_baselines_beat_chance_on_ctr(days):
    train, _, test = days
    for baseline in (LogisticRegressionBaseline(), MatrixFactorizationBaseline(epochs=20)):
        scores = baseline.fit(train, "ctr").predict(test)
        assert auc(test["label_click"], scores) > 0.56, type(baseline).__name__


def test_report_has_every_model_and_task_and_plots(days, tmp_path):
    train, valid, test = days
    # The synthetic truth has no session intent, so its day-ahead oracle is the same probability.
    test = test.assign(day_ahead_pctr=test["true_pctr"], day_ahead_pcvr=test["true_pcvr"])
    comparison = compare_rankers(DaySplit(train, valid, test), include_matrix_factorization=False)
    report = build_ranker_report(comparison.holdouts, comparison.predictions)
    assert set(report["task"]) == {"ctr", "cvr", "ctcvr"}
    assert {LIGHTGBM, LIGHTGBM_NO_ENCODER, ORACLE, ORACLE_DAY_AHEAD, "popularity", "logistic_regression"} \
        <= set(report["model"])
    assert report["auc_se"].between(0, 0.1).all()
    by_key = report.set_index(["model", "task"])
    # Paired with the reference (the first model, LightGBM): zero against itself, the AUC gap otherwise.
    assert by_key.loc[(LIGHTGBM, "ctr"), "reference_auc_minus_this"] == pytest.approx(0.0, abs=1e-12)
    assert by_key.loc[("popularity", "ctr"), "reference_auc_minus_this"] == pytest.approx(
        by_key.loc[(LIGHTGBM, "ctr"), "auc"] - by_key.loc[("popularity", "ctr"), "auc"])
    paired = by_key.loc[("popularity", "ctr")]
    assert 0 < paired["difference_se"] < 2 * paired["auc_se"]
    assert by_key.loc[(LIGHTGBM, "cvr"), "rows"] == int(test["label_click"].sum())
    assert by_key.loc[(LIGHTGBM, "ctcvr"), "positives"] == int((test["label_click"] & test["label_conversion"]).sum())
    # The oracle bounds every learned model on CTR, and LightGBM beats popularity.
    assert by_key.loc[(ORACLE, "ctr"), "auc"] >= by_key.loc[(LIGHTGBM, "ctr"), "auc"] - 0.01
    assert by_key.loc[(LIGHTGBM, "ctr"), "auc"] > by_key.loc[("popularity", "ctr"), "auc"]
    assert by_key.loc[(LIGHTGBM, "ctcvr"), "auc"] > 0.7

    paths = save_report_plots(
        comparison.holdouts, comparison.predictions, {"ctr": comparison.ctr_ranker, "cvr": comparison.cvr_ranker}, tmp_path
    )
    assert set(paths) == {"roc_curves", "reliability_curves", "ctr_feature_importance", "cvr_feature_importance"}
    for path in paths.values():
        assert path.read_bytes()[:4] == b"\x89PNG"

    with pytest.raises(ValueError, match="score every test impression"):
        build_ranker_report(Holdouts.same_day(test), {"short": ModelScores.same_day(np.zeros(3), np.zeros(3))})


def test_ctr_learns_to_the_latest_click_final_day_and_ctcvr_stays_out_of_sample():
    """CTR's split ends on the latest day (clicks final), CVR's two days earlier (conversions final).
    CTCVR on the conversion holdout must use a pCTR from a model that never saw that day."""
    impressions = synthetic_impressions(n_impressions=20_000, n_users=800, n_days=5, seed=5)
    first = dt.date(2026, 11, 1)
    ctr = split_by_day(impressions, test_date=first + dt.timedelta(days=4), validation_date=first + dt.timedelta(days=3))
    conversion = split_by_day(impressions, test_date=first + dt.timedelta(days=2),
                              validation_date=first + dt.timedelta(days=1))
    comparison = compare_rankers(ctr, conversion=conversion, include_matrix_factorization=False)
    assert comparison.holdouts.ctr is ctr.test and comparison.holdouts.conversion is conversion.test
    assert comparison.ctr_ranker.training_rows == len(ctr.train)  # days 1-3, conversion holdout included
    lightgbm = comparison.predictions[LIGHTGBM]
    before_holdout = fit_ranker(conversion.train, conversion.valid, "ctr")
    np.testing.assert_allclose(lightgbm.ctr_on_conversion, before_holdout.predict(conversion.test))
    np.testing.assert_allclose(lightgbm.ctr, comparison.ctr_ranker.predict(ctr.test))

    report = build_ranker_report(comparison.holdouts, comparison.predictions).set_index(["model", "task"])
    assert report.loc[(LIGHTGBM, "ctr"), "rows"] == len(ctr.test)
    assert report.loc[(LIGHTGBM, "cvr"), "rows"] == int(conversion.test["label_click"].sum())
    assert report.loc[(LIGHTGBM, "ctcvr"), "rows"] == len(conversion.test)
    for model in ("popularity", "logistic_regression", LIGHTGBM_NO_ENCODER):
        assert report.loc[(model, "ctcvr"), "auc"] > 0.5


def test_cvr_ranker_trains_on_clicks(days):
    train, valid, test = days
    cvr_ranker = fit_ranker(clicked(train), clicked(valid), "cvr")
    assert cvr_ranker.training_rows == int(train["label_click"].sum())
    assert auc(clicked(test)["label_conversion"], cvr_ranker.predict(clicked(test))) > 0.58


def test_default_calibration_keeps_the_ranking(days, ctr_ranker):
    """Platt scaling is strictly increasing: calibrated scores rank exactly as the raw ones."""
    _, _, test = days
    assert ctr_ranker.calibrator.method == "platt"
    raw, calibrated = ctr_ranker.predict_raw(test), ctr_ranker.predict(test)
    assert auc(test["label_click"], calibrated) == pytest.approx(auc(test["label_click"], raw), abs=1e-12)
    assert (np.diff(calibrated[np.argsort(raw, kind="stable")]) >= 0).all()
    # The calibrator's own arithmetic (served requests skip sklearn's checks) is sklearn's exactly.
    platt, clipped = ctr_ranker.calibrator.platt, np.clip(raw, 1e-6, 1 - 1e-6)
    by_sklearn = platt.predict_proba(np.log(clipped / (1 - clipped)).reshape(-1, 1))[:, 1]
    np.testing.assert_array_equal(calibrated, np.clip(by_sklearn, 1e-6, 1 - 1e-6))


def test_extra_numeric_columns_join_the_registered_recipe(days, ctr_ranker):
    """benchmarks/ctr_information_ceiling.py hands fit_ranker extra columns: they are used, after
    the standard features, and the standard model is unchanged without them."""
    train, valid, test = days
    with_truth = fit_ranker(train, valid, "ctr", extra_numeric=["true_pctr"])
    assert with_truth.feature_spec.features == ctr_ranker.feature_spec.features + ["true_pctr"]
    assert with_truth.feature_importance().set_index("feature").loc["true_pctr", "gain_share"] > 0.1
    assert auc(test["label_click"], with_truth.predict(test)) > auc(test["label_click"], ctr_ranker.predict(test))


def test_why_puts_the_largest_positive_shap_contributions_in_words(days, ctr_ranker):
    """The words come from the model: each row's phrases are its largest positive contributions, with
    the row's own values; changing the model's reason changes the words."""
    from ml.rankers.why import NOTHING_STOOD_OUT, _phrase, explain_in_words

    _, _, test = days
    model = ctr_ranker.deployable()
    matrix = model.encode(test.head(400))
    contributions = model.booster.predict(matrix, pred_contrib=True)
    words = model.explain_encoded(matrix)["why"].tolist()
    levels = model.feature_spec.categorical_levels
    for row in range(len(matrix)):
        pushed_up = [position for position in np.argsort(-contributions[row, :-1], kind="stable")
                     if contributions[row, position] > 0]
        phrases = [p for p in (_phrase(model.features[i], matrix[row, i], levels.get(model.features[i]))
                               for i in pushed_up) if p is not None]
        expected = "; ".join(list(dict.fromkeys(phrases))[:2]) or NOTHING_STOOD_OUT
        assert words[row] == expected
    # The planted signal (category events) is said with the row's count.
    position = model.features.index("user_category_events_7d")
    said = [row for row in range(len(matrix)) if "in this ad's category this week" in words[row]]
    assert len(said) > 20
    row = said[0]
    assert f"you viewed {int(matrix[row, position])} item" in words[row]
    # Only the contributions decide: flip the signs and another sentence comes out.
    flipped = explain_in_words(-contributions, matrix, model.features, levels)
    assert sum(a != b for a, b in zip(flipped, words)) > 300


def test_why_words_for_values():
    from ml.rankers.why import _phrase

    assert _phrase("user_category_events_7d", 5.0, None) == "you viewed 5 items in this ad's category this week"
    assert _phrase("user_category_events_7d", 0.0, None) is None  # nothing seen is no reason
    assert _phrase("hours_since_user_brand_event", np.nan, None) is None
    assert _phrase("ad_age_days", 1.0, None) == "this ad is new"
    assert _phrase("ad_ctr_7d", 0.034, None) == "this ad is clicked on 3.4% of its views"
    assert _phrase("hours_since_user_category_event", 3.2, None) == "you looked at this ad's category 3 hours ago"
    assert _phrase("category_id", 1.0, ["7", "12"]) == "ads in category 12 do well"


def test_a_restricted_campaigns_scores_ignore_gender_and_age_band(days, ctr_ranker):
    """Housing, employment, credit: for a restricted campaign's rows the ranker sees no gender, age
    band or occupation, so changing them changes nothing; for other rows it does (the model uses them)."""
    _, _, test = days
    model = ctr_ranker.deployable()
    rows = test.head(3000).reset_index(drop=True)
    bands = sorted(rows["age_band"].dropna().unique())
    changed = rows.assign(gender=rows["gender"].map({"M": "F", "F": "M", "U": "F"}),
                          age_band=rows["age_band"].map(lambda band: bands[(bands.index(band) + 1) % len(bands)]),
                          occupation="retired")
    assert (np.abs(model.predict(rows) - model.predict(changed)) > 1e-9).sum() > 100
    restricted, changed_restricted = rows.assign(restricted=True), changed.assign(restricted=True)
    np.testing.assert_array_equal(model.predict(restricted), model.predict(changed_restricted))
    # Explanations of restricted rows never name a protected attribute either.
    explained = model.explain_encoded(model.encode(restricted), top_k=3)
    assert not set(explained[["top1_feature", "top2_feature", "top3_feature"]].to_numpy().ravel()) & {
        "gender", "age_band", "occupation"}
