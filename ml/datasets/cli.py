"""Land a public dataset as contract files: `python -m ml.datasets.cli {taobao,movielens} ...`.

    python -m ml.datasets.cli taobao --source DIR [--out ROOT] [--chunksize N]
    python -m ml.datasets.cli movielens [--out ROOT] [--max-days N]

ROOT defaults to the data root of `ml.settings` (AD_DATA_ROOT). The dates landed are the
dataset's own (2017 for Taobao, 1997-98 for MovieLens): set AD_PARTITION_START to the first
landed day printed below so the daily partitions cover them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ml.datasets.taobao import DEFAULT_CHUNKSIZE, AdapterReport, TaobaoSourceError
from ml.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ml.datasets.cli", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="dataset", required=True)
    taobao = commands.add_parser("taobao", help="Taobao display-ad CSVs as published")
    taobao.add_argument("--source", type=Path, required=True,
                        help="folder with raw_sample.csv, ad_feature.csv, user_profile.csv, behavior_log.csv")
    taobao.add_argument("--out", type=Path, default=None, help="data root (landing/ goes below it)")
    taobao.add_argument("--chunksize", type=int, default=DEFAULT_CHUNKSIZE,
                        help="CSV rows read at a time (memory bound for the 700M-row behavior log)")
    movielens = commands.add_parser("movielens", help="MovieLens-100k with a synthetic ad layer")
    movielens.add_argument("--out", type=Path, default=None, help="data root (landing/ goes below it)")
    movielens.add_argument("--max-days", type=int, default=None,
                           help="keep only the first N days from the first rating")
    return parser


def run(argv: list[str] | None = None) -> AdapterReport:
    args = build_parser().parse_args(argv)
    data_root = args.out if args.out is not None else Settings.from_env().data_root
    if args.dataset == "taobao":
        from ml.datasets.taobao import taobao_to_landing

        return taobao_to_landing(args.source, data_root, chunksize=args.chunksize)
    from ml.datasets.movielens_landing import movielens_to_landing

    return movielens_to_landing(data_root, max_days=args.max_days)


def main(argv: list[str] | None = None) -> int:
    try:
        report = run(argv)
    except (TaobaoSourceError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.summary())
    first_days = [days[0] for days in report.days_by_table.values() if days]
    if first_days:
        print(f"first landed day: {min(first_days)} (set AD_PARTITION_START to it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
