"""The fairness report's arithmetic on data with a planted gap and without one."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ml.evaluation.fairness import advertiser_delivery, group_gaps, largest_gaps, per_user, schedule_fairness


def _audience(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"user_key": [f"u{i}" for i in range(n)],
                         "gender": rng.choice(["F", "M"], n), "age_band": rng.choice(["18-24", "25-34", "35+"], n),
                         "city_tier": rng.choice([1, 2, 3], n)})


def _schedule(audience: pd.DataFrame, women_extra: float, seed: int = 1) -> pd.DataFrame:
    """Ads per user ~ Poisson(4), women get `women_extra` more on average."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(4 + women_extra * (audience["gender"] == "F").to_numpy())
    users = np.repeat(audience["user_key"].to_numpy(), counts)
    n = len(users)
    return pd.DataFrame({"user_key": users, "ad_id": rng.integers(1, 50, n), "campaign_id": rng.integers(1, 9, n),
                         "advertiser_id": rng.integers(1, 4, n), "pctr": rng.uniform(0.01, 0.1, n),
                         "pcvr": np.nan, "expected_value": rng.uniform(0.1, 1, n), "expected_cost": 0.1})


def test_a_planted_gap_is_found_with_an_interval_that_excludes_parity():
    audience = _audience(4000)
    gaps = schedule_fairness(_schedule(audience, women_extra=2.0), audience, restricted_campaigns={3})
    women = gaps.query("group == 'gender' and level == 'F' and metric == 'impressions'").iloc[0]
    assert women["ci_low"] > 1.0 and 1.15 < women["ratio_to_overall"] < 1.35  # 6 vs 5 on average: 1.2
    assert set(largest_gaps(gaps)["group"]) == {"gender"}
    # Age and city were not planted: their intervals hold parity.
    unplanted = gaps.query("group != 'gender' and metric == 'impressions'")
    assert ((unplanted["ci_low"] < 1) & (unplanted["ci_high"] > 1)).all()
    # Restricted delivery: campaign 3's impressions by group, against each group's share of users.
    assert "restricted_impressions" in set(gaps["metric"])


def test_no_gap_holds_parity_and_users_without_ads_count_as_zero():
    audience = _audience(3000)
    schedule = _schedule(audience, women_extra=0.0)
    gaps = group_gaps(per_user(audience, schedule, {"impressions": pd.Series(1.0, index=schedule.index)}),
                      ["impressions"])
    assert ((gaps["ci_low"] < 1) & (gaps["ci_high"] > 1)).all()
    # A user with no scheduled ad is in the audience with zero impressions, not dropped.
    users = per_user(audience, schedule.iloc[:10], {"impressions": pd.Series(1.0, index=schedule.index[:10])})
    assert len(users) == 3000 and users["impressions"].sum() == 10


def test_advertiser_delivery_compares_shares_of_impressions_and_budget():
    schedule = pd.DataFrame({"advertiser_id": [1, 1, 1, 2], "ad_id": [1, 2, 3, 4], "expected_cost": [1.0] * 4})
    campaigns = pd.DataFrame({"advertiser_id": [1, 2, 3], "daily_budget": [50.0, 25.0, 25.0]})
    table = advertiser_delivery(schedule, campaigns).set_index("advertiser_id")
    assert table.loc[1, "impressions_per_budget_share"] == 1.5  # 75% of impressions for 50% of budget
    assert table.loc[3, "impression_share"] == 0 and table.loc[3, "budget_share"] == 0.25
