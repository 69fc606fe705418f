"""The allocator on random instances with binding budgets: constraints, LP ratio, duals vs naive."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ml.allocation.allocator import SCHEDULE_COLUMNS, allocate
from ml.allocation.config import AllocationConfig
from ml.allocation.constraints import validate_schedule
from ml.allocation.lp_bound import lp_upper_bound
from ml.allocation.synthetic import synthetic_market

CONFIG = AllocationConfig()


@pytest.fixture(scope="module", params=[0, 1, 2, 3])
def binding_market(request):
    """200 users x 40 ads where the LP says most budgets bind."""
    market = synthetic_market(n_users=200, n_ads=40, budget_tightness=2.0, seed=request.param)
    lp = lp_upper_bound(market.candidates, market.campaigns, market.schedule_date, CONFIG)
    assert (lp.budget_duals > 1e-6).sum() >= 6, "instance should have binding budgets"
    result = allocate(market.candidates, market.campaigns, market.user_hours, market.schedule_date, CONFIG)
    return market, lp, result


def test_schedule_satisfies_every_rule(binding_market):
    market, _, result = binding_market
    violations = validate_schedule(result.schedule, market.campaigns, CONFIG, result.pacing_plan, market.candidates)
    assert violations.empty, violations.head(10).to_string()
    assert list(result.schedule.columns) == SCHEDULE_COLUMNS
    spend = result.schedule.groupby("campaign_id")["expected_cost"].sum()
    budgets = market.campaigns.set_index("campaign_id")["daily_budget"]
    assert (spend <= budgets.reindex(spend.index)).all()


def test_value_is_within_two_percent_of_the_lp_bound(binding_market):
    _, lp, result = binding_market
    assert result.total_value <= lp.value * (1 + 1e-6)  # the LP is an upper bound
    assert result.total_value >= 0.98 * lp.value, result.total_value / lp.value


def test_dual_prices_beat_the_naive_greedy_when_budgets_bind(binding_market):
    market, _, dual = binding_market
    naive = allocate(market.candidates, market.campaigns, market.user_hours, market.schedule_date, CONFIG,
                     use_dual_prices=False)
    assert dual.total_value > naive.total_value
    assert dual.diagnostics["dual_prices"]["dual_price"].gt(0).any()
    assert naive.diagnostics["dual_prices"]["dual_price"].eq(0).all()


def test_diagnostics_report_prices_utilisation_and_hourly_spend(binding_market):
    market, _, result = binding_market
    d = result.diagnostics
    assert d["dual_iterations"] >= 1
    util = d["budget_utilisation"]
    assert set(util["campaign_id"]) == set(market.campaigns["campaign_id"])
    assert (util["utilisation"] <= 1 + 1e-9).all()
    assert util["utilisation"].max() > 0.95  # binding campaigns are spent out
    by_hour = d["spend_by_hour"]
    assert len(by_hour) == 24 and by_hour["planned_spend"].sum() == pytest.approx(market.campaigns["daily_budget"].sum())
    assert by_hour["expected_spend"].sum() == pytest.approx(result.schedule["expected_cost"].sum())


def test_every_user_is_covered_and_slots_follow_activity():
    market = synthetic_market(n_users=150, n_ads=30, budget_tightness=1.0, seed=7)
    result = allocate(market.candidates, market.campaigns, market.user_hours, market.schedule_date, CONFIG)
    assert set(result.schedule["user_key"]) == set(market.candidates["user_key"])
    active = market.user_hours.set_index(["user_key", "hour"]).index
    scheduled = pd.MultiIndex.from_frame(result.schedule[["user_key", "hour"]])
    assert scheduled.isin(active).all(), "an ad was placed in an hour the user is not active"
    assert result.schedule["slot"].between(1, CONFIG.slots_per_user).all()
    assert result.schedule["reason"].str.startswith(("matched interest", "exploration")).all()


def test_flight_dates_and_zero_budgets_are_respected():
    market = synthetic_market(n_users=100, n_ads=30, budget_tightness=3.0, seed=3)
    campaigns = market.campaigns.copy()
    day = market.schedule_date
    campaigns.loc[campaigns["campaign_id"] == 1, ["start_date", "end_date"]] = [day + dt.timedelta(days=1), day + dt.timedelta(days=9)]
    campaigns.loc[campaigns["campaign_id"] == 2, ["start_date", "end_date"]] = [day - dt.timedelta(days=9), day - dt.timedelta(days=1)]
    campaigns.loc[campaigns["campaign_id"] == 3, "end_date"] = day  # last day still runs
    campaigns.loc[campaigns["campaign_id"] == 4, "daily_budget"] = 0.0
    result = allocate(market.candidates, campaigns, market.user_hours, day, CONFIG)
    served = set(result.schedule["campaign_id"])
    assert not served & {1, 2, 4}
    assert 3 in served
    assert validate_schedule(result.schedule, campaigns, CONFIG, result.pacing_plan, market.candidates).empty


def test_frequency_caps_above_one_allow_repeat_impressions():
    config = AllocationConfig(max_impressions_per_user_ad=2, max_impressions_per_user_campaign=3,
                              max_ads_per_advertiser_per_user=3)
    market = synthetic_market(n_users=80, n_ads=8, n_campaigns=4, n_advertisers=2, budget_tightness=50.0, seed=5)
    result = allocate(market.candidates, market.campaigns, market.user_hours, market.schedule_date, config)
    per_user_ad = result.schedule.groupby(["user_key", "ad_id"]).size()
    assert per_user_ad.max() == 2
    assert validate_schedule(result.schedule, market.campaigns, config, result.pacing_plan, market.candidates).empty


def test_same_seed_same_schedule():
    market = synthetic_market(n_users=60, n_ads=20, seed=11)
    first = allocate(market.candidates, market.campaigns, market.user_hours, market.schedule_date, CONFIG)
    second = allocate(market.candidates, market.campaigns, market.user_hours, market.schedule_date, CONFIG)
    pd.testing.assert_frame_equal(first.schedule, second.schedule)


def test_hourly_traffic_given_by_caller_sets_the_plan():
    market = synthetic_market(n_users=60, n_ads=20, seed=2)
    traffic = pd.DataFrame({"hour": np.arange(24), "share": np.ones(24)})
    result = allocate(market.candidates, market.campaigns, market.user_hours, market.schedule_date, CONFIG,
                      hourly_traffic=traffic)
    plan = result.pacing_plan
    first = plan[plan["campaign_id"] == 1]["planned_spend"]
    assert np.allclose(first, market.campaigns.loc[0, "daily_budget"] / 24)
    assert validate_schedule(result.schedule, market.campaigns, CONFIG, plan).empty
