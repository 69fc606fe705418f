"""Dynamic creative selection on a simulated log: the selector's expected regret against always showing
the best creative, beside a uniform draw's, for several segment-prior strengths (what the
`creative_report` asset computes for the default), and its CTR off-policy.

    AD_DATA_ROOT=/tmp/demo python -m orchestration.demo          # a simulated log, warehouse built
    .venv/bin/python benchmarks/creative_selection.py --data-root /tmp/demo [--strengths 20,200,1000]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ml.creatives.assign import CreativeInputs  # noqa: E402
from ml.creatives.evaluation import (expected_regret, read_creative_log, replay_selector,  # noqa: E402
                                     selector_ctr_off_policy)
from ml.creatives.selector import DEFAULT_SEGMENT_PRIOR_STRENGTH  # noqa: E402
from ml.simulator import GroundTruth  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True, help="a data root the demo ran on (simulated)")
    parser.add_argument("--strengths", default=f"20,{DEFAULT_SEGMENT_PRIOR_STRENGTH:g},1000",
                        help="segment_prior_strength values to replay")
    args = parser.parse_args()
    with duckdb.connect(str(args.data_root / "warehouse.duckdb"), read_only=True) as conn:
        inputs, log = CreativeInputs.read(conn), read_creative_log(conn)
    truth = GroundTruth.load(args.data_root / "ground_truth")
    print(f"{args.data_root}: {len(inputs.catalog)} creatives of {inputs.catalog['ad_id'].nunique()} ads, "
          f"{len(log):,} impressions of those ads over {log['impression_date'].nunique()} days")
    print("| segment prior (impressions) | impressions replayed | regret (clicks) | uniform draw's | share | "
          "per impression, first half -> second half | selector CTR (SNIPS, 95%) | logged CTR | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for strength in [float(value) for value in args.strengths.split(",")]:
        started = time.perf_counter()
        replay = replay_selector(log, inputs.catalog, segment_prior_strength=strength)
        seconds = time.perf_counter() - started
        per_impression = expected_regret(replay, truth.creative_ctr(replay["impression_id"], replay["creative_id"]), log)
        regret = (per_impression["best_ctr"] - per_impression["selector_ctr"]).to_numpy()
        uniform = float((per_impression["best_ctr"] - per_impression["uniform_ctr"]).sum())
        first, second = np.array_split(regret, 2)
        estimate = selector_ctr_off_policy(log, replay)
        ope, logged = ((f"{estimate.selector_ctr:.4f} [{estimate.interval[0]:.4f}, {estimate.interval[1]:.4f}]",
                        f"{estimate.logged_ctr:.4f}") if estimate else ("—", "—"))
        print(f"| {strength:g} | {len(per_impression):,} | {regret.sum():.1f} | {uniform:.1f} | "
              f"{regret.sum() / uniform:.3f} | {first.mean():.5f} -> {second.mean():.5f} | {ope} | {logged} | "
              f"{seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
