"""Command line: `python -m ml.simulator.cli --users 5000 --days 14 --out <root>` (or `adflow-simulate`)."""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from ml.settings import Settings
from ml.simulator.config import FILE_FORMATS, SimulationConfig
from ml.simulator.run import simulate


def build_parser() -> argparse.ArgumentParser:
    defaults = SimulationConfig()
    parser = argparse.ArgumentParser(
        prog="adflow-simulate",
        description="Write simulated landing files (users, campaigns, ads, behavior_events, ad_events) and the ground truth.",
    )
    parser.add_argument("--users", type=int, default=defaults.n_users)
    parser.add_argument("--ads", type=int, default=defaults.n_ads)
    parser.add_argument("--campaigns", type=int, default=defaults.n_campaigns)
    parser.add_argument("--advertisers", type=int, default=defaults.n_advertisers)
    parser.add_argument("--days", type=int, default=defaults.n_days)
    parser.add_argument("--categories", type=int, default=defaults.n_categories)
    parser.add_argument("--brands", type=int, default=defaults.n_brands)
    parser.add_argument("--items", type=int, default=defaults.n_items)
    parser.add_argument("--start-date", type=dt.date.fromisoformat, default=None,
                        help="first simulated day (default: AD_PARTITION_START, 2026-11-01)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--impressions-per-day", type=float, default=defaults.impressions_per_active_day,
                        help="mean ad impressions per active user-day")
    parser.add_argument("--views-per-day", type=float, default=defaults.views_per_active_day,
                        help="mean item views per active user-day (the funnel adds ~40%% more events)")
    parser.add_argument("--exploration-share", type=float, default=defaults.exploration_share,
                        help="share of impressions the logging policy explores uniformly (off-policy support)")
    parser.add_argument("--format", choices=FILE_FORMATS, default=defaults.file_format)
    parser.add_argument("--out", type=Path, default=None, help="data root (default: AD_DATA_ROOT or <repo>/.data)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    try:
        config = SimulationConfig(
            n_users=args.users, n_ads=args.ads, n_campaigns=args.campaigns, n_advertisers=min(args.advertisers, args.campaigns),
            n_days=args.days, start_date=args.start_date or settings.partition_start, n_categories=args.categories,
            n_brands=args.brands, n_items=args.items, seed=args.seed, file_format=args.format,
            impressions_per_active_day=args.impressions_per_day, views_per_active_day=args.views_per_day,
            exploration_share=args.exploration_share,
        )
    except ValueError as error:
        print(f"adflow-simulate: {error}", file=sys.stderr)
        return 2
    summary = simulate(config, args.out or settings.data_root, progress=not args.no_progress)
    print(summary.format_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
