"""End-to-end allocation at scale: synthetic embeddings -> retrieval -> synthetic scores -> allocation
-> validation, for 100k users x 2k ads (defaults). Prints a markdown table of stage times beside the
naive greedy (no dual prices) measured in the same run. On demand only:

    .venv/bin/python benchmarks/allocation_scale.py [--users 100000] [--ads 2000]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from ml.allocation.allocator import allocate
from ml.allocation.candidates import retrieve_candidates
from ml.allocation.config import AllocationConfig
from ml.allocation.constraints import validate_schedule
from ml.allocation.synthetic import SCHEDULE_DATE, synthetic_campaigns, synthetic_user_hours


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--ads", type=int, default=2_000)
    parser.add_argument("--campaigns", type=int, default=400)
    parser.add_argument("--dim", type=int, default=32)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    config = AllocationConfig()
    rows = []

    t0 = time.perf_counter()
    user_keys = np.array([f"u{i:07d}" for i in range(args.users)], dtype=object)
    users = pd.DataFrame({"user_key": user_keys, "embedding": list(rng.normal(size=(args.users, args.dim)).astype(np.float32))})
    ads = pd.DataFrame({"ad_id": np.arange(1, args.ads + 1), "embedding": list(rng.normal(size=(args.ads, args.dim)).astype(np.float32)),
                        "campaign_id": rng.integers(1, args.campaigns + 1, args.ads), "category_id": rng.integers(1, 50, args.ads)})
    campaigns = synthetic_campaigns(args.campaigns, args.campaigns // 3, rng)
    user_hours = synthetic_user_hours(user_keys, rng)
    stats = pd.DataFrame({"ad_id": ads["ad_id"], "impressions_7d": rng.poisson(500, args.ads), "ad_age_days": rng.integers(0, 60, args.ads)})
    rows.append(("synthetic inputs", time.perf_counter() - t0))

    t0 = time.perf_counter()
    candidates = retrieve_candidates(users, ads[["ad_id", "embedding"]], ads[["ad_id", "campaign_id"]], config, stats)
    rows.append(("retrieval (top-50 + 5 exploration)", time.perf_counter() - t0))

    t0 = time.perf_counter()
    candidates = candidates.merge(ads[["ad_id", "campaign_id", "category_id"]], on="ad_id").merge(
        campaigns[["campaign_id", "advertiser_id", "bid", "bid_type"]], on="campaign_id")
    similarity = candidates["retrieval_score"].to_numpy()
    candidates["pctr"] = 1 / (1 + np.exp(-(-3.5 + 2.0 * similarity + rng.normal(0, 0.3, len(candidates)))))
    candidates["pcvr"] = rng.beta(2, 20, len(candidates))
    value = np.where(candidates["bid_type"] == "cpa", candidates["bid"] * candidates["pctr"] * candidates["pcvr"],
                     candidates["bid"] * candidates["pctr"])
    demand = pd.Series(value * config.slots_per_user / 55).groupby(candidates["campaign_id"].to_numpy()).sum()
    campaigns["daily_budget"] = demand.reindex(campaigns["campaign_id"]).fillna(1.0).to_numpy() * rng.uniform(0.5, 4.0, len(campaigns))
    rows.append(("synthetic scores", time.perf_counter() - t0))

    t0 = time.perf_counter()
    naive = allocate(candidates, campaigns, user_hours, SCHEDULE_DATE, config, use_dual_prices=False)
    naive_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = allocate(candidates, campaigns, user_hours, SCHEDULE_DATE, config)
    alloc_s = time.perf_counter() - t0
    rows.append(("allocation, dual prices", alloc_s))

    t0 = time.perf_counter()
    violations = validate_schedule(result.schedule, campaigns, config, result.pacing_plan, candidates)
    rows.append(("validation", time.perf_counter() - t0))
    total = sum(s for name, s in rows)

    print(f"\n{args.users:,} users x {args.ads:,} ads, {args.campaigns} campaigns, {len(candidates):,} candidate rows\n")
    print("| stage | seconds | users/s |\n|---|---:|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.1f} | {args.users / seconds:,.0f} |")
    print(f"| **end to end (dual)** | **{total:.1f}** | {args.users / total:,.0f} |")
    print(f"| baseline: allocation, naive greedy (no duals) | {naive_s:.1f} | {args.users / naive_s:,.0f} |")
    d = result.diagnostics
    print(f"\nallocation stage split (dual): {', '.join(f'{k}={v:.1f}' for k, v in d['timings'].items())}")
    print(f"dual iterations {d['dual_iterations']}; campaigns at >=99% budget: "
          f"{(d['budget_utilisation']['utilisation'] >= 0.99).sum()} / {len(campaigns)}")
    print(f"expected value: dual {result.total_value:,.1f} vs naive {naive.total_value:,.1f} "
          f"({result.total_value / naive.total_value - 1:+.2%}); users served {d['users_served']:,}/{d['users_with_candidates']:,}; "
          f"rows {d['rows_scheduled']:,}; violations {len(violations)}")


if __name__ == "__main__":
    main()
