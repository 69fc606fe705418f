"""Off-policy value of a schedule on logged impressions (ml.evaluation.schedule_ope)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.evaluation.ope import estimate_frame
from ml.evaluation.schedule_ope import logged_value, paired_difference, schedule_rounds, target_shares

DAY = pd.Timestamp("2026-11-10")


def logged_day(n_users: int = 300, n_ads: int = 6, per_user: int = 8, seed: int = 0) -> pd.DataFrame:
    """A uniform logging policy over n_ads (propensity 1/n_ads); ad a clicks with probability p[a]."""
    rng = np.random.default_rng(seed)
    n = n_users * per_user
    ad = rng.integers(0, n_ads, n)
    click_rate = np.linspace(0.02, 0.2, n_ads)
    clicked = rng.random(n) < click_rate[ad]
    return pd.DataFrame({
        "impression_id": np.arange(n), "user_key": np.repeat([f"u{i}" for i in range(n_users)], per_user),
        "ad_id": ad + 100, "campaign_id": ad + 10,
        "impression_ts": DAY + pd.to_timedelta(rng.integers(0, 86_400, n), "s"),
        "hour": rng.integers(0, 24, n), "slot": rng.integers(1, 4, n), "bid": 1.0, "bid_type": "cpc",
        "label_click": clicked.astype(int), "label_conversion": 0, "propensity": 1.0 / n_ads,
    }), click_rate


def scored_for(users, ads, value_of_ad) -> pd.DataFrame:
    pairs = pd.MultiIndex.from_product([users, ads], names=["user_key", "ad_id"]).to_frame(index=False)
    return pairs.assign(bid=1.0, bid_type="cpc", pctr=pairs["ad_id"].map(value_of_ad), pcvr=0.0)


def test_value_of_a_logged_impression_is_the_bid_on_its_outcome():
    logged = pd.DataFrame({"bid": [2.0, 2.0, 10.0, 10.0], "bid_type": ["cpc", "cpc", "cpa", "CPA"],
                           "label_click": [1, 0, 1, 1], "label_conversion": [0, 0, 1, 0]})
    np.testing.assert_array_equal(logged_value(logged), [2.0, 0.0, 10.0, 0.0])


def test_target_shares_are_each_ads_share_of_the_users_rows():
    schedule = pd.DataFrame({"user_key": ["a", "a", "a", "b"], "ad_id": [1, 1, 2, 3]})
    shares = target_shares(schedule).set_index(["user_key", "ad_id"])["target_share"]
    assert shares.to_dict() == {("a", 1): pytest.approx(2 / 3), ("a", 2): pytest.approx(1 / 3), ("b", 3): 1.0}


def test_schedule_of_the_best_ad_is_valued_near_its_click_rate():
    logged, click_rate = logged_day()
    users = logged["user_key"].unique()
    schedule = pd.DataFrame({"user_key": users, "ad_id": 105})  # everybody gets the best ad
    # A reward model that is wrong by a factor 2 everywhere: DR must still find the truth.
    scored = scored_for(users, np.arange(100, 106), {a: 2 * click_rate[a - 100] for a in range(100, 106)})
    rounds = schedule_rounds(logged, schedule, scored, pd.Series(np.arange(10, 16), index=np.arange(100, 106)))
    table = estimate_frame(rounds).set_index("estimator")
    assert table.loc["dm", "estimate"] == pytest.approx(0.4)  # the model's (wrong) belief
    for estimator in ("ips", "snips", "dr"):
        row = table.loc[estimator]
        assert row["ci_low"] <= click_rate[5] <= row["ci_high"], (estimator, row.to_dict())
    # Near 1: only opportunities after the ad's last logged impression of the day count as off support.
    assert 0.99 <= table.loc["dr", "support_share"] <= 1.0


def test_users_the_schedule_does_not_serve_are_worth_nothing_to_it():
    logged, _ = logged_day(n_users=10)
    schedule = pd.DataFrame({"user_key": ["u0"], "ad_id": [100]})
    scored = scored_for(["u0"], [100], {100: 0.1})
    rounds = schedule_rounds(logged, schedule, scored, pd.Series([10], index=[100]))
    others = rounds["user_key"] != "u0"
    assert (rounds.loc[others, ["target_probability", "q_target_expected"]] == 0).all().all()
    np.testing.assert_allclose(rounds.loc[~others, "q_target_expected"], 0.1)


def test_ads_of_campaigns_the_logger_had_stopped_serving_are_off_support():
    logged, _ = logged_day(n_users=50)
    last = logged["impression_ts"].max()
    logged = logged[~((logged["campaign_id"] == 15) & (logged["impression_ts"] > DAY + pd.Timedelta(hours=12)))]
    schedule = pd.DataFrame({"user_key": logged["user_key"].unique(), "ad_id": 105})
    scored = scored_for(logged["user_key"].unique(), [105], {105: 0.2})
    rounds = schedule_rounds(logged, schedule, scored, pd.Series(np.arange(10, 16), index=np.arange(100, 106)))
    late = logged.sort_values("impression_id")["impression_ts"].to_numpy() > logged.loc[
        logged["campaign_id"] == 15, "impression_ts"].max()
    assert late.any() and last > DAY
    assert (rounds["target_mass_on_support"].to_numpy()[late] == 0).all()
    assert (rounds["target_mass_on_support"].to_numpy()[~late] == 1).all()


def test_logged_impressions_without_propensities_are_refused():
    logged, _ = logged_day(n_users=5)
    logged.loc[0, "propensity"] = np.nan
    with pytest.raises(ValueError, match="propensity"):
        schedule_rounds(logged, pd.DataFrame({"user_key": ["u0"], "ad_id": [100]}),
                        scored_for(["u0"], [100], {100: 0.1}), pd.Series([10], index=[100]))


def test_paired_difference_separates_a_better_schedule_and_not_an_equal_one():
    logged, click_rate = logged_day(n_users=600)
    users = logged["user_key"].unique()
    scored = scored_for(users, np.arange(100, 106), {a: click_rate[a - 100] for a in range(100, 106)})
    campaigns = pd.Series(np.arange(10, 16), index=np.arange(100, 106))
    best = schedule_rounds(logged, pd.DataFrame({"user_key": users, "ad_id": 105}), scored, campaigns)
    worst = schedule_rounds(logged, pd.DataFrame({"user_key": users, "ad_id": 100}), scored, campaigns)
    better = paired_difference(best, worst)
    assert better["ci_low"] > 0
    assert better["ci_low"] <= click_rate[5] - click_rate[0] <= better["ci_high"]
    same = paired_difference(best, best)
    assert same["difference"] == 0 and same["standard_error"] == 0
