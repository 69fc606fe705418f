"""Privacy jobs launchable from the Dagster UI: forget users (right to erasure) and retention."""
import datetime as dt
import json

import dagster as dg

from ml.privacy.erasure import forget_users
from ml.privacy.retention import apply_retention
from orchestration.resources import PlatformResource


class ForgetConfig(dg.Config):
    user_ids: list[int]  # raw user ids, as in the landing files


class RetentionConfig(dg.Config):
    keep_days: int = 730  # generous by default: two years of landing files and raw rows
    dry_run: bool = True  # list what would be deleted; set False to delete


@dg.op(description="Erase the users from landing files, raw, staging, marts, ml.* tables, schedules, reports "
       "and MLflow artifacts, record the request (pseudonym and time only) and suppress them in later files "
       "(ml.privacy.erasure). A running service forgets them at its next /reload.")
def forget_users_op(context: dg.OpExecutionContext, config: ForgetConfig, platform: PlatformResource) -> None:
    report = forget_users(platform.settings, config.user_ids)
    # Counts only: the ids themselves are not written into the run's logs.
    context.log.info(f"forgot {report.users} users: {report.rows_removed} rows from "
                     f"{sum(1 for n in report.table_rows.values() if n)} tables and {len(report.file_rows)} files")
    context.add_output_metadata({"users": report.users, "rows_removed": report.rows_removed,
                                 "tables": dg.MetadataValue.json({k: v for k, v in report.table_rows.items() if v}),
                                 "files": len(report.file_rows)})


@dg.op(description="Delete landing partitions and raw rows older than keep_days (ml.privacy.retention); "
       "dry_run (the default) only lists them.")
def retention_op(context: dg.OpExecutionContext, config: RetentionConfig, platform: PlatformResource) -> None:
    report = apply_retention(platform.settings, config.keep_days, dt.date.today(), dry_run=config.dry_run)
    context.log.info(("would delete" if report.dry_run else "deleted") + f" before {report.cutoff}: "
                     f"{len(report.landing_folders)} landing folders, raw rows {json.dumps(report.raw_rows)}")
    context.add_output_metadata({"cutoff": report.cutoff.isoformat(), "dry_run": report.dry_run,
                                 "landing_folders": dg.MetadataValue.json(report.landing_folders),
                                 "raw_rows": dg.MetadataValue.json(report.raw_rows)})


@dg.job(description="Right to erasure: forget the given user ids everywhere (config: user_ids).")
def forget_users_job():
    forget_users_op()


@dg.job(description="Retention: delete landing files and raw rows older than keep_days (dry run by default).")
def retention_job():
    retention_op()


# Weekly; dry runs until someone sets dry_run: false in the schedule's config (a deliberate choice).
retention_schedule = dg.ScheduleDefinition(job=retention_job, cron_schedule="0 3 * * 0", name="retention_schedule")
