"""The whole graph, materialized for real on tiny simulated data in a temporary folder.

Real DuckDB file, real dbt runs, real MLflow store and registry, real Dagster runs on a real
(temporary) instance. Runs in a subprocess-free way: the in-process executor is the product's.
"""
from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

pytestmark = pytest.mark.integration

from pipeline_fixture import materialized_pipeline


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    yield from materialized_pipeline(tmp_path_factory)


def test_every_run_succeeds(pipeline):
    _, _, ingest_results, daily, _ = pipeline
    assert all(result.success for result in ingest_results)
    assert daily.success


def test_ingested_rows_reconcile_with_landing_files(pipeline):
    settings, *_ = pipeline
    import pyarrow.parquet as pq

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        for table in ["behavior_events", "ad_events"]:
            landed = sum(pq.ParquetFile(p).metadata.num_rows
                         for p in (settings.landing_dir / table).glob("date=*/*.parquet"))
            loaded = conn.execute(f"select count(*) from raw.{table}").fetchone()[0]
            quarantined = conn.execute(
                "select count(*) from raw.quarantine where table_name = ?", [table]).fetchone()[0]
            assert landed == loaded + quarantined > 0


def test_asset_checks_all_passed(pipeline):
    _, _, _, daily, _ = pipeline
    evaluations = daily.get_asset_check_evaluations()
    assert evaluations, "the daily run evaluated no asset checks"
    failed = [f"{e.asset_key.to_user_string()}:{e.check_name}" for e in evaluations
              if not e.passed and e.severity.value == "ERROR"]
    assert failed == []


def test_registry_holds_champions_that_beat_the_trivial_scorers(pipeline):
    """First versions: the CTR ranker beats a constant and popularity beyond noise and becomes champion;
    the CVR ranker (23 conversions on its holdout) does not, so it is registered but refused, and the
    schedule prices CPA candidates with the popularity scorer instead."""
    settings, instance, *_ = pipeline
    import dagster as dg
    from mlflow import MlflowClient

    from ml.registry import configure_mlflow

    configure_mlflow(settings)
    client = MlflowClient()
    for name in ["interest_encoder", "ctr_ranker"]:
        model = client.get_registered_model(name)
        assert "champion" in model.aliases, name
        assert client.search_model_versions(f"name='{name}'")
    assert set(client.get_registered_model("cvr_ranker").aliases) == {"challenger"}
    decisions = {r["model"]: r for r in instance.get_latest_materialization_event(
        dg.AssetKey("model_promotion")).asset_materialization.metadata["decision_records"].value}
    assert decisions["ctr_ranker"]["reason"].startswith("first version: AUC")
    assert decisions["cvr_ranker"]["reason"].startswith("refused (first version)")
    schedule_meta = instance.get_latest_materialization_event(
        dg.AssetKey("daily_ad_schedule")).asset_materialization.metadata
    assert schedule_meta["cvr_source"].value.startswith("no CVR champion")
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        cpa = conn.sql("select pcvr, cvr_ranker_version from ml.scored_candidates where lower(bid_type) = 'cpa'").df()
    assert len(cpa) and cpa["cvr_ranker_version"].isna().all() and cpa["pcvr"].between(0, 1).all()
    assert cpa["pcvr"].nunique() > 1  # each ad's own smoothed rate, not one constant


def test_schedule_respects_budgets_and_covers_users(pipeline):
    settings, _, _, _, days = pipeline
    schedule_day = dt.date.fromisoformat(days[-1]) + dt.timedelta(days=1)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        rows = conn.execute(
            "select count(*) from ml.daily_ad_schedule where schedule_date = ?", [schedule_day]).fetchone()[0]
        assert rows > 0
        over_budget = conn.execute(
            """
            select s.campaign_id, sum(s.expected_cost) as spend, max(f.daily_budget) as budget
            from ml.daily_ad_schedule s
            join main.ad_features f on f.ad_id = s.ad_id and f.snapshot_date = s.schedule_date
            where s.schedule_date = ?
            group by s.campaign_id having sum(s.expected_cost) > max(f.daily_budget) + 1e-9
            """, [schedule_day]).fetchall()
        assert over_budget == []
        per_user = conn.execute(
            "select max(n) from (select count(*) n from ml.daily_ad_schedule where schedule_date = ? "
            "group by user_key)", [schedule_day]).fetchone()[0]
        assert 1 <= per_user <= 4
    assert (settings.data_root / "schedules" / f"date={schedule_day}" / "schedule.parquet").exists()


def test_rankers_learn_only_from_out_of_sample_encoder_features(pipeline):
    settings, *_ = pipeline
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        seen_days = conn.execute(
            "select distinct c.impression_date from ml.encoder_impression_scores e "
            "join main.ctr_training_set c using (impression_id) where e.label_seen_by_encoder").fetchall()
        unseen_days = conn.execute(
            "select count(distinct c.impression_date) from ml.encoder_impression_scores e "
            "join main.ctr_training_set c using (impression_id) where not e.label_seen_by_encoder").fetchall()[0][0]
    assert seen_days and unseen_days >= 3  # later training days, validation and test stay unseen


def test_schedule_scores_carry_the_champions_level_correction(pipeline):
    settings, *_ = pipeline
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        corrections = conn.sql("select model_name, model_version, factor from ml.ranker_level_corrections").df()
        used = conn.sql("select distinct ctr_level_factor, cvr_level_factor from ml.scored_candidates").df()
    assert set(corrections["model_name"]) == {"ctr_ranker", "cvr_ranker"}  # champions and challengers
    assert corrections["factor"].between(0.25, 4.0).all()
    by_model = corrections.set_index("model_name")["factor"]
    assert len(used) == 1
    assert used.iloc[0]["ctr_level_factor"] == pytest.approx(by_model["ctr_ranker"])
    assert used.iloc[0]["cvr_level_factor"] == 1.0  # the popularity scorer is not rescaled



def test_schedule_is_valued_off_policy_beside_its_true_value(pipeline):
    settings, instance, _, _, days = pipeline
    import dagster as dg

    schedule_day = dt.date.fromisoformat(days[-1]) + dt.timedelta(days=1)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        estimates = conn.execute("select * from ml.policy_value_estimates where schedule_date = ?", [schedule_day]).df()
        logged_days = conn.execute("select count(distinct impression_date) from main.ctr_training_set").fetchone()[0]
    # The refused first CVR version is a challenger without a champion: its schedule is valued too.
    assert set(estimates["policy"]) == {"champions", "challengers", "logging policy", "champions minus logging policy"}
    assert (estimates["ci_low"] <= estimates["estimate"]).all() and (estimates["estimate"] <= estimates["ci_high"]).all()
    assert (estimates["n_rounds"] > 0).all() and logged_days > 1
    champions = estimates[estimates["policy"] == "champions"].set_index("estimator")
    assert set(champions.index) >= {"dm", "ips", "snips", "dr"}
    assert champions["true_value"].notna().all() and (champions["true_value"] > 0).all()
    # The predicted lift is the champions' DR value minus the logging policy's own mean, paired.
    by_policy = estimates.set_index(["policy", "estimator"])["estimate"]
    assert by_policy[("champions minus logging policy", "dr")] == pytest.approx(
        by_policy[("champions", "dr")] - by_policy[("logging policy", "on-policy")])
    event = instance.get_latest_materialization_event(dg.AssetKey("policy_value_estimates"))
    assert "champions_dr_interval" in event.asset_materialization.metadata


def test_tomorrows_schedule_is_ab_tested_against_the_logging_policy(pipeline):
    settings, instance, _, _, days = pipeline
    import dagster as dg

    schedule_day = dt.date.fromisoformat(days[-1]) + dt.timedelta(days=1)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        arms = conn.execute("select * from ml.ab_test_arms where schedule_date = ?", [schedule_day]).df()
        lift = conn.execute("select * from ml.ab_test_lift where schedule_date = ?", [schedule_day]).df()
    arms = arms.set_index("arm")
    assert set(arms.index) == {"control", "treatment"}
    assert (arms["users"] > 0).all() and (arms["impressions"] > 0).all()
    assert arms["budget"]["control"] == pytest.approx(arms["budget"]["treatment"])  # a 50/50 split
    per_opportunity = lift.set_index("metric").loc["value per opportunity"]
    assert per_opportunity["ci_low"] <= per_opportunity["lift"] <= per_opportunity["ci_high"]
    assert per_opportunity["lift"] == pytest.approx(arms["value_per_opportunity"]["treatment"]
                                                    - arms["value_per_opportunity"]["control"])
    per_impression = lift.set_index("metric").loc["value per impression"]
    assert pd.notna(per_impression["predicted_lift"])  # the off-policy estimate made before the test
    assert (settings.data_root / "ab_tests" / schedule_day.isoformat() / "served.json").exists()
    event = instance.get_latest_materialization_event(dg.AssetKey("ab_test_readout"))
    assert {"arms", "lift", "plot"} <= set(event.asset_materialization.metadata)


def test_a_retrained_ranker_is_judged_by_the_value_of_its_schedule(pipeline):
    """Run the day again: the rankers retrain (same data, same seed: the same models as new versions).
    The CTR challenger passes the AUC guard and the value gate keeps the champion (a difference of
    exactly 0 is not better beyond noise); the CVR ranker, still without a champion, is judged by the
    first-version rule again and refused again; the schedule does not change."""
    import dagster as dg

    from ml.registry import CHALLENGER, CHAMPION, configure_mlflow, version_by_alias
    from orchestration import definitions
    from orchestration.assets.promotion import VALUE_PENDING
    from pipeline_fixture import TINY_ENCODER

    settings, instance, _, _, days = pipeline
    configure_mlflow(settings)
    champions = {"ctr_ranker": version_by_alias("ctr_ranker", CHAMPION).version}
    hash_before = instance.get_latest_materialization_event(
        dg.AssetKey("daily_ad_schedule")).asset_materialization.metadata["schedule_hash"].value
    again = definitions.defs.resolve_job_def("daily_pipeline").execute_in_process(
        partition_key=days[-1], instance=instance,
        run_config={"ops": {"interest_encoder": {"config": TINY_ENCODER}}})
    assert again.success
    promotion = {r["model"]: r for r in instance.get_latest_materialization_event(
        dg.AssetKey("model_promotion")).asset_materialization.metadata["decision_records"].value}
    gate = instance.get_latest_materialization_event(dg.AssetKey("ranker_value_gate")).asset_materialization
    decided = {r["model"]: r for r in gate.metadata["decision_records"].value}
    for name, version in champions.items():
        assert VALUE_PENDING in promotion[name]["reason"], promotion[name]
        assert decided[name]["promoted"] is False and decided[name]["difference"] == 0, decided[name]
        assert version_by_alias(name, CHAMPION).version == version
        assert version_by_alias(name, CHALLENGER).version != version
    assert promotion["cvr_ranker"]["reason"].startswith("refused (first version)")
    assert version_by_alias("cvr_ranker", CHAMPION) is None
    hash_after = instance.get_latest_materialization_event(
        dg.AssetKey("daily_ad_schedule")).asset_materialization.metadata["schedule_hash"].value
    assert hash_after == hash_before

# Last in the module: it rewrites the warehouse's tables (same rows, another physical order).
def test_delivery_and_evaluation_repeat_exactly_on_shuffled_inputs(pipeline):
    """The delivery and evaluation steps run again on the same warehouse, their input tables
    rewritten in a random physical order and read by DuckDB with several threads, give the same
    candidates, schedule rows (and hash) and evaluation table to the last bit."""
    import dagster as dg
    from pandas.testing import assert_frame_equal

    from orchestration import definitions

    settings, instance, _, _, days = pipeline
    schedule_day = dt.date.fromisoformat(days[-1]) + dt.timedelta(days=1)
    outputs = {"ml.ad_candidates": ["user_key", "ad_id", "source"],
               "ml.daily_ad_schedule": ["user_key", "hour", "slot", "ad_id"],
               "ml.policy_evaluation": ["policy"]}

    def read_outputs():
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
            return {table: conn.execute(f"select * from {table} where schedule_date = ? order by {', '.join(keys)}",
                                        [schedule_day]).df() for table, keys in outputs.items()}

    def schedule_hash_metadata():
        event = instance.get_latest_materialization_event(dg.AssetKey("daily_ad_schedule"))
        return event.asset_materialization.metadata["schedule_hash"].value

    before, hash_before = read_outputs(), schedule_hash_metadata()
    inputs = ["main.candidate_features", "main.ad_features", "main.user_event_stream", "main.user_hourly_activity",
              "main.hourly_traffic", "ml.ad_candidates", "ml.scored_candidates"]
    with duckdb.connect(str(settings.warehouse_path)) as conn:  # keeps the shuffled order on write
        conn.execute("set threads = 4")
        conn.execute("select setseed(0.25)")
        for table in inputs:
            first_rows = conn.execute(f"select * from {table} limit 5").df()
            conn.execute(f"create or replace table {table} as select * from {table} order by random()")
            assert not conn.execute(f"select * from {table} limit 5").df().equals(first_rows), table

    rerun = definitions.defs.resolve_job_def("daily_pipeline").execute_in_process(
        partition_key=days[-1], instance=instance,
        asset_selection=[dg.AssetKey(name) for name in ("ad_candidates", "daily_ad_schedule", "policy_evaluation")])
    assert rerun.success
    after = read_outputs()
    for table in outputs:
        assert len(before[table]) > 0, table
        assert_frame_equal(after[table], before[table], obj=table)
    assert schedule_hash_metadata() == hash_before


def test_fairness_report_covers_groups_restricted_campaigns_and_advertisers(pipeline):
    settings, instance, _, _, days = pipeline
    import dagster as dg
    import mlflow

    from ml.registry import configure_mlflow

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        gaps = conn.execute("select * from ml.fairness_gaps").df()
        advertisers = conn.execute("select * from ml.fairness_advertisers").df()
    assert set(gaps["source"]) == {"schedule", "realised"}
    assert set(gaps["group"]) == {"gender", "age_band", "city_tier"}
    assert "restricted_impressions" in set(gaps["metric"])  # the simulator's restricted campaigns were scheduled
    assert ((gaps["ci_low"] <= gaps["ratio_to_overall"]) & (gaps["ratio_to_overall"] <= gaps["ci_high"])).all()
    assert advertisers["budget_share"].sum() == pytest.approx(1.0)
    assert advertisers["impression_share"].sum() == pytest.approx(1.0)
    event = instance.get_latest_materialization_event(dg.AssetKey("fairness_report"))
    metadata = event.asset_materialization.metadata
    assert "data:image/png;base64" in metadata["plots"].value and "restricted_delivery_by_group" in metadata
    configure_mlflow(settings)
    runs = mlflow.search_runs(filter_string="tags.kind = 'fairness'", output_format="list",
                              order_by=["attributes.start_time DESC"])
    assert runs  # one per materialization (other tests here run the graph again)
    run = runs[0]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "fairness_report")}
    assert {"fairness_report/group_gaps.csv", "fairness_report/schedule_gaps.png"} <= artifacts


def test_ctr_ranker_reads_titles_and_reports_its_cold_start(pipeline):
    """The titles flow from the ads table to the training set and the candidates; the CTR ranker's
    materialization compares it with the same recipe without the title's terms on new ads."""
    settings, instance, *_ = pipeline
    import dagster as dg

    metadata = instance.get_latest_materialization_event(dg.AssetKey("ctr_ranker")).asset_materialization.metadata
    table = metadata["cold_start"].value
    assert "ads younger than 2 days" in table and "older ads" in table
    assert metadata["cold_start_young_ad_impressions"].value > 0
    assert 0 < metadata["cold_start_auc_with_content"].value < 1
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        titled = conn.sql("select count(*) filter (where title is not null), count(*) from ml.scored_candidates").fetchall()[0]
        young = conn.sql("select count(*) from main.ctr_training_set where ad_age_days < 2").fetchall()[0][0]
    assert titled[0] == titled[1] > 0
    assert young > 0  # ads keep launching: the training days hold impressions of new ads


def test_cold_start_value_compares_schedules_with_and_without_titles(pipeline):
    """The daily run values tomorrow's schedule re-made by the CTR recipe with and without title terms,
    under the truth, paired over users."""
    _, instance, *_ = pipeline
    import dagster as dg

    metadata = instance.get_latest_materialization_event(
        dg.AssetKey("cold_start_value")).asset_materialization.metadata
    table = metadata["value"].value
    assert "new ads" in table and "all, within budgets" in table
    assert metadata["new_ad_value_with_titles"].value >= 0 and metadata["new_ad_value_without_titles"].value >= 0
    gain, interval = metadata["new_ad_value_gain_95"].value.split(" [")
    low, high = (float(x) for x in interval.rstrip("]").split(", "))
    assert low <= float(gain) <= high
    assert metadata["users"].value > 0
    assert set(metadata["new_ad_impressions_planned"].value) == {"with titles", "without titles"}


def test_creative_report_scores_the_selector_on_the_log(pipeline):
    """The tiny world has creatives: the report replays the log, estimates the selector's CTR from the
    logged creative propensities and, on the simulator, its regret against the best creative."""
    _, instance, *_ = pipeline
    import dagster as dg

    metadata = instance.get_latest_materialization_event(
        dg.AssetKey("creative_report")).asset_materialization.metadata
    assert metadata["creatives"].value > 0 and metadata["impressions_replayed"].value > 0
    regret, uniform = metadata["selector_regret_clicks"].value, metadata["uniform_regret_clicks"].value
    assert regret >= 0 and uniform > 0
    assert metadata["regret_share_of_uniform"].value == pytest.approx(regret / uniform, abs=2e-3)
    assert 0 < metadata["selector_ctr_snips"].value < 1 and "plot" in metadata
