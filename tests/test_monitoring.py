"""Monitoring: the computations (ml/monitoring) on hand-checked and synthetic data, and each Dagster
check on a real tiny materialized pipeline, clean and then with data made to trip it."""
from __future__ import annotations

import contextlib
import datetime as dt
import math
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.monitoring.calibration import CALIBRATION_RANGE, is_calibrated, observed_to_predicted_by_day
from ml.monitoring.feature_drift import DRIFT_FEATURES, NOT_COMPARED
from ml.monitoring.freshness import landed_days, missing_landing_days
from ml.monitoring.psi import PSI_WARN, categorical_psi, numeric_psi, psi_band
from pipeline_fixture import materialized_pipeline

# Two bins, shares 1/2, 1/2 against 1/4, 3/4: (1/4 - 1/2) ln(1/2) + (3/4 - 1/2) ln(3/2).
HAND_PSI = 0.25 * math.log(2) + 0.25 * math.log(1.5)


# ---- PSI ------------------------------------------------------------------------------------------

def test_psi_matches_the_hand_computation():
    # Reference median 2.5 splits [1, 2 | 3, 4] evenly; the current sample puts one of four below it.
    assert numeric_psi([1, 2, 3, 4], [1, 3, 4, 5], n_bins=2) == pytest.approx(HAND_PSI)
    assert categorical_psi(list("aabb"), list("abbb")) == pytest.approx(HAND_PSI)


def test_psi_of_identical_samples_is_zero_and_of_a_shifted_one_significant():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=20_000)
    assert numeric_psi(reference, reference) == pytest.approx(0.0, abs=1e-12)
    assert numeric_psi(reference, rng.normal(size=20_000)) < 0.01  # same distribution, new draw
    shifted = numeric_psi(reference, rng.normal(loc=0.6, size=20_000))
    assert shifted > PSI_WARN and psi_band(shifted) == "significant"


def test_psi_keeps_missing_values_rare_and_unseen_levels_in_their_own_bins():
    assert numeric_psi([1.0, 2.0, np.nan, np.nan], [1.0, 2.0, 3.0, 4.0]) > PSI_WARN  # NULLs disappeared
    reference = ["a"] * 120 + ["b"] * 79 + ["rare"]  # "rare": 0.5% of the reference, pooled
    # A level the reference never saw is pooled with the rare ones, so a flood of it shows as drift.
    assert categorical_psi(reference, ["a"] * 120 + ["b"] * 78 + ["new", "rare"]) < 0.01
    assert categorical_psi(reference, ["a"] * 30 + ["new"] * 70) > PSI_WARN
    assert math.isfinite(numeric_psi([1, 2, 3, 4], [9, 9, 9, 9]))  # empty bins count as EPSILON


def test_feature_drift_leaves_out_the_features_that_differ_by_construction():
    assert {"hour", "slot", "day_of_week", "user_tenure_days", "ad_age_days"} == set(NOT_COMPARED)
    assert not set(NOT_COMPARED) & set(DRIFT_FEATURES)
    assert {"price", "user_events_7d", "category_id", "gender"} <= set(DRIFT_FEATURES)


# ---- freshness ------------------------------------------------------------------------------------

def test_freshness_finds_a_removed_day_and_ignores_serving_files(tmp_path):
    start = dt.date(2026, 11, 1)
    for table in ("ads", "ad_events"):
        for offset in range(4):
            folder = tmp_path / table / f"date={start + dt.timedelta(days=offset)}"
            folder.mkdir(parents=True)
            (folder / "part-0.parquet").write_bytes(b"")
    shutil.rmtree(tmp_path / "ad_events" / "date=2026-11-02")
    # A day holding only the real-time service's events (or a writer's temp file) has not landed.
    (tmp_path / "ads" / "date=2026-11-03" / "part-0.parquet").rename(tmp_path / "ads" / "date=2026-11-03" / ".tmp")
    (tmp_path / "ads" / "date=2026-11-03" / "serving-1.parquet").write_bytes(b"")

    missing = missing_landing_days(tmp_path, ["ads", "ad_events"], start, dt.date(2026, 11, 5))
    assert set(map(tuple, missing.to_numpy())) == {
        ("ads", dt.date(2026, 11, 3)), ("ads", dt.date(2026, 11, 5)),
        ("ad_events", dt.date(2026, 11, 2)), ("ad_events", dt.date(2026, 11, 5))}
    assert missing_landing_days(tmp_path, ["ad_events"], dt.date(2026, 11, 3), dt.date(2026, 11, 4)).empty
    assert dt.date(2026, 11, 1) in landed_days(tmp_path, "ads")


# ---- calibration ----------------------------------------------------------------------------------

def test_calibration_ratio_on_synthetic_labels():
    rng = np.random.default_rng(3)
    days = np.repeat(pd.date_range("2026-11-01", periods=3).date, 50_000)
    truth = rng.uniform(0.01, 0.1, size=len(days))
    labels = rng.random(len(days)) < truth
    calibrated = observed_to_predicted_by_day(days, labels, truth)
    assert list(calibrated["rows"]) == [50_000] * 3
    assert calibrated["ratio"].to_numpy() == pytest.approx(1.0, abs=0.03)
    assert all(is_calibrated(r) for r in calibrated["ratio"])
    too_high = observed_to_predicted_by_day(days, labels, truth * 1.5)  # predictions 1.5x the truth
    assert too_high["ratio"].to_numpy() == pytest.approx(1 / 1.5, abs=0.03)
    assert not any(is_calibrated(r) for r in too_high["ratio"])
    assert not is_calibrated(observed_to_predicted_by_day(days[:1], [0], [0.0])["ratio"].iloc[0])  # nothing predicted
    assert is_calibrated(CALIBRATION_RANGE[1]) and not is_calibrated(CALIBRATION_RANGE[1] * 1.01)


# ---- the Dagster checks on a materialized pipeline --------------------------------------------------

@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    yield from materialized_pipeline(tmp_path_factory)


def evaluation(result, asset: str, check: str):
    [found] = [e for e in result.get_asset_check_evaluations()
               if e.check_name == check and e.asset_key.to_user_string() == asset]
    return found


def run_checks(pipeline, *names: str):
    """Run only the named monitoring checks for the pipeline's partition, as the UI's "Execute" does."""
    from orchestration import definitions
    from orchestration.assets.monitoring import MONITORING_CHECKS

    _, instance, _, _, days = pipeline
    keys = {key for checks in MONITORING_CHECKS for key in checks.check_keys if key.name in names}
    job = definitions.defs.resolve_job_def("daily_pipeline").get_subset(asset_check_selection=keys)
    result = job.execute_in_process(partition_key=days[-1], instance=instance)
    assert result.success
    return result


@contextlib.contextmanager
def tampered(settings, table: str, *statements: str):
    """Run `statements` on the warehouse, restore `table` afterwards."""
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        conn.execute(f"create table monitoring_backup as select * from {table}")
        for statement in statements:
            conn.execute(statement)
    try:
        yield
    finally:
        with duckdb.connect(str(settings.warehouse_path)) as conn:
            conn.execute(f"create or replace table {table} as select * from monitoring_backup")
            conn.execute("drop table monitoring_backup")


@pytest.mark.integration
def test_daily_run_evaluates_every_monitoring_check_as_a_warning(pipeline):
    *_, daily, _ = pipeline
    assert daily.success
    monitoring = [e for e in daily.get_asset_check_evaluations()
                  if e.check_name in {"landing_fresh", "feature_drift", "prediction_drift", "champion_calibration"}]
    assert len(monitoring) == 6 + 3  # landing_fresh on each raw table
    assert {e.severity.value for e in monitoring} == {"WARN"}
    assert all(e.passed for e in monitoring if e.check_name in ("landing_fresh", "prediction_drift"))


@pytest.mark.integration
def test_freshness_warns_when_a_landing_day_is_missing(pipeline):
    settings, *_ = pipeline
    folder = settings.landing_dir / "ad_events" / "date=2026-11-05"
    shutil.move(folder, settings.data_root / "aside")
    try:
        result = run_checks(pipeline, "landing_fresh")
    finally:
        shutil.move(settings.data_root / "aside", folder)
    ad_events = evaluation(result, "raw/ad_events", "landing_fresh")
    assert not ad_events.passed and ad_events.metadata["missing_days"].value == ["2026-11-05"]
    assert evaluation(result, "raw/users", "landing_fresh").passed


@pytest.mark.integration
def test_feature_drift_warns_on_a_shifted_feature_of_the_newest_day(pipeline):
    settings, *_, daily, _ = pipeline
    feature = "price"
    before = evaluation(daily, "ctr_training_set", "feature_drift").metadata["drifted"].value
    assert feature not in before
    shift = (f"update main.ctr_training_set set {feature} = {feature} * 3 + 20 "
             "where impression_date = (select max(impression_date) from main.ctr_training_set)")
    with tampered(settings, "main.ctr_training_set", shift):
        after = evaluation(run_checks(pipeline, "feature_drift"), "ctr_training_set", "feature_drift")
    assert not after.passed and feature in after.metadata["drifted"].value
    assert "PSI" in after.metadata["plot"].value  # the bar plot is embedded


@pytest.mark.integration
def test_prediction_drift_compares_with_the_previous_schedule(pipeline):
    settings, *_, days = pipeline
    schedule_date = dt.date.fromisoformat(days[-1]) + dt.timedelta(days=1)
    previous = f"insert into ml.scored_candidates select * replace (date '{schedule_date - dt.timedelta(days=1)}' " \
               f"as schedule_date) from ml.scored_candidates where schedule_date = date '{schedule_date}'"
    with tampered(settings, "ml.scored_candidates", previous):
        same = evaluation(run_checks(pipeline, "prediction_drift"), "daily_ad_schedule", "prediction_drift")
    assert same.passed and same.metadata["max_psi"].value == pytest.approx(0.0, abs=1e-9)
    scaled = f"update ml.scored_candidates set pctr = least(pctr * 3, 1) where schedule_date = date '{schedule_date}'"
    with tampered(settings, "ml.scored_candidates", previous, scaled):
        drifted = evaluation(run_checks(pipeline, "prediction_drift"), "daily_ad_schedule", "prediction_drift")
    assert not drifted.passed and drifted.metadata["drifted"].value == ["pctr"]


@pytest.mark.integration
def test_calibration_warns_when_the_newest_final_day_stops_clicking(pipeline):
    settings, *_, daily, _ = pipeline
    clean = evaluation(daily, "model_promotion", "champion_calibration").metadata
    ctr_model = next(m for m in clean["newest_ratio"].value if m.startswith("ctr_ranker"))
    assert ctr_model not in clean["decayed"].value
    # The newest click-final day's clicks stop coming: observed / predicted falls to 0.
    no_clicks = ("update main.ctr_training_set set label_click = 0 where impression_date = "
                 "(select max(impression_date) from main.ctr_training_set)")
    with tampered(settings, "main.ctr_training_set", no_clicks):
        decayed = evaluation(run_checks(pipeline, "champion_calibration"), "model_promotion", "champion_calibration")
    assert not decayed.passed and ctr_model in decayed.metadata["decayed"].value
    assert decayed.metadata["newest_ratio"].value[ctr_model] < CALIBRATION_RANGE[0]


def test_a_ratio_out_of_band_counts_only_beyond_poisson_noise():
    from ml.monitoring.calibration import beyond_noise

    assert not beyond_noise(3, 1.5)  # ratio 2.0 on 1.5 expected conversions: noise
    assert beyond_noise(0, 20.0) and beyond_noise(60, 30.0)
    assert not beyond_noise(30, 30.0) and not beyond_noise(5, float("nan"))


def test_feature_drift_reference_days_have_full_feature_windows():
    import datetime as dt

    from orchestration.assets.monitoring import warmed_up

    days = [dt.date(2026, 11, d) for d in range(1, 12)]
    assert warmed_up(days, dt.date(2026, 11, 1)) == days[7:]
    assert warmed_up(days[:3], dt.date(2026, 11, 1)) == days[:3]  # too young for any: all of them
