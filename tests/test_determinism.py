"""Same inputs, same outputs: the schedule, its baselines, retrieval and the models do not depend on
the order the warehouse happens to return rows in (DuckDB runs with preserve_insertion_order=false).

Each test feeds the same rows twice, the second time shuffled, and requires identical results. The
markets have tied values on purpose, so a tie broken by position would show.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from ml.allocation.allocator import allocate
from ml.allocation.baselines import oracle_schedule, popularity_schedule, random_schedule
from ml.allocation.candidates import retrieve_candidates
from ml.allocation.config import AllocationConfig
from ml.allocation.fingerprint import schedule_hash
from ml.allocation.synthetic import synthetic_market
from ml.rankers import fit_ranker, split_by_day
from ml.rankers.synthetic import synthetic_impressions

CONFIG = AllocationConfig()


def shuffled(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture(scope="module")
def tied_market():
    """Scores rounded to a few levels, so many options of a user tie on value."""
    market = synthetic_market(n_users=150, n_ads=30, budget_tightness=1.5, seed=5)
    market.candidates["pctr"] = market.candidates["pctr"].round(2).clip(lower=0.01)
    market.candidates["pcvr"] = market.candidates["pcvr"].round(1).clip(lower=0.05)
    return market


SCHEDULERS = {
    "product": lambda m, c, ch, uh: allocate(c, ch, uh, m.schedule_date, CONFIG),
    "random": lambda m, c, ch, uh: random_schedule(c, ch, uh, m.schedule_date, CONFIG),
    "popularity": lambda m, c, ch, uh: popularity_schedule(c, ch, uh, m.schedule_date, CONFIG),
    "oracle": lambda m, c, ch, uh: oracle_schedule(c, c["pctr"] * 1.1, c["pcvr"], ch, uh, m.schedule_date, CONFIG),
}


@pytest.mark.parametrize("policy", list(SCHEDULERS))
def test_schedules_do_not_depend_on_input_order(tied_market, policy):
    schedule = SCHEDULERS[policy]
    m = tied_market
    first = schedule(m, m.candidates, m.campaigns, m.user_hours)
    for seed in (1, 2):
        again = schedule(m, shuffled(m.candidates, seed), shuffled(m.campaigns, seed), shuffled(m.user_hours, seed))
        assert_frame_equal(again.schedule, first.schedule)
        assert schedule_hash(again.schedule) == schedule_hash(first.schedule)
    assert len(first.schedule) > 0


def test_schedule_hash_sees_any_change_and_ignores_row_order(tied_market):
    schedule = allocate(tied_market.candidates, tied_market.campaigns, tied_market.user_hours,
                        tied_market.schedule_date, CONFIG).schedule
    assert schedule_hash(shuffled(schedule, 3)) == schedule_hash(schedule)
    nudged = schedule.copy()
    nudged.loc[0, "pctr"] = np.nextafter(nudged.loc[0, "pctr"], 1.0)  # one ulp on one score
    assert schedule_hash(nudged) != schedule_hash(schedule)
    assert len(schedule_hash(schedule)) == 16


def test_retrieval_does_not_depend_on_input_order():
    rng = np.random.default_rng(0)
    # 3-d embeddings on a coarse grid: many exact ties in cosine similarity.
    users = pd.DataFrame({"user_key": [f"u{i:03d}" for i in range(120)],
                          "embedding": list(rng.integers(-1, 2, (120, 3)).astype(np.float32))})
    ads = pd.DataFrame({"ad_id": np.arange(1, 61), "embedding": list(rng.integers(-1, 2, (60, 3)).astype(np.float32))})
    stats = pd.DataFrame({"ad_id": ads["ad_id"], "impressions_7d": rng.integers(0, 50, 60), "ad_age_days": 30})
    config = AllocationConfig(candidates_per_user=10, exploration_per_user=3)
    first = retrieve_candidates(users, ads, ads, config, stats)
    again = retrieve_candidates(shuffled(users, 1), shuffled(ads, 2), shuffled(ads, 3), config, shuffled(stats, 4))
    assert_frame_equal(again, first)
    assert (first["source"] == "exploration").any()


def test_ranker_does_not_depend_on_input_order():
    impressions = synthetic_impressions(n_impressions=6_000, n_users=300, n_ads=40, n_days=4, seed=3)
    train, valid, test = split_by_day(impressions, test_date=dt.date(2026, 11, 4), validation_date=dt.date(2026, 11, 3))
    first = fit_ranker(train, valid, "ctr", use_encoder_features=False)
    again = fit_ranker(shuffled(train, 1), shuffled(valid, 2), "ctr", use_encoder_features=False)
    assert again.booster.model_to_string() == first.booster.model_to_string()
    np.testing.assert_array_equal(again.predict(test), first.predict(test))
