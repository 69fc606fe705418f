"""The whole day at scale: the simulator's world at 100k users and 5k ads (~10M events over 8 days)
ingested day by day, then the daily graph for the last day, in this process as Dagster runs it
(`execute_in_process`), with each step's wall time and peak resident memory (sampled every 0.2 s
and attributed to the steps running at the time), so the next bottleneck is visible.

Views per active day are halved from the simulator's default (5 instead of 10) so that 8 days hold
~10M events and the 2-day attribution window leaves enough final days to train on. The simulated
landing files are cached under `--data-dir` and reused. On demand only:

    .venv/bin/python benchmarks/daily_scale.py [--users 100000] [--ads 5000] [--days 8]
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import shutil
import threading
import time
from pathlib import Path

import duckdb
import pandas as pd
import psutil

from ml.settings import REPO_ROOT
from ml.simulator import SimulationConfig, simulate

START = dt.date(2026, 11, 1)


class RssSampler:
    """(time, resident bytes) of this process and its children every `every_s` seconds."""

    def __init__(self, every_s: float = 0.2):
        self.samples: list[tuple[float, int]] = []
        self._stop, self.every_s = threading.Event(), every_s
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            try:
                rss = sum(p.memory_info().rss for p in [me, *me.children(recursive=True)])
            except psutil.Error:
                continue
            self.samples.append((time.time(), rss))
            self._stop.wait(self.every_s)

    def peak_between(self, start: float, end: float) -> float:
        """Highest sample within [start, end], widened by one interval: a step shorter than the
        interval still gets the sample nearest to it."""
        inside = [rss for at, rss in self.samples if start - self.every_s <= at <= end + self.every_s]
        return max(inside, default=0) / 2**30

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def step_times(instance, run_id: str) -> pd.DataFrame:
    """Each step's start and end (epoch seconds) from the run's event log."""
    rows = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or record.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            rows.setdefault(record.step_key, {})["start"] = record.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
            rows.setdefault(record.step_key, {})["end"] = record.timestamp
    return pd.DataFrame([{"step": step, **times} for step, times in rows.items()]).dropna()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--ads", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT / ".data" / "bench" / "daily_scale")
    args = parser.parse_args()

    landing_cache = args.data_dir / f"{args.users}u-{args.ads}a-{args.days}d"
    root = args.data_dir / "root"
    config = SimulationConfig(n_users=args.users, n_ads=args.ads, n_campaigns=max(1, args.ads // 10),
                              n_advertisers=max(1, args.ads // 50), n_days=args.days, start_date=START,
                              views_per_active_day=5.0, seed=11)
    rows: list[dict] = []
    with RssSampler() as sampler:
        if not (landing_cache / "landing").exists():
            started = time.time()
            simulate(config, landing_cache, progress=True)
            rows.append({"stage": "simulate (cached for later runs)", "seconds": time.time() - started,
                         "peak GiB": sampler.peak_between(started, time.time())})
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(landing_cache, root)
        os.environ.update({"AD_DATA_ROOT": str(root), "AD_PARTITION_START": START.isoformat(),
                           "AD_ATTRIBUTION_WINDOW_DAYS": "2", "DAGSTER_HOME": str(root / "dagster_home")})
        os.environ.pop("AD_WAREHOUSE_PATH", None)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        events = duckdb.sql(
            f"select (select count(*) from read_parquet('{root}/landing/behavior_events/*/*.parquet')) + "
            f"(select count(*) from read_parquet('{root}/landing/ad_events/*/*.parquet'))").fetchall()[0][0]

        import dagster as dg
        definitions = importlib.import_module("orchestration.definitions")
        instance = dg.DagsterInstance.ephemeral()
        days = [(START + dt.timedelta(days=i)).isoformat() for i in range(args.days)]
        total_started = time.time()
        started = time.time()
        for day in days[:-1]:
            result = definitions.defs.resolve_job_def("ingest_job").execute_in_process(partition_key=day,
                                                                                     instance=instance)
            assert result.success, f"ingest of {day} failed"
        rows.append({"stage": f"ingest_job x {len(days) - 1} days", "seconds": time.time() - started,
                     "peak GiB": sampler.peak_between(started, time.time())})
        started = time.time()
        daily = definitions.defs.resolve_job_def("daily_pipeline").execute_in_process(
            partition_key=days[-1], instance=instance, raise_on_error=False)
        daily_seconds = time.time() - started
        for step in step_times(instance, daily.run_id).sort_values("start").itertuples():
            rows.append({"stage": f"  {step.step}", "seconds": step.end - step.start,
                         "peak GiB": sampler.peak_between(step.start, step.end)})
        rows.append({"stage": f"daily_pipeline {days[-1]} ({'success' if daily.success else 'FAILED'})",
                     "seconds": daily_seconds, "peak GiB": sampler.peak_between(started, time.time())})
        total_s = time.time() - total_started
        peak = sampler.peak_between(total_started, time.time())

    table = pd.DataFrame(rows)
    print(f"\n{args.users:,} users, {args.ads:,} ads, {args.days} days, {events:,} events; "
          f"{os.cpu_count()} cores; steps in order of start (several may overlap)")
    print(table.to_markdown(index=False, floatfmt=".1f"))
    print(f"daily scale: {args.users} users, {events} events, total {total_s:.0f} s, peak {peak:.2f} GiB")


if __name__ == "__main__":
    main()
