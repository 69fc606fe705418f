"""On-demand benchmark: LightGBM CTR training time on synthetic impressions with the full feature set.

Beside it, in the same run and on the same rows: logistic regression (the linear baseline) and
LightGBM on 2 threads (OpenMP spin-waiting makes it slower than 1 on a shared, loaded machine).
Target: LightGBM CTR on 1M impressions in <= 30 s. Run:

    .venv/bin/python benchmarks/ranker_training.py [--impressions 1000000]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import time

from ml.evaluation.metrics import auc, logloss
from ml.rankers import fit_ranker, split_by_day
from ml.rankers.baselines import LogisticRegressionBaseline
from ml.rankers.synthetic import synthetic_impressions

TARGET_SECONDS = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impressions", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args()

    started = time.perf_counter()
    impressions = synthetic_impressions(
        n_impressions=args.impressions, n_users=max(args.impressions // 25, 100),
        n_ads=2_000, n_days=args.days, seed=0,
    )
    last_day = dt.date(2026, 11, 1) + dt.timedelta(days=args.days - 1)
    train, valid, test = split_by_day(impressions, test_date=last_day, validation_date=last_day - dt.timedelta(days=1))
    print(f"generated {len(impressions):,} impressions in {time.perf_counter() - started:.1f} s "
          f"(train {len(train):,}, valid {len(valid):,}, test {len(test):,}); cpu_count={os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")

    rows = []
    variants = (("LightGBM CTR (default: 1 thread here)", None), ("LightGBM CTR (2 threads)", {"num_threads": 2}))
    for label, params in variants:
        wall = time.perf_counter()
        ranker = fit_ranker(train, valid, "ctr", params=params)
        wall = time.perf_counter() - wall
        scores = ranker.predict(test)
        rows.append((label, ranker.training_seconds, wall, ranker.best_iteration,
                     auc(test["label_click"], scores), logloss(test["label_click"], scores)))

    wall = time.perf_counter()
    logistic = LogisticRegressionBaseline().fit(train, "ctr")
    wall = time.perf_counter() - wall
    scores = logistic.predict(test)
    rows.append(("logistic regression (sklearn)", wall, wall, None,
                 auc(test["label_click"], scores), logloss(test["label_click"], scores)))

    print("\n| model | train rows | booster/fit s | fit_ranker wall s | rounds | test AUC | test logloss |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, fit_seconds, wall_seconds, rounds, test_auc, test_logloss in rows:
        print(f"| {label} | {len(train):,} | {fit_seconds:.1f} | {wall_seconds:.1f} | {rounds or '-'} | "
              f"{test_auc:.4f} | {test_logloss:.4f} |")
    verdict = "meets" if rows[0][2] <= TARGET_SECONDS else "misses"
    print(f"\nLightGBM CTR wall time {rows[0][2]:.1f} s {verdict} the {TARGET_SECONDS:.0f} s target.")


if __name__ == "__main__":
    main()
