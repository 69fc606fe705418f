"""The code location loads, and every asset is described, grouped and wired into jobs."""

import dagster as dg
import pandas as pd
import pytest

from orchestration.definitions import defs

STAGES = {"ingest", "transform", "models", "delivery", "evaluation"}


@pytest.fixture(scope="module")
def asset_graph():
    return defs.resolve_asset_graph()


def test_every_asset_has_a_stage_group_and_description(asset_graph):
    for key in asset_graph.get_all_asset_keys():
        node = asset_graph.get(key)
        if node.is_external:
            continue
        assert node.group_name in STAGES, key
        assert node.description, f"{key.to_user_string()} has no description"


def test_graph_runs_from_raw_tables_to_evaluation(asset_graph):
    upstream = asset_graph.get(dg.AssetKey("policy_evaluation")).parent_keys
    assert dg.AssetKey("daily_ad_schedule") in upstream
    lineage = set()
    frontier = {dg.AssetKey("policy_evaluation")}
    while frontier:
        key = frontier.pop()
        lineage.add(key)
        frontier |= set(asset_graph.get(key).parent_keys) - lineage
    for expected in ["raw/ad_events", "ctr_training_set", "interest_encoder", "ctr_ranker", "model_promotion",
                     "ad_candidates", "candidate_features"]:
        assert dg.AssetKey.from_user_string(expected) in lineage, expected


def test_dbt_tests_and_schedule_rules_are_asset_checks(asset_graph):
    check_names = {key.name for key in asset_graph.asset_check_keys}
    assert {"rows_reconcile", "budgets_caps_diversity_respected", "every_active_user_served",
            "spend_follows_pacing_plan", "champions_not_worse_than_challengers"} <= check_names
    assert any(name.startswith("not_null") for name in check_names), "dbt tests should surface as checks"


def test_singular_dbt_tests_are_checks_of_the_model_their_meta_names(asset_graph):
    """Singular tests read several models; without `meta.dagster.ref` dagster-dbt logs them as
    observations with a warning on every run."""
    from pathlib import Path

    singular = {path.stem for path in (Path(__file__).parents[1] / "dbt_project" / "tests").glob("*.sql")}
    attached = {key.name: key.asset_key.to_user_string() for key in asset_graph.asset_check_keys
                if key.name in singular}
    assert attached == {"assert_attributed_conversions_follow_a_click_in_the_window": "int_attributed_impressions",
                        "assert_training_features_precede_the_impression_day": "ctr_training_set"}


def test_jobs_schedule_and_sensor_are_defined():
    assert defs.resolve_job_def("daily_pipeline").partitions_def is not None
    assert defs.resolve_job_def("ingest_job").partitions_def is not None
    schedule = defs.resolve_schedule_def("daily_pipeline_schedule")
    assert schedule.cron_schedule == "0 2 * * *"
    assert defs.resolve_sensor_def("landing_files_sensor")


def test_executor_runs_one_step_at_a_time():
    # DuckDB has one writer per file: steps must not run in parallel processes.
    assert defs.resolve_job_def("daily_pipeline").executor_def.name == "in_process"


def test_sensor_requests_ingest_for_history_and_the_pipeline_for_the_newest_day(tmp_path, monkeypatch):
    monkeypatch.setenv("AD_DATA_ROOT", str(tmp_path))
    for table in ["users", "campaigns", "ads", "behavior_events", "ad_events"]:
        for day in ["2026-11-01", "2026-11-02"]:
            folder = tmp_path / "landing" / table / f"date={day}"
            folder.mkdir(parents=True)
            pd.DataFrame({"x": [1]}).to_parquet(folder / "part-0.parquet")
    sensor = defs.resolve_sensor_def("landing_files_sensor")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, definitions=defs)
        requests = list(sensor(context))
        assert [(r.job_name, r.partition_key) for r in requests] == [
            ("ingest_job", "2026-11-01"), ("daily_pipeline", "2026-11-02")]
        # Nothing new on the next tick: the cursor remembers both days.
        again = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=context.cursor,
                                                             definitions=defs))
        assert not again.run_requests


def test_sensor_ignores_a_day_that_only_the_serving_service_wrote(tmp_path, monkeypatch):
    """Events posted to the real-time service land as `serving-*` files in today's folders; they
    join the day's delivery but must not start today's run before the day has landed."""
    monkeypatch.setenv("AD_DATA_ROOT", str(tmp_path))
    for table in ["behavior_events", "ad_events"]:
        folder = tmp_path / "landing" / table / "date=2026-11-03"
        folder.mkdir(parents=True)
        pd.DataFrame({"x": [1]}).to_parquet(folder / "serving-20261103T101010-abc.parquet")
        pd.DataFrame({"x": [1]}).to_parquet(folder / ".serving-half-written.parquet.tmp")
    sensor = defs.resolve_sensor_def("landing_files_sensor")
    with dg.instance_for_test() as instance:
        result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs))
        assert not result.run_requests


def test_workspace_loads_with_the_dagster_cli(tmp_path):
    """What `dagster dev -w workspace.yaml` loads, validated by Dagster's own CLI in a fresh process."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from ml.settings import REPO_ROOT

    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=REPO_ROOT,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "All code locations passed validation" in result.stdout + result.stderr
