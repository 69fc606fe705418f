"""On-demand benchmark: off-policy estimates on the Open Bandit Dataset sample against on-policy truth.

The sample logs two policies over the same week and items: `random` (uniform) and `bts` (Bernoulli
Thompson sampling). Each one's mean click rate in its own logs is the truth the other's logs must
recover off-policy (OBP's protocol, Saito et al. 2021). Per campaign (all, men, women):

- random -> bts (prior): the TS policy of OBP's `BernoulliTS(is_zozotown_prior=True)`, its slot
  probabilities by Monte Carlo from `prior_bts.yaml`, valued from the random logs;
- random -> bts (week freq.): TS as it actually played the week: the (item, slot) frequencies of the
  bts logs (its actions only, never its clicks). Its posteriors moved during the week, so the prior
  alone is not the policy that produced the truth;
- bts -> random: the uniform policy (1 / n_items at each slot) valued from the bts logs, weighted by
  their logged propensities.

Reward model for DM/DR: (item, slot) click rates, smoothed and cross-fitted over folds (DM uses each
row's out-of-fold model too). Intervals: 95%, every logged row its own unit (the sample has no user
id; its timestamps are distinct); DM's is a bootstrap that refits the reward model on each resample,
since a fixed model's interval only sees context noise.
The headline counts the OBP-protocol rows (prior TS and random); week-frequency rows are summarised
on the line before it. Run:

    .venv/bin/python benchmarks/ope_open_bandit.py [--samples 1000000] [--clip 10]
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np

from ml.datasets.open_bandit import (
    CAMPAIGNS, load_bts_prior, load_open_bandit, thompson_sampling_distribution, uniform_distribution,
)
from ml.evaluation.ope import LoggedRounds, OffPolicyEstimate, estimate_all, on_policy_value
from ml.evaluation.ope.reward_model import cross_fit_click_rates, direct_method_refit_bootstrap
from ml.settings import Settings

HEADLINE_DIRECTIONS = ("random -> bts (prior)", "bts -> random")


def action_frequencies(logs) -> np.ndarray:
    """(n_items, n_positions): how often each item was shown at each slot, per slot summing to 1."""
    counts = np.zeros((logs.n_actions, logs.n_positions))
    np.add.at(counts, (logs.actions, logs.positions), 1.0)
    return counts / counts.sum(axis=0, keepdims=True)


def estimate_target(logs, target: np.ndarray, logging_support: np.ndarray, args) -> list[OffPolicyEstimate]:
    model = cross_fit_click_rates(logs.actions, logs.positions, logs.rewards, logs.n_actions, logs.n_positions,
                                  n_folds=args.folds, seed=args.seed)
    on_support = (np.where(logging_support > 0, target, 0.0)).sum(axis=0)  # per slot
    rounds = LoggedRounds(
        rewards=logs.rewards, propensities=logs.propensities,
        target_probabilities=target[logs.actions, logs.positions],
        q_logged=model.q_logged(logs.actions, logs.positions),
        q_target_expected=model.q_expected(target, logs.positions),
        positions=logs.positions, target_mass_on_support=on_support[logs.positions],
    )
    results = estimate_all(rounds, clip=args.clip, interval=args.interval, n_bootstrap=args.n_bootstrap,
                           seed=args.seed)
    # DM's own interval holds the model fixed; refit it on resampled rows so the model's noise shows.
    _, low, high = direct_method_refit_bootstrap(logs.actions, logs.positions, logs.rewards, target, logs.n_actions,
                                                 logs.n_positions, n_bootstrap=args.dm_bootstrap, seed=args.seed)
    return [replace(r, ci_low=low, ci_high=high, standard_error=(high - low) / (2 * 1.96),
                    interval_method="refit bootstrap percentile") if r.estimator == "dm" else r for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000, help="Monte Carlo draws for TS's slot probabilities")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5, help="cross-fitting folds of the reward model")
    parser.add_argument("--clip", type=float, default=10.0, help="weight cap of the DR-clip row (fixed a priori)")
    parser.add_argument("--interval", choices=("analytic", "bootstrap"), default="analytic")
    parser.add_argument("--n-bootstrap", type=int, default=2_000)
    parser.add_argument("--dm-bootstrap", type=int, default=500, help="refits of the reward model for DM's interval")
    args = parser.parse_args()

    started = time.perf_counter()
    rows = []
    for campaign in CAMPAIGNS:
        random_logs, bts_logs = load_open_bandit("random", campaign), load_open_bandit("bts", campaign)
        ts_prior = thompson_sampling_distribution(*load_bts_prior(campaign), n_samples=args.samples, seed=args.seed)
        uniform = uniform_distribution(random_logs.n_actions)
        truths = {"bts": on_policy_value(bts_logs.rewards), "random": on_policy_value(random_logs.rewards)}
        setups = (("random -> bts (prior)", random_logs, ts_prior, uniform, "bts"),
                  ("random -> bts (week freq.)", random_logs, action_frequencies(bts_logs), uniform, "bts"),
                  # TS's Beta draws give every item a positive chance at every slot: its support is full.
                  ("bts -> random", bts_logs, uniform, ts_prior + (ts_prior == 0), "random"))
        for direction, logs, target, support, truth_name in setups:
            truth = truths[truth_name]
            for result in estimate_target(logs, target, support, args):
                combined_se = np.hypot(result.standard_error, truth.standard_error)
                rows.append({
                    "campaign": campaign, "direction": direction, "estimator": result.estimator,
                    "estimate": result.estimate, "ci_low": result.ci_low, "ci_high": result.ci_high,
                    "truth": truth.estimate, "truth_ci_low": truth.ci_low, "truth_ci_high": truth.ci_high,
                    "relative_error": abs(result.estimate - truth.estimate) / truth.estimate,
                    "covers_truth": result.covers(truth.estimate),
                    "difference_z": (result.estimate - truth.estimate) / combined_se,
                    "ess": result.diagnostics.effective_sample_size, "max_weight": result.diagnostics.max_weight,
                    "support_share": result.diagnostics.support_share,
                })

    print(f"Open Bandit Dataset sample (obp 0.5.7), 10,000 rows per policy and campaign; TS by {args.samples:,} "
          f"Monte Carlo draws; {args.interval} 95% intervals; {time.perf_counter() - started:.1f} s\n")
    print("| campaign | direction | estimator | estimate | 95% interval | on-policy truth [95%] | rel. error "
          "| truth inside | z (est - truth) | ESS | max weight |")
    print("|---|---|---|---:|---|---|---:|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['campaign']} | {r['direction']} | {r['estimator']} | {r['estimate']:.5f} "
              f"| [{r['ci_low']:.5f}, {r['ci_high']:.5f}] | {r['truth']:.5f} [{r['truth_ci_low']:.5f}, "
              f"{r['truth_ci_high']:.5f}] | {r['relative_error']:.3f} | {'yes' if r['covers_truth'] else 'no'} "
              f"| {r['difference_z']:+.2f} | {r['ess']:,.0f} | {r['max_weight']:,.1f} |")
    support = sorted({round(r["support_share"], 3) for r in rows})
    print(f"\nsupport share (target mass on items the logger could show) over all rows: {support}")
    out = Settings.from_env().data_root / "bench" / "ope_open_bandit.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1, default=float))
    print(f"rows written to {out}\n")

    def summary(selected: list[dict]) -> tuple[int, int, float]:
        return (sum(r["covers_truth"] for r in selected), len(selected),
                float(np.median([r["relative_error"] for r in selected])))

    for direction in ("random -> bts (prior)", "random -> bts (week freq.)", "bts -> random"):
        k, n, median = summary([r for r in rows if r["direction"] == direction])
        print(f"{direction}: {k} of {n} intervals cover the on-policy truth; median relative error {median:.3f}")
    k, n, median = summary([r for r in rows if r["direction"] in HEADLINE_DIRECTIONS])
    print(f"OPE on Open Bandit: {k} of {n} intervals cover the on-policy truth; median relative error {median:.3f}")


if __name__ == "__main__":
    main()
