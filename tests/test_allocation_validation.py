"""validate_schedule catches each planted violation and passes a clean schedule."""
import datetime as dt

import pandas as pd
import pytest

from ml.allocation.allocator import allocate
from ml.allocation.config import AllocationConfig
from ml.allocation.constraints import validate_schedule
from ml.allocation.synthetic import synthetic_market

CONFIG = AllocationConfig()


@pytest.fixture(scope="module")
def clean():
    market = synthetic_market(n_users=120, n_ads=30, budget_tightness=1.5, seed=4)
    result = allocate(market.candidates, market.campaigns, market.user_hours, market.schedule_date, CONFIG)
    assert validate_schedule(result.schedule, market.campaigns, CONFIG, result.pacing_plan, market.candidates).empty
    return market, result


def _rules(schedule, market, plan, campaigns=None, candidates=None):
    found = validate_schedule(schedule, market.campaigns if campaigns is None else campaigns, CONFIG, plan,
                              market.candidates if candidates is None else candidates)
    return set(found["rule"])


def test_overspent_budget(clean):
    market, result = clean
    campaigns = market.campaigns.copy()
    top = result.schedule["campaign_id"].value_counts().index[0]
    campaigns.loc[campaigns["campaign_id"] == top, "daily_budget"] *= 0.5
    assert "budget" in _rules(result.schedule, market, None, campaigns=campaigns)


def test_repeated_user_ad_and_campaign_and_advertiser(clean):
    market, result = clean
    row = result.schedule.iloc[[0]]
    doubled = pd.concat([result.schedule, row.assign(slot=99), row.assign(slot=98)], ignore_index=True)
    rules = _rules(doubled, market, None)
    assert {"user_ad_cap", "user_campaign_cap", "advertiser_diversity"} <= rules


def test_too_many_ads_for_one_user(clean):
    market, result = clean
    user = result.schedule["user_key"].iloc[0]
    extra = result.schedule[result.schedule["user_key"] != user].drop_duplicates("campaign_id").head(5)
    extra = extra.assign(user_key=user, slot=range(10, 10 + len(extra)))
    assert "slots_per_user" in _rules(pd.concat([result.schedule, extra], ignore_index=True), market, None)


def test_outside_flight_dates(clean):
    market, result = clean
    campaigns = market.campaigns.copy()
    first = result.schedule["campaign_id"].iloc[0]
    campaigns.loc[campaigns["campaign_id"] == first, "end_date"] = market.schedule_date - dt.timedelta(days=1)
    found = validate_schedule(result.schedule, campaigns, CONFIG, None)
    assert set(found.loc[found["rule"] == "flight_dates", "campaign_id"]) == {first}


def test_pacing_run_ahead_of_plan(clean):
    market, result = clean
    schedule = result.schedule.copy()
    campaign = schedule["campaign_id"].value_counts().index[0]
    schedule.loc[schedule["campaign_id"] == campaign, "hour"] = 0  # everything at midnight
    found = validate_schedule(schedule, market.campaigns, CONFIG, result.pacing_plan)
    assert campaign in set(found.loc[found["rule"] == "pacing", "campaign_id"])


def test_uncovered_user(clean):
    market, result = clean
    dropped = result.schedule["user_key"].iloc[0]
    found = validate_schedule(result.schedule[result.schedule["user_key"] != dropped], market.campaigns, CONFIG,
                              result.pacing_plan, market.candidates)
    assert list(found.loc[found["rule"] == "coverage", "user_key"]) == [dropped]
