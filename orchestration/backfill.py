"""Backfill from the command line: one run per day, recorded on the local Dagster instance (so it
shows in the UI like a UI backfill).

    python -m orchestration.backfill --start 2026-11-01 --end 2026-11-14            # ingest history
    python -m orchestration.backfill --start 2026-11-14 --end 2026-11-14 --job daily_pipeline
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys

import dagster as dg
from tqdm import tqdm

from ml.settings import Settings
from orchestration.instance import local_instance


def days_between(start: dt.date, end: dt.date) -> list[str]:
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    return [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def run_partitions(job_name: str, partition_keys: list[str], instance: dg.DagsterInstance,
                   run_config: dict | None = None, log_level: str = "WARNING") -> list[dg.ExecuteInProcessResult]:
    """Run `job_name` for each partition in order; stop at the first failure (later days depend on it).

    The console shows warnings and a progress bar; every step's full log is in the run, in the UI.
    """
    from orchestration.definitions import defs

    logging.getLogger("dagster").propagate = False  # one console handler, not two
    run_config = {**(run_config or {}), "loggers": {"console": {"config": {"log_level": log_level}}}}
    job = defs.resolve_job_def(job_name)
    results = []
    for key in tqdm(partition_keys, desc=job_name, unit="day", disable=len(partition_keys) < 2):
        result = job.execute_in_process(partition_key=key, instance=instance, run_config=run_config,
                                        raise_on_error=False)
        results.append(result)
        if not result.success:
            failures = [e for e in result.all_events if e.is_step_failure]
            raise SystemExit(f"{job_name} failed for {key} at {[e.step_key for e in failures]}; see the run "
                             f"{result.run_id} in the UI.\n" + "\n".join(failure_messages(failures)))
    return results


def failure_messages(failures) -> list[str]:
    """Each failed step's own message (a dg.Failure says what to fix), without the stack trace."""
    messages = []
    for event in failures:
        user_failure = event.step_failure_data.user_failure_data
        if user_failure is not None and user_failure.description:
            messages.append(f"  {event.step_key}: {user_failure.description}")
            continue
        error = event.step_failure_data.error
        while error is not None and error.cause is not None and "Error occurred while executing" in error.message:
            error = error.cause
        messages.append(f"  {event.step_key}: {(error.message if error else '').strip()}")
    return messages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--end", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--job", default="ingest_job", choices=["ingest_job", "daily_pipeline"])
    args = parser.parse_args(argv)
    instance = local_instance(Settings.from_env())
    results = run_partitions(args.job, days_between(args.start, args.end), instance)
    print(f"{args.job}: {len(results)} runs succeeded ({args.start}..{args.end})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
