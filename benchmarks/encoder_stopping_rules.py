"""Which early-stopping rule picks the better epoch? Judged on validation users the rule never saw.

Picking the epoch with the highest validation NDCG@10 also picks that epoch's noise: the score
it reports is biased upwards, and comparing rules by their own validation score favours the
noisiest. This script trains our next-item encoder (the default recipe) for a fixed number of
epochs per seed, keeping every user's validation rank at every epoch, then replays each rule
with patience 10 on a random half of the validation users and scores the epoch it keeps on the
other half (cross-fitting, many random halvings). The test items are never ranked.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/encoder_stopping_rules.py --seeds 5 --epochs 60
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from encoder_movielens import cpu_model, leave_one_out_split, ours_config  # noqa: E402
from ml.datasets.movielens import load_ml100k_interactions  # noqa: E402
from ml.encoder.next_item import fit_next_item, ndcg_per_user  # noqa: E402

PATIENCE = 10


def ndcg_at_10(ranks: np.ndarray) -> np.ndarray:
    return ndcg_per_user(ranks, 10)


def reciprocal_rank(ranks: np.ndarray) -> np.ndarray:
    return 1.0 / (ranks + 1.0)


def moving_average(curve: np.ndarray, width: int = 3) -> np.ndarray:
    """Mean of each epoch's score and the (up to) width - 1 before it: known at that epoch."""
    sums = np.cumsum(np.r_[0.0, curve])
    starts = np.maximum(np.arange(len(curve)) - width + 1, 0)
    return (sums[1:] - sums[starts]) / (np.arange(len(curve)) - starts + 1)


PLAIN_RULE = "NDCG@10 of each epoch (RecBole's rule)"
# Each rule turns the per-epoch curve on the selection half into the curve early stopping follows.
RULES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    PLAIN_RULE: lambda ranks: ndcg_at_10(ranks).mean(1),
    "MRR (full ranking)": lambda ranks: reciprocal_rank(ranks).mean(1),
    "NDCG (full ranking)": lambda ranks: ndcg_per_user(ranks).mean(1),
    "NDCG@10, 3-epoch moving average": lambda ranks: moving_average(ndcg_at_10(ranks).mean(1)),
    "NDCG@10, 5-epoch moving average": lambda ranks: moving_average(ndcg_at_10(ranks).mean(1), width=5),
    "NDCG (full ranking), 3-epoch moving average": lambda ranks: moving_average(ndcg_per_user(ranks).mean(1)),
}


def stopped_epoch(curve: np.ndarray, patience: int = PATIENCE) -> int:
    """0-based epoch early stopping keeps: the best so far when `patience` epochs bring no gain."""
    best, since = 0, 0
    for epoch in range(1, len(curve)):
        if curve[epoch] > curve[best]:
            best, since = epoch, 0
        else:
            since += 1
            if since >= patience:
                break
    return best


def cross_fitted_scores(ranks: np.ndarray, halvings: int, rng: np.random.Generator) -> dict[str, float]:
    """ranks [epochs, users] -> each rule's mean held-out NDCG@10 over random halvings (both directions)."""
    held_out_ndcg = ndcg_at_10(ranks)
    scores = {name: [] for name in RULES}
    for _ in range(halvings):
        in_a = rng.permutation(ranks.shape[1]) < ranks.shape[1] // 2
        for select, judge in ((in_a, ~in_a), (~in_a, in_a)):
            for name, curve_of in RULES.items():
                epoch = stopped_epoch(curve_of(ranks[:, select]))
                scores[name].append(held_out_ndcg[epoch, judge].mean())
    return {name: float(np.mean(values)) for name, values in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="how many seeds: first-seed, first-seed + 1, ...")
    parser.add_argument("--first-seed", type=int, default=2020)
    parser.add_argument("--epochs", type=int, default=60, help="epochs trained per seed (no early stopping)")
    parser.add_argument("--halvings", type=int, default=1000, help="random halvings of the validation users")
    parser.add_argument("--ranks-dir", type=Path, default=REPO_ROOT / ".data" / "bench" / "stopping_rules",
                        help="each seed's per-epoch validation ranks are kept here and reused")
    args = parser.parse_args()

    split = leave_one_out_split(load_ml100k_interactions())
    args.ranks_dir.mkdir(parents=True, exist_ok=True)
    per_seed = {}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        cache = args.ranks_dir / f"seed{seed}_epochs{args.epochs}.npy"
        if not cache.exists():
            started, ranks = time.perf_counter(), []
            config = ours_config(split, args.epochs, patience=args.epochs, seed=seed)
            fit_next_item(split.train_windows, split.n_items, split.valid_histories, split.valid_targets, config,
                          progress=False, validation_ranks=ranks, smoothing_epochs=1)
            np.save(cache, np.stack(ranks))
            print(f"seed {seed}: {args.epochs} epochs in {time.perf_counter() - started:.0f} s -> {cache}", flush=True)
        ranks = np.load(cache)
        per_seed[seed] = cross_fitted_scores(ranks, args.halvings, np.random.default_rng(seed))
        print(json.dumps({"seed": seed, **{name: round(score, 4) for name, score in per_seed[seed].items()}}),
              flush=True)

    print(f"\nHeld-out validation NDCG@10 of the epoch each rule keeps (patience {PATIENCE}, selection on one half "
          f"of the {split.valid_targets.size} validation users, scored on the other, {args.halvings} halvings; "
          f"{cpu_model()}):\n")
    seeds = list(per_seed)
    plain = np.array([per_seed[seed][PLAIN_RULE] for seed in seeds])
    print("| stopping rule | " + " | ".join(map(str, seeds)) + " | mean | vs the plain rule (seeds ahead) |")
    print("|---|" + "---|" * (len(seeds) + 2))
    for name in RULES:
        values = np.array([per_seed[seed][name] for seed in seeds])
        gain = values - plain
        print(f"| {name} | " + " | ".join(f"{value:.4f}" for value in values) + f" | {values.mean():.4f} | "
              f"{gain.mean():+.4f} ({(gain > 0).sum()} of {len(seeds)}) |")


if __name__ == "__main__":
    main()
