"""Value under true probabilities, baselines under the same constraints, reasons, plots, pacing."""
import numpy as np
import pandas as pd
import pytest

from ml.allocation.allocator import allocate
from ml.allocation.baselines import oracle_schedule, popularity_schedule, random_schedule
from ml.allocation.config import AllocationConfig
from ml.allocation.constraints import validate_schedule
from ml.allocation.pacing import cumulative_spend_caps, pacing_plan, slot_hours
from ml.allocation.plots import plot_budget_utilisation, plot_spend_by_hour, plot_user_schedule
from ml.allocation.reasons import build_reasons
from ml.allocation.synthetic import synthetic_market
from ml.allocation.value import expected_value, schedule_value

CONFIG = AllocationConfig()


def test_expected_value_by_bid_type():
    got = expected_value([2.0, 10.0], ["cpc", "CPA"], [0.1, 0.1], [0.5, 0.5])
    assert np.allclose(got, [0.2, 0.5])
    with pytest.raises(ValueError, match="bid_type"):
        expected_value([1.0], ["cpm"], [0.1], [0.1])


def test_schedule_value_uses_the_true_probabilities_given():
    schedule = pd.DataFrame({"campaign_id": [1, 1, 2], "bid": [1.0, 1.0, 10.0], "bid_type": ["cpc", "cpc", "cpa"]})
    value = schedule_value(schedule, [0.5, 0.5, 0.2], [0.0, 0.0, 0.5], daily_budget_by_campaign=pd.Series({1: 0.6, 2: 5.0}))
    assert value["expected_clicks"] == pytest.approx(1.2)
    assert value["expected_conversions"] == pytest.approx(0.1)
    assert value["advertiser_value"] == pytest.approx(2.0) and value["spend"] == pytest.approx(2.0)
    assert value["capped_spend"] == pytest.approx(1.6)


def test_baselines_obey_the_same_rules_and_oracle_wins_on_true_value():
    market = synthetic_market(n_users=150, n_ads=30, budget_tightness=3.0, seed=8)
    rng = np.random.default_rng(0)
    # Truth = predictions distorted by noise; the predictions the allocator sees are then imperfect.
    true_pctr = np.clip(market.candidates["pctr"] * rng.lognormal(0, 0.6, len(market.candidates)), 0, 1)
    true_pcvr = market.candidates["pcvr"].to_numpy()
    truth = market.candidates[["user_key", "ad_id"]].assign(true_pctr=true_pctr, true_pcvr=true_pcvr)
    results = {
        "model": allocate(market.candidates, market.campaigns, market.user_hours, market.schedule_date, CONFIG),
        "random": random_schedule(market.candidates, market.campaigns, market.user_hours, market.schedule_date, CONFIG),
        "popularity": popularity_schedule(market.candidates, market.campaigns, market.user_hours, market.schedule_date, CONFIG),
        "oracle": oracle_schedule(market.candidates, true_pctr, true_pcvr, market.campaigns, market.user_hours,
                                  market.schedule_date, CONFIG),
    }
    budgets = market.campaigns.set_index("campaign_id")["daily_budget"]
    true_value = {}
    for name, result in results.items():
        assert validate_schedule(result.schedule, market.campaigns, CONFIG, result.pacing_plan, market.candidates).empty, name
        scored = result.schedule.merge(truth, on=["user_key", "ad_id"], how="left")
        true_value[name] = schedule_value(scored, scored["true_pctr"], scored["true_pcvr"],
                                          daily_budget_by_campaign=budgets)["capped_spend"]
    assert true_value["oracle"] >= max(true_value["random"], true_value["popularity"])
    assert true_value["model"] > true_value["random"]


def test_reasons_use_explanation_columns():
    rows = pd.DataFrame({"source": ["interest", "exploration", "interest"], "category_id": [12, 3, None],
                         "top1_feature": ["user_category_events_7d", "ad_age_days", None],
                         "top2_feature": ["ad_ctr_7d", None, None]})
    assert list(build_reasons(rows)) == [
        "matched interest: category 12; top features: user_category_events_7d, ad_ctr_7d",
        "exploration: fresh or under-delivered ad; top features: ad_age_days",
        "matched interest",
    ]
    assert build_reasons(pd.DataFrame({"explanation": ["bid 2.0 +0.3"]}))[0] == "matched interest; why: bid 2.0 +0.3"


def test_slots_fill_most_active_hours_first():
    user_hours = pd.DataFrame({"user_key": ["a", "a", "b"], "hour": [9, 20, 13], "share": [0.3, 0.7, 1.0]})
    hours = slot_hours(user_hours, ["a", "b", "c"], AllocationConfig(slots_per_user=3))
    assert hours[0].tolist() == [20, 9, 20]
    assert hours[1].tolist() == [13, 13, 13]
    assert hours[2].tolist() == [13, 20, 9]  # no profile: the platform's busiest hours


def test_cumulative_caps_carry_unspent_budget_forward():
    campaigns = pd.DataFrame({"campaign_id": [1], "daily_budget": [100.0]})
    share = pd.Series(np.r_[np.zeros(12), np.full(12, 1 / 12)])
    caps = cumulative_spend_caps(pacing_plan(campaigns, share), [1], [100.0], 0.1)
    assert caps[0, 11] == 0.0
    assert caps[0, 12] == pytest.approx(100 / 12 * 1.1)
    assert caps[0, 22] == 100.0 and caps[0, 23] == 100.0  # never above the budget


def test_plots_write_pngs(tmp_path):
    market = synthetic_market(n_users=40, n_ads=15, seed=1)
    result = allocate(market.candidates, market.campaigns, market.user_hours, market.schedule_date, CONFIG)
    paths = [
        plot_budget_utilisation(result.diagnostics["budget_utilisation"], tmp_path / "budget.png"),
        plot_spend_by_hour(result.diagnostics["spend_by_hour"], tmp_path / "hours.png"),
        plot_user_schedule(result.schedule, result.schedule["user_key"].iloc[0], tmp_path / "user.png"),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
