"""A synthetic creative bandit: one ad, one segment, K creatives of known CTR, Thompson sampling with
batched updates as the daily schedule makes them (the whole batch is chosen from yesterday's counts)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ml.creatives.report import regret_curve
from ml.creatives.selector import ALL_SEGMENTS, CREATIVE_STATS_COLUMNS, DEFAULT_PRIOR_STRENGTH, ThompsonSelector

BANDIT_AD = 0
BANDIT_SEGMENT = "everyone"


def simulate_bandit(true_ctr: np.ndarray, rounds: int, batch: int, seed: int,
                    prior_strength: float = DEFAULT_PRIOR_STRENGTH) -> dict:
    """Run `rounds` rounds of `batch` impressions; creatives are 0..K-1, clicks Bernoulli(true_ctr).

    Returns a dict of arrays, one entry per impression unless said:
    - chosen: creative shown; probability: its logged selection probability; clicked; round;
    - cumulative_regret: expected regret against always showing the best creative (`regret_curve`);
    - learned_ctr (K): the final selector's posterior mean per creative, after the last round's clicks;
    - impressions, clicks (K): the final counts per creative;
    - selector: that final ThompsonSelector.
    """
    true_ctr = np.asarray(true_ctr, dtype=float)
    if true_ctr.ndim != 1 or len(true_ctr) == 0 or ((true_ctr < 0) | (true_ctr > 1)).any():
        raise ValueError("true_ctr must be a non-empty 1-D array of probabilities")
    if rounds < 1 or batch < 1:
        raise ValueError(f"rounds and batch must be >= 1, got {rounds} and {batch}")
    rng = np.random.default_rng(seed)
    arms = len(true_ctr)
    catalog = pd.DataFrame({"ad_id": np.full(arms, BANDIT_AD), "creative_id": np.arange(arms)})
    impressions = np.zeros(arms, dtype=np.int64)
    clicks = np.zeros(arms, dtype=np.int64)
    chosen = np.empty(rounds * batch, dtype=np.int64)
    probability = np.empty(rounds * batch)
    clicked = np.empty(rounds * batch, dtype=bool)
    slots = np.full(batch, BANDIT_AD)
    for day in range(rounds):
        selector = ThompsonSelector(_stats(impressions, clicks), catalog, prior_strength=prior_strength)
        picks = selector.choose(slots, BANDIT_SEGMENT, rng)
        arm = picks["creative_id"].to_numpy(dtype=np.int64)
        click = rng.random(batch) < true_ctr[arm]
        impressions += np.bincount(arm, minlength=arms)
        clicks += np.bincount(arm, weights=click, minlength=arms).astype(np.int64)
        done = slice(day * batch, (day + 1) * batch)
        chosen[done], probability[done], clicked[done] = arm, picks["probability"].to_numpy(float), click
    final = ThompsonSelector(_stats(impressions, clicks), catalog, prior_strength=prior_strength)
    means = final.posterior_means()
    ad_level = means[means["segment"] == ALL_SEGMENTS]  # the ad-level rows: the one segment's counts
    return {
        "chosen": chosen,
        "probability": probability,
        "clicked": clicked,
        "round": np.repeat(np.arange(rounds), batch),
        "cumulative_regret": regret_curve(true_ctr[chosen], true_ctr.max())["cumulative_regret"].to_numpy(),
        "learned_ctr": ad_level.set_index("creative_id")["learned_ctr"].reindex(np.arange(arms)).to_numpy(float),
        "impressions": impressions,
        "clicks": clicks,
        "selector": final,
    }


def _stats(impressions: np.ndarray, clicks: np.ndarray) -> pd.DataFrame:
    arms = len(impressions)
    return pd.DataFrame({"ad_id": np.full(arms, BANDIT_AD), "segment": np.full(arms, BANDIT_SEGMENT, dtype=object),
                         "creative_id": np.arange(arms), "impressions": impressions,
                         "clicks": clicks})[CREATIVE_STATS_COLUMNS]
