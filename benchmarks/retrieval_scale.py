"""Candidate retrieval at catalog scale: the faiss IVF index ("ann") against brute force ("exact"),
both through `retrieve_candidates`, on clustered synthetic embeddings (100k users x 1M ads, 64-d).

Brute force over all users would take 20+ minutes here, so it runs on a seeded sample of users;
its per-query time is (time for the sample - time for one user) / (sample - 1), which takes out the
fixed cost of preparing the catalog, and its total for all users is extrapolated from that. Recall@50
is measured on the same sample. Everything runs on one thread (BLAS and faiss) so per-query times
compare like for like on a shared box. On demand only:

    nice -n 10 .venv/bin/python benchmarks/retrieval_scale.py [--users 100000] [--ads 1000000] [--sample 2000]
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ml.allocation import ann_index
from ml.allocation.candidates import retrieve_candidates
from ml.allocation.config import AllocationConfig
from ml.allocation.synthetic_embeddings import clustered_embedding_frames

TOP_N = 50


def _timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def _recall(found: pd.DataFrame, reference: pd.DataFrame) -> float:
    interest = [frame[frame["source"] == "interest"] for frame in (found, reference)]
    pairs = [set(zip(frame["user_key"], frame["ad_id"])) for frame in interest]
    return len(pairs[0] & pairs[1]) / len(pairs[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--ads", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--spread", type=float, default=0.15, help="per-dimension noise around cluster centres")
    parser.add_argument("--sample", type=int, default=2_000, help="users timed with brute force")
    args = parser.parse_args()

    users, ads = clustered_embedding_frames(args.users, args.ads, args.dim, spread=args.spread, seed=0)
    eligible = ads[["ad_id"]]
    sample = users.iloc[np.sort(np.random.default_rng(1).choice(args.users, args.sample, replace=False))]
    # 128 users per block: a block of scores is 128 x 1M floats (512 MB) instead of 8192 x 1M.
    config = AllocationConfig(candidates_per_user=TOP_N, exploration_per_user=0, retrieval_chunk_users=128)
    rows: list[tuple[str, int, float, str]] = []  # (what, queries, seconds, note)

    with threadpool_limits(1):
        _, one_s = _timed(retrieve_candidates, sample.head(1), ads, eligible, config, index="exact")
        exact, exact_s = _timed(retrieve_candidates, sample, ads, eligible, config, index="exact")
        exact_per_query = (exact_s - one_s) / (args.sample - 1)
        rows.append(("exact: retrieve_candidates, sampled users", args.sample, exact_s, "measured"))
        rows.append(("exact: all users", args.users, one_s + exact_per_query * args.users,
                     "extrapolated: 1-user time + per-query x users"))

        unit_ads = np.stack(ads["embedding"].to_numpy())
        unit_users = np.stack(users["embedding"].to_numpy())
        index, build_s = _timed(ann_index.build_index, unit_ads, seed=config.seed)
        rows.append((f"ann: index build ({index.n_lists} lists, {args.ads:,} ads)", 0, build_s, "measured"))
        _, search_s = _timed(ann_index.search, index, unit_users, TOP_N)
        ann_per_query = search_s / args.users
        rows.append((f"ann: search only (probe {index.n_probe} lists)", args.users, search_s, "measured"))
        ann, ann_s = _timed(retrieve_candidates, users, ads, eligible, config, index="ann")
        rows.append(("ann: retrieve_candidates, all users (build + search + frame)", args.users, ann_s, "measured"))

        recall = _recall(ann[ann["user_key"].isin(sample["user_key"])], exact)
        sweep = []
        for share in (0.01, 0.03, 0.1):
            index.index.nprobe = max(1, round(share * index.n_lists))
            (_, positions), seconds = _timed(ann_index.search, index, np.stack(sample["embedding"].to_numpy()), TOP_N)
            found = pd.DataFrame({"user_key": np.repeat(sample["user_key"].to_numpy(), TOP_N),
                                  "ad_id": ads["ad_id"].to_numpy()[positions.ravel()], "source": "interest"})
            sweep.append((index.index.nprobe, _recall(found, exact), seconds / args.sample))

    speedup = exact_per_query / ann_per_query
    print(f"\n{args.users:,} users x {args.ads:,} ads, {args.dim}-d, {args.ads // 1000} Gaussian clusters "
          f"(spread {args.spread}), top-{TOP_N}, 1 thread; brute force timed on {args.sample:,} seeded users\n")
    print("| step | queries | seconds | ms/query | note |\n|---|---:|---:|---:|---|")
    for what, queries, seconds, note in rows:
        per_query = f"{seconds / queries * 1e3:.3f}" if queries else "-"
        print(f"| {what} | {queries:,} | {seconds:.1f} | {per_query} | {note} |")
    print(f"| **exact per query (sample - 1 user) / {args.sample - 1:,}** | | | **{exact_per_query * 1e3:.3f}** | baseline |")
    print(f"| **ann search per query** | | | **{ann_per_query * 1e3:.3f}** | {speedup:.1f}x faster |")
    print(f"\nrecall@{TOP_N} of ann vs exact on the {args.sample:,} sampled users: {recall:.4f}")
    print(f"end to end, all users: exact {rows[1][2]:.0f} s (extrapolated) vs ann {ann_s:.0f} s "
          f"({rows[1][2] / ann_s:.1f}x)")
    print(f"ann index memory {index.memory_bytes / 2**20:,.0f} MiB (vectors {unit_ads.nbytes / 2**20:,.0f} MiB); "
          f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB")
    print("\nprobe sweep on the sample (recall vs per-query time):\n\n| lists probed | recall@50 | ms/query |\n|---:|---:|---:|")
    for probes, sweep_recall, per_query in sweep:
        print(f"| {probes} / {index.n_lists} | {sweep_recall:.4f} | {per_query * 1e3:.3f} |")
    print(f"\nretrieval: recall@50 {recall:.3f} at {speedup:.1f}x brute force speed ({args.ads / 1e6:g}M ads)")


if __name__ == "__main__":
    main()
