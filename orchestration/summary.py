"""The short summary the main command prints at the end."""
from __future__ import annotations

import datetime as dt

import duckdb
from mlflow import MlflowClient

from ml.allocation.fingerprint import schedule_hash
from ml.registry import CHALLENGER, CHAMPION, configure_mlflow
from ml.settings import Settings

SUMMARY_TABLES = [
    "raw.users", "raw.campaigns", "raw.ads", "raw.behavior_events", "raw.ad_events", "raw.quarantine",
    "main.ctr_training_set", "main.cvr_training_set", "main.user_profiles", "main.user_event_stream",
    "ml.user_embeddings", "ml.ad_candidates", "ml.daily_ad_schedule",
]
# Which of each model's logged metrics the summary shows.
REGISTERED_MODELS = {"interest_encoder": "final_val_", "ctr_ranker": "test_ctr", "cvr_ranker": "test_cvr"}


def table_counts(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, int | str]]:
    counts = []
    for table in SUMMARY_TABLES:
        try:
            counts.append((table, conn.execute(f"select count(*) from {table}").fetchone()[0]))
        except duckdb.Error:
            counts.append((table, "missing"))
    return counts


def registry_lines(settings: Settings) -> list[str]:
    configure_mlflow(settings)
    client = MlflowClient()
    lines = []
    for name, metric_prefix in REGISTERED_MODELS.items():
        try:
            model = client.get_registered_model(name)
        except Exception:  # noqa: BLE001 - a missing model is reported, not fatal
            lines.append(f"  {name:<18} not registered")
            continue
        versions = client.search_model_versions(f"name='{name}'")
        aliases = {alias: version for alias, version in (model.aliases or {}).items()}
        champion = aliases.get(CHAMPION)
        metrics = ""
        if champion:
            run = client.get_run(client.get_model_version(name, champion).run_id)
            shown = {k.removeprefix(metric_prefix).strip("_"): v for k, v in run.data.metrics.items()
                     if k.startswith(metric_prefix) and "loss" not in k}
            metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(shown.items())[:5])
        lines.append(
            f"  {name:<18} versions={len(versions)} champion=v{champion} "
            f"challenger=v{aliases.get(CHALLENGER)} {metrics}"
        )
    return lines


def evaluation_lines(settings: Settings) -> list[str]:
    """The latest policy evaluation (simulator ground truth), as recorded on the Dagster instance."""
    import dagster as dg

    event = dg.DagsterInstance.get().get_latest_materialization_event(dg.AssetKey("policy_evaluation"))
    report = event.asset_materialization.metadata.get("report") if event else None
    return report.value.splitlines() if report else ["  no policy evaluation (no ground truth)"]


def print_summary(settings: Settings, latest_day: dt.date, n_days: int, wall_seconds: float, peak_gib: float) -> None:
    schedule_day = latest_day + dt.timedelta(days=1)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        counts = table_counts(conn)
        try:
            schedule = conn.execute("select * from ml.daily_ad_schedule where schedule_date = ?", [schedule_day]).df()
        except duckdb.Error:
            schedule = None
    print("\n" + "=" * 72)
    print(f"adflow: {n_days} days ingested, graph materialized for {latest_day}, schedule for {schedule_day}")
    print("-" * 72)
    for table, count in counts:
        print(f"  {table:<28} {count:>12,}" if isinstance(count, int) else f"  {table:<28} {count:>12}")
    print("-" * 72 + "\nMLflow registry:")
    for line in registry_lines(settings):
        print(line)
    if schedule is not None:
        print("-" * 72)
        print(f"Schedule {schedule_day}: {len(schedule):,} slots for {schedule['user_key'].nunique():,} users, "
              f"expected spend {schedule['expected_cost'].sum():.2f}, "
              f"expected value {schedule['expected_value'].sum():.2f}")
        print(f"Schedule hash: {schedule_hash(schedule)}  (equal hashes = identical schedules)")
    print("-" * 72 + "\nSchedule value under the simulator's ground truth:")
    for line in evaluation_lines(settings):
        print(line)
    print("-" * 72)
    print(f"Warehouse:  {settings.warehouse_path}")
    print(f"Schedules:  {settings.data_root / 'schedules'}")
    print(f"MLflow:     {settings.mlflow_tracking_uri}  (make mlflow-ui)")
    print(f"Dagster:    {settings.dagster_home}  (make ui)")
    print("Serving:    make serve  (re-ranks this schedule from fresh events; see README)")
    print(f"Wall time:  {wall_seconds:,.0f} s   peak memory: {peak_gib:.2f} GiB")
    print("=" * 72)
