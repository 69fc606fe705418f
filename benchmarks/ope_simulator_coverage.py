"""Off-policy value of a schedule on the simulator's logs, against its true value, over seeded worlds.

Each replication simulates a small world (its own seed), takes the first day's logged impressions
(every conversion has landed by the last day), and values a target schedule with every estimator
of ml.evaluation.ope through ml.evaluation.schedule_ope, the code path of the `policy_value_estimates`
asset. The target gives each user the K ads with the highest *noisy* true value (a ranker that is
right on average, wrong per pair: true value x lognormal noise); the reward model for DM/DR is that
same noisy value, so DM is biased and DR must correct it with the logs. The truth is the target's
expected value per logged opportunity under the simulator's true probabilities.

    .venv/bin/python benchmarks/ope_simulator_coverage.py [--replications 20] [--users 2000]

Last line: `OPE on the simulator: DR interval covers the true value in <k> of <n> replications; median
relative error <x>` (x a fraction).
"""
from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ml.allocation.value import expected_value
from ml.evaluation.ope import estimate_frame
from ml.evaluation.schedule_ope import schedule_rounds, true_value_per_impression
from ml.simulator import GroundTruth, SimulationConfig, simulate

START = dt.date(2026, 11, 1)
SLOTS_PER_USER = 4
NOISE_SIGMA = 0.5
DR_CLIP = 50.0


def logged_first_day(data_root: Path, truth: GroundTruth) -> pd.DataFrame:
    events = pd.read_parquet(data_root / "landing" / "ad_events")
    impressions = events[(events["event_type"] == "impression") & (events["ts"].dt.date == START)]
    clicked = set(events.loc[events["event_type"] == "click", "impression_id"])
    converted = set(events.loc[events["event_type"] == "conversion", "impression_id"])
    ads = truth.ad_table()[["ad_id", "campaign_id", "bid", "bid_type"]]
    logged = impressions.merge(ads, on="ad_id")
    return pd.DataFrame({
        "impression_id": logged["impression_id"], "user_key": logged["user_id"].astype(str),
        "ad_id": logged["ad_id"], "campaign_id": logged["campaign_id"], "impression_ts": logged["ts"],
        "hour": logged["ts"].dt.hour, "slot": logged["slot"], "bid": logged["bid"], "bid_type": logged["bid_type"],
        "label_click": logged["impression_id"].isin(clicked).astype(int),
        "label_conversion": logged["impression_id"].isin(converted).astype(int),
        "propensity": logged["propensity"],
    })


def noisy_ranker_scores(truth: GroundTruth, users: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Every (user, in-flight ad) pair with a noisy pCTR: the target's ranking and DM's reward model."""
    ads = truth.ad_table()
    ads = ads[(ads["start_date"] <= np.datetime64(START)) & (ads["end_date"] >= np.datetime64(START))]
    pairs = pd.MultiIndex.from_product([users, ads["ad_id"].to_numpy()], names=["user_key", "ad_id"]).to_frame(
        index=False).merge(ads[["ad_id", "campaign_id", "bid", "bid_type"]], on="ad_id")
    pctr, pcvr = truth.true_probabilities(pairs["user_key"].astype(np.int64), pairs["ad_id"],
                                          np.repeat(np.datetime64(START), len(pairs)), np.full(len(pairs), 12),
                                          np.ones(len(pairs), dtype=int))
    pairs["pctr"] = pctr * rng.lognormal(-NOISE_SIGMA**2 / 2, NOISE_SIGMA, len(pairs))
    pairs["pcvr"] = pcvr
    return pairs


def top_k_schedule(scored: pd.DataFrame) -> pd.DataFrame:
    scored = scored.assign(value=expected_value(scored["bid"], scored["bid_type"], scored["pctr"], scored["pcvr"]))
    ranked = scored.sort_values(["user_key", "value", "ad_id"], ascending=[True, False, True])
    return ranked.groupby("user_key", sort=True).head(SLOTS_PER_USER)


def replicate(seed: int, n_users: int, workdir: Path) -> pd.DataFrame:
    config = SimulationConfig(n_users=n_users, n_ads=200, n_campaigns=30, n_advertisers=10, n_days=8, seed=seed,
                              start_date=START)
    root = workdir / f"seed-{seed}"
    simulate(config, root, progress=False)
    truth = GroundTruth.load(root / "ground_truth")
    logged = logged_first_day(root, truth)
    scored = noisy_ranker_scores(truth, logged["user_key"].unique(), np.random.default_rng(seed))
    schedule = top_k_schedule(scored)
    ad_campaigns = scored.drop_duplicates("ad_id").set_index("ad_id")["campaign_id"]
    rounds = schedule_rounds(logged, schedule, scored, ad_campaigns)

    def true_probabilities(rows: pd.DataFrame):
        return truth.true_probabilities(rows["user_key"].astype(np.int64), rows["ad_id"],
                                        np.repeat(np.datetime64(START), len(rows)), rows["hour"], rows["slot"])

    true_value = true_value_per_impression(rounds, logged, schedule, true_probabilities)
    table = estimate_frame(rounds, clip=DR_CLIP)
    return table.assign(seed=seed, truth=true_value, impressions=len(rounds),
                        logged_value=rounds["reward"].mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replications", type=int, default=20)
    parser.add_argument("--users", type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ope-sim-") as workdir:
        results = pd.concat([replicate(seed, args.users, Path(workdir))
                             for seed in tqdm(range(1, args.replications + 1), desc="replications", unit="world")],
                            ignore_index=True)
    results["relative_error"] = (results["estimate"] - results["truth"]).abs() / results["truth"]
    results["covered"] = (results["ci_low"] <= results["truth"]) & (results["truth"] <= results["ci_high"])
    results["relative_half_width"] = (results["ci_high"] - results["ci_low"]) / 2 / results["truth"]

    dr = results[results["estimator"] == "dr"]
    print("Doubly robust, per replication (value per impression; truth under the true probabilities):")
    print(dr[["seed", "impressions", "logged_value", "truth", "estimate", "ci_low", "ci_high", "relative_error",
              "covered", "ess", "max_weight", "support_share"]].round(4).to_markdown(index=False))
    summary = results.groupby("estimator", sort=False).agg(
        coverage=("covered", "mean"), median_relative_error=("relative_error", "median"),
        mean_signed_error=("estimate", lambda s: float((s - results.loc[s.index, "truth"]).mean())),
        median_relative_half_width=("relative_half_width", "median"), median_ess=("ess", "median"))
    print("\nEvery estimator over the replications:")
    print(summary.round(4).to_markdown())
    print(f"\nOPE on the simulator: DR interval covers the true value in {int(dr['covered'].sum())} of {len(dr)} "
          f"replications; median relative error {dr['relative_error'].median():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
