"""Jobs, the daily schedule and the landing-file sensor."""

import dagster as dg

from ml.settings import CONTRACT_TABLES, Settings
from orchestration.assets.ingest import RAW_ASSET_KEYS
from orchestration.partitions import daily_partitions

ingest_job = dg.define_asset_job(
    "ingest_job",
    # The ingest step's own checks only; dbt's source tests on raw tables run with dbt in the daily run.
    selection=dg.AssetSelection.assets(*RAW_ASSET_KEYS.values()).without_checks()
    | dg.AssetSelection.checks(*[
        dg.AssetCheckKey(key, name) for key in RAW_ASSET_KEYS.values() for name in ("rows_reconcile", "files_readable")
    ]),
    partitions_def=daily_partitions,
    description="Load and validate one day's landing files (use for backfilling history).",
)

daily_pipeline = dg.define_asset_job(
    "daily_pipeline",
    selection=dg.AssetSelection.all(),
    partitions_def=daily_partitions,
    description="The whole graph for one day: ingest, dbt, encoder, rankers, promotion, schedule for the "
    "next day, evaluation.",
)

daily_schedule = dg.build_schedule_from_partitioned_job(
    daily_pipeline, hour_of_day=2, minute_of_hour=0, name="daily_pipeline_schedule"
)


def _delivered(name: str) -> bool:
    """A file of a delivery: not hidden (a writer's temp file or marker) and not written by the
    real-time service (its `serving-*` files join the day's delivery, they do not make one)."""
    return not name.startswith((".", "_", "serving-"))


def landed_days(settings: Settings) -> list[str]:
    """Days for which every contract table has a landing folder (a complete delivery)."""
    days_per_table = []
    for table in CONTRACT_TABLES:
        table_dir = settings.landing_dir / table
        days = {p.name.removeprefix("date=") for p in table_dir.glob("date=*")
                if any(_delivered(f.name) for f in p.iterdir())}
        days_per_table.append(days)
    # Dimension tables may not land every day: a day is complete once both event tables landed.
    events = days_per_table[CONTRACT_TABLES.index("behavior_events")] & days_per_table[
        CONTRACT_TABLES.index("ad_events")
    ]
    return sorted(events)


@dg.sensor(
    jobs=[ingest_job, daily_pipeline],
    minimum_interval_seconds=60,
    description="Starts a run for each newly landed day: older days are ingested, the newest day runs "
    "the whole pipeline.",
)
def landing_files_sensor(context: dg.SensorEvaluationContext):
    settings = Settings.from_env()
    seen = set(context.cursor.split(",")) if context.cursor else set()
    valid_keys = set(daily_partitions.get_partition_keys())
    new_days = [d for d in landed_days(settings) if d not in seen and d in valid_keys]
    if not new_days:
        return dg.SkipReason(f"No new landing days under {settings.landing_dir}.")
    newest = max(new_days)
    for day in sorted(new_days):
        job = daily_pipeline if day == newest else ingest_job
        yield dg.RunRequest(run_key=f"{job.name}:{day}", job_name=job.name, partition_key=day)
    context.update_cursor(",".join(sorted(seen | set(new_days))))
