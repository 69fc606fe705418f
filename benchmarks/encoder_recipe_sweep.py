"""Validation-only sweep of our next-item recipe on MovieLens-100k (how the recipe was chosen).

Trains ours to early stopping (patience 10) for each seed with one recipe change and prints the
validation NDCG@10 per seed and their mean. It never ranks the test items: the recipe is chosen on
validation only, and `encoder_movielens.py --convergence` computes the test numbers once, after.

    .venv/bin/python benchmarks/encoder_recipe_sweep.py --decay-epochs 60
    .venv/bin/python benchmarks/encoder_recipe_sweep.py --max-len 100
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from encoder_movielens import cpu_model, leave_one_out_split, ours_config  # noqa: E402
from ml.datasets.movielens import load_ml100k_interactions  # noqa: E402
from ml.encoder.next_item import (  # noqa: E402
    DEFAULT_LOGIT_SCALE, NEXT_ITEM_D_MODEL, NEXT_ITEM_DECAY_EPOCHS, NEXT_ITEM_DROPOUT, NEXT_ITEM_LABEL_SMOOTHING,
    NEXT_ITEM_MAX_LEN, NEXT_ITEM_SMOOTHING_EPOCHS, fit_next_item,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="how many seeds: first-seed, first-seed + 1, ...")
    parser.add_argument("--first-seed", type=int, default=2020)
    parser.add_argument("--max-len", type=int, default=NEXT_ITEM_MAX_LEN, help="history length our encoder sees")
    parser.add_argument("--d-model", type=int, default=NEXT_ITEM_D_MODEL, help="embedding width")
    parser.add_argument("--decay-epochs", type=float, default=NEXT_ITEM_DECAY_EPOCHS)
    parser.add_argument("--decay-shape", choices=["cosine", "linear"], default="cosine")
    parser.add_argument("--attn-dropout", type=float, default=0.0)
    parser.add_argument("--logit-scale", type=float, default=DEFAULT_LOGIT_SCALE,
                        help="multiplier on the catalog logits in the loss")
    parser.add_argument("--label-smoothing", type=float, default=NEXT_ITEM_LABEL_SMOOTHING)
    parser.add_argument("--ema-decay", type=float, default=0.0,
                        help="validate an exponential moving average of the weights (0 = off)")
    parser.add_argument("--average-epochs", type=int, default=1,
                        help="validate the uniform average of the last k epochs' weights (1 = off)")
    parser.add_argument("--dropout", type=float, default=NEXT_ITEM_DROPOUT)
    parser.add_argument("--n-layers", type=int, default=2)
    parser.add_argument("--stride", type=int, default=None,
                        help="training window stride (default max_len // 2): smaller = more context per pair")
    parser.add_argument("--item-bias", action="store_true", help="a learned per-item offset on next-item scores")
    parser.add_argument("--select-on", default="val_ndcg@10", choices=["val_ndcg@10", "val_mrr", "val_ndcg"],
                        help="the validation metric early stopping follows (NDCG@10 is always reported)")
    parser.add_argument("--smoothing-epochs", type=int, default=NEXT_ITEM_SMOOTHING_EPOCHS,
                        help="early stopping follows the mean of the last k epochs' validation scores")
    parser.add_argument("--max-epochs", type=int, default=300)
    args = parser.parse_args()

    split = leave_one_out_split(load_ml100k_interactions(), max_len=args.max_len, stride=args.stride)
    runs = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        config = dataclasses.replace(ours_config(split, args.max_epochs, patience=10, seed=seed, d_model=args.d_model,
                                                 dropout=args.dropout), n_layers=args.n_layers)
        started = time.perf_counter()
        _, result = fit_next_item(split.train_windows, split.n_items, split.valid_histories, split.valid_targets,
                                  config, progress=False, decay_epochs=args.decay_epochs,
                                  decay_shape=args.decay_shape, attn_dropout=args.attn_dropout,
                                  ema_decay=args.ema_decay, logit_scale=args.logit_scale,
                                  label_smoothing=args.label_smoothing, average_epochs=args.average_epochs,
                                  item_bias=args.item_bias, selection_metric=args.select_on,
                                  smoothing_epochs=args.smoothing_epochs)
        best = result.history[result.best_epoch - 1]
        runs.append({"seed": seed, "val_ndcg@10": round(best["val_ndcg@10"], 4), "best_epoch": result.best_epoch,
                     "epochs": result.epochs_run, "pairs_per_s": round(result.train_sequences_per_second),
                     "train_s_per_epoch": round(result.train_seconds / result.epochs_run, 1),
                     "wall_s": round(time.perf_counter() - started)})
        print(json.dumps(runs[-1]), flush=True)
        print("  per epoch val NDCG@10 / MRR: " + ", ".join(f"{row['val_ndcg@10']:.4f}/{row['val_mrr']:.4f}"
                                                         for row in result.history), flush=True)
    recipe = {key: value for key, value in vars(args).items() if key not in ("seeds", "first_seed", "max_epochs")}
    scores = [run["val_ndcg@10"] for run in runs]
    print(f"recipe {json.dumps(recipe)}: validation NDCG@10 "
          f"{' / '.join(f'{score:.4f}' for score in scores)}, mean {np.mean(scores):.4f} "
          f"(on {cpu_model()}: another CPU can move an early-stopped run's peak)")


if __name__ == "__main__":
    main()
