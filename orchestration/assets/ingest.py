"""Ingest: one day's landing files → raw.* tables, bad rows → raw.quarantine with the rule broken."""

import datetime as dt

import dagster as dg

from ml.ingest import ingest_day, reconcile_partition
from ml.privacy.erasure import suppress_in_landing
from ml.settings import CONTRACT_TABLES
from orchestration.partitions import ONE_PARTITION_PER_RUN, daily_partitions
from orchestration.resources import PlatformResource

RAW_ASSET_KEYS = {table: dg.AssetKey(["raw", table]) for table in CONTRACT_TABLES}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key,
            group_name="ingest",
            kinds={"duckdb"},
            description=f"Validated `{table}` rows of the day's landing files (raw.{table}); "
            "rows breaking the contract go to raw.quarantine with the rule and the original row.",
        )
        for table, key in RAW_ASSET_KEYS.items()
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "rows_reconcile",
            asset=key,
            blocking=True,
            description="Per landing file: rows in = rows accepted + rows quarantined.",
        )
        for key in RAW_ASSET_KEYS.values()
    ]
    + [
        dg.AssetCheckSpec(
            "files_readable",
            asset=key,
            description="Every landing file of the day could be read (a failed file is reported, the rest load).",
        )
        for key in RAW_ASSET_KEYS.values()
    ],
    partitions_def=daily_partitions,
    backfill_policy=ONE_PARTITION_PER_RUN,
    can_subset=False,
)
def raw_tables(context: dg.AssetExecutionContext, platform: PlatformResource):
    day = dt.date.fromisoformat(context.partition_key)
    settings = platform.settings
    # Users who asked to be forgotten stay forgotten: their rows in today's files go before loading.
    suppressed = suppress_in_landing(settings, day)
    if suppressed:
        context.log.info(f"suppressed users: {sum(suppressed.values())} rows dropped from {len(suppressed)} landing files")
    with platform.warehouse() as conn:
        reports = ingest_day(conn, settings.landing_dir, day)
        reconciliation = reconcile_partition(conn, day)

    for report in reports:
        key = RAW_ASSET_KEYS[report.table]
        files = reconciliation[reconciliation["table_name"] == report.table]
        unbalanced = files[~files["balanced"]]
        failed = {f.source_file: f.error for f in report.failed_files}
        context.log.info(f"{report.table}: {report.as_metadata()}")
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "dagster/row_count": report.rows_accepted,
                "rows_in": report.rows_in,
                "rows_quarantined": report.rows_quarantined,
                "quarantined_by_rule": dg.MetadataValue.json(report.quarantined_by_rule),
                "files": dg.MetadataValue.md(files.to_markdown(index=False) if len(files) else "no files"),
                "failed_files": dg.MetadataValue.json(failed),
                "rows_of_suppressed_users_dropped": sum(
                    n for path, n in suppressed.items() if path.startswith(f"landing/{report.table}/")),
                "seconds": round(report.duration_seconds, 2),
            },
        )
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name="rows_reconcile",
            passed=bool(unbalanced.empty),
            metadata={"files": len(files), "unbalanced_files": len(unbalanced)},
        )
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name="files_readable",
            passed=not failed,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"failed_files": dg.MetadataValue.json(failed)},
        )
