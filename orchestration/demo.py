"""The main command: simulate (if needed), ingest every landed day, run the daily pipeline for the
latest day, and print a summary. `python -m orchestration.demo --help`.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import resource
import sys
import time
from pathlib import Path

from ml.settings import REPO_ROOT, Settings
from orchestration.instance import local_instance


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--ads", type=int, default=500)
    parser.add_argument("--campaigns", type=int, default=60)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--resimulate", action="store_true", help="rewrite the landing files even if present")
    parser.add_argument("--dataset", choices=["simulator", "movielens", "taobao"], default="simulator",
                        help="convert a public dataset instead of simulating: movielens (MovieLens-100k from the "
                        "RecBole wheel: real ratings, synthetic CPC ad layer) or taobao (the published CSVs in "
                        "--source); data root <repo>/.data/<dataset> unless AD_DATA_ROOT is set")
    parser.add_argument("--source", type=Path, default=None, help="taobao: folder with the four published CSVs")
    parser.add_argument("--max-days", type=int, default=MOVIELENS_DEFAULT_DAYS,
                        help="movielens: keep the first N days of ratings")
    parser.add_argument("--max-users", type=int, default=None, help="movielens: keep users with id <= N")
    parser.add_argument("--closed-loop", type=int, default=0, metavar="N",
                        help="simulator: then serve N more days in which each day's A/B test (treatment: adflow's "
                        "schedule, control: the logging policy) lands as the next day's logs, and run the graph on "
                        "each; prints value per day by arm")
    return parser.parse_args(argv)


MOVIELENS_DEFAULT_DAYS = 30


def ensure_dataset(args: argparse.Namespace) -> None:
    """Land a public dataset once, in its own data root, and start the partitions at its first day.

    Runs before anything reads the partitions (they are defined at import from AD_PARTITION_START)."""
    os.environ.setdefault("AD_DATA_ROOT", str(REPO_ROOT / ".data" / args.dataset))
    settings = Settings.from_env()
    if first_landed_day(settings) is None or args.resimulate:
        print(f"Converting {args.dataset} into {settings.landing_dir} ...")
        if args.dataset == "movielens":
            from ml.datasets.movielens_landing import movielens_to_landing

            report = movielens_to_landing(settings.data_root, max_days=args.max_days, max_users=args.max_users)
        else:
            from ml.datasets.taobao import taobao_to_landing

            if args.source is None:
                raise SystemExit("--dataset taobao needs --source DIR (raw_sample.csv, ad_feature.csv, "
                                 "user_profile.csv, behavior_log.csv as published)")
            report = taobao_to_landing(args.source, settings.data_root)
        print(report.summary())
    else:
        print(f"Landing files found under {settings.landing_dir}; reusing them (--resimulate to rewrite).")
    os.environ["AD_PARTITION_START"] = first_landed_day(settings).isoformat()


def first_landed_day(settings: Settings) -> dt.date | None:
    days = sorted(path.name.removeprefix("date=") for path in settings.landing_dir.glob("*/date=*"))
    return dt.date.fromisoformat(days[0]) if days else None


def ensure_simulated_data(settings: Settings, args: argparse.Namespace) -> None:
    from ml.simulator import SimulationConfig, simulate

    if settings.landing_dir.exists() and any(settings.landing_dir.glob("*/date=*")) and not args.resimulate:
        print(f"Landing files found under {settings.landing_dir}; reusing them (--resimulate to rewrite).")
        return
    config = SimulationConfig(
        n_users=args.users, n_ads=args.ads, n_campaigns=args.campaigns, n_advertisers=min(25, args.campaigns),
        n_days=args.days, seed=args.seed,
        start_date=settings.partition_start,
    )
    print(f"Simulating {args.users} users, {args.ads} ads, {args.days} days into {settings.landing_dir} ...")
    simulate(config, settings.data_root)


def run_pipeline(settings: Settings) -> tuple[str, list[str]]:
    """Ingest every landed day (one run each), then the whole graph for the latest day.

    dbt's own log lines (which dagster-dbt re-emits on stdout) go to a file, so the console keeps
    the progress bars, warnings and the summary; every step's log is also in the runs, in the UI.
    """
    from orchestration.automation import landed_days
    from orchestration.backfill import run_partitions

    instance = local_instance(settings)
    days = landed_days(settings)
    if not days:
        raise SystemExit(f"No landing files under {settings.landing_dir}.")
    tool_log = settings.data_root / "logs" / f"demo-{time.strftime('%Y%m%d-%H%M%S')}.log"
    tool_log.parent.mkdir(parents=True, exist_ok=True)
    print(f"Ingesting {len(days) - 1} days of history, then the whole graph for {days[-1]} "
          f"(dbt output: {tool_log}) ...", flush=True)
    with tool_log.open("w") as log, contextlib.redirect_stdout(log):
        run_partitions("ingest_job", days[:-1], instance)
        run_partitions("daily_pipeline", days[-1:], instance)
    return days[-1], days


def run_closed_loop(settings: Settings, latest_day: str, n_days: int) -> list[str]:
    """Land each served A/B day as the next day's logs and run the whole graph on it; returns the days run."""
    from ml.simulator.ab_test import served_day_dir
    from ml.simulator.closed_loop import land_served_day
    from orchestration.backfill import run_partitions

    instance = local_instance(settings)
    tool_log = settings.data_root / "logs" / f"closed-loop-{time.strftime('%Y%m%d-%H%M%S')}.log"
    days = []
    for _ in range(n_days):
        served_day = dt.date.fromisoformat(latest_day) + dt.timedelta(days=1)
        served_dir = served_day_dir(settings.data_root, served_day)
        if not served_dir.exists():
            raise SystemExit(f"no A/B day was served for {served_day} (see ab_test_readout's status in the UI)")
        latest_day = land_served_day(settings.data_root, served_dir).isoformat()
        print(f"Closed loop: {latest_day} served (A/B) and landed; running the graph on it ...", flush=True)
        with tool_log.open("a") as log, contextlib.redirect_stdout(log):
            run_partitions("daily_pipeline", [latest_day], instance)
        days.append(latest_day)
    return days


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    # MLflow's INFO lines (creating its tables, validating input examples) say nothing a user acts on;
    # its warnings and the registry's "Created version" lines still show.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    if args.dataset != "simulator":
        ensure_dataset(args)
        settings = Settings.from_env()
    else:
        settings = Settings.from_env()
        ensure_simulated_data(settings, args)
    latest_day, days = run_pipeline(settings)
    if args.closed_loop:
        if args.dataset != "simulator":
            raise SystemExit("--closed-loop needs the simulator: it serves the A/B days")
        loop_days = run_closed_loop(settings, latest_day, args.closed_loop)
        latest_day, days = loop_days[-1], days + loop_days

    from orchestration.summary import print_summary

    peak_gib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    ) / 1024**2
    print_summary(settings, dt.date.fromisoformat(latest_day), len(days), time.perf_counter() - started, peak_gib)
    return 0


if __name__ == "__main__":
    sys.exit(main())
