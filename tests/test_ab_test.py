"""The simulated A/B test and its readout: a user-level split, budgets split by traffic, the schedule
served as the off-policy target reads it, the day landing for the closed loop, honest intervals."""
from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.evaluation.ab_readout import arm_table, lift_table, per_user_totals
from ml.simulator import GroundTruth, SimulationConfig, simulate
from ml.simulator.ab_test import (SchedulePolicy, load_served_day, save_served_day, serve_ab_day, served_day_dir,
                                  treatment_users)
from ml.simulator.closed_loop import land_served_day
from ml.simulator.continuation import Continuation
from ml.simulator.world import World

TINY = SimulationConfig(n_users=600, n_ads=40, n_campaigns=10, n_advertisers=5, n_days=4, n_categories=12,
                        n_brands=40, n_items=600, seed=11)


@pytest.fixture()
def simulated(tmp_path):
    simulate(TINY, tmp_path, progress=False)
    return tmp_path, GroundTruth.load(tmp_path / "ground_truth")


def in_flight_schedule(world: World, ads_per_user: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every user gets `ads_per_user` distinct ads of campaigns in flight on the next day."""
    rng = np.random.default_rng(seed)
    live_ads = np.flatnonzero(world.campaign_active(world.config.n_days)[world.ad_campaign])
    users = np.repeat(np.arange(world.n_users), ads_per_user)
    ads = np.concatenate([rng.choice(live_ads, ads_per_user, replace=False) for _ in range(world.n_users)])
    return users, ads


def test_the_simulation_leaves_a_continuation_with_the_conversions_still_to_land(simulated):
    root, truth = simulated
    state = Continuation.load(root / "ground_truth")
    assert state.next_day_index == TINY.n_days
    assert state.pending and min(state.pending) >= TINY.n_days
    landed = pd.concat([pd.read_parquet(p) for p in (root / "landing" / "ad_events").glob("*/*.parquet")])
    assert state.next_event_id > landed["event_id"].max()


def test_arms_split_users_once_and_budgets_by_traffic(simulated):
    root, truth = simulated
    world = truth.world
    served = serve_ab_day(world, Continuation.load(root / "ground_truth"), *in_flight_schedule(world),
                          treatment_share=0.3)
    treated = treatment_users(world, 0.3)
    assert np.array_equal(treated, treatment_users(world, 0.3))  # the same users every day
    user_arm = served.users.set_index("user_id")["arm"]
    expected = pd.Series(np.where(treated, "treatment", "control"), index=World.ids("user", np.arange(world.n_users)))
    assert (user_arm == expected.reindex(user_arm.index)).all()
    assert (served.impressions["arm"].to_numpy() == user_arm.reindex(served.impressions["user_id"]).to_numpy()).all()

    budgets = served.campaigns.pivot(index="campaign_id", columns="arm", values="budget")
    in_flight = np.where(world.campaign_active(TINY.n_days), world.campaign_daily_budget, 0.0)
    assert np.allclose(budgets["treatment"], 0.3 * in_flight) and np.allclose(budgets["control"], 0.7 * in_flight)
    # Pacing stops an arm's campaign once its share is spent; the overshoot is one 15-minute block's
    # charges at most (here ~35 opportunities a block over 10 campaigns: far fewer than 10 charges).
    spend = served.campaigns.pivot(index="campaign_id", columns="arm", values="spend")
    for arm in ("control", "treatment"):
        assert (spend[arm] <= budgets[arm] + 10 * world.campaign_bid).all()
    assert (spend["control"] > 0).any() and (spend["treatment"] > 0).any()


def test_treatment_serves_each_users_scheduled_ads_in_proportion_to_their_rows(simulated):
    root, truth = simulated
    world = truth.world
    users, ads = in_flight_schedule(world, ads_per_user=2)
    ads[1::2] = ads[0::2]  # one ad per user, scheduled twice ...
    users = np.concatenate([users, np.arange(world.n_users)])  # ... plus a third row with another ad
    live_ads = np.flatnonzero(world.campaign_active(TINY.n_days)[world.ad_campaign])
    other = np.array([live_ads[live_ads != a][0] for a in ads[0::2]])
    ads = np.concatenate([ads, other])
    served = serve_ab_day(world, Continuation.load(root / "ground_truth"), users, ads)
    treatment = served.impressions[served.impressions["arm"] == "treatment"]
    scheduled = pd.DataFrame({"user_id": World.ids("user", users), "ad_id": World.ids("ad", ads)})
    from_schedule = treatment.merge(scheduled.drop_duplicates(), on=["user_id", "ad_id"], how="left",
                                    indicator=True)["_merge"].eq("both").to_numpy()
    assert from_schedule.mean() == pytest.approx(1 - served.treatment_fallback_share, abs=0.02)
    # While both campaigns have budget, the twice-scheduled ad is shown with probability 2/3.
    shown = treatment[from_schedule]
    assert set(np.round(shown["propensity"], 6)) <= {round(2 / 3, 6), round(1 / 3, 6), 1.0}
    twice = shown["ad_id"].to_numpy() == World.ids("ad", ads[0::2])[shown["user_id"].to_numpy() - World.ids("user", 0)]
    assert twice.mean() == pytest.approx(2 / 3, abs=0.06)


def test_a_schedule_of_spent_or_finished_campaigns_falls_back_to_the_logging_policy(simulated):
    root, truth = simulated
    world = truth.world
    finished = np.flatnonzero(~world.campaign_active(TINY.n_days)[world.ad_campaign])
    assert len(finished), "the tiny world should have a campaign that ended"
    users = np.arange(world.n_users)
    served = serve_ab_day(world, Continuation.load(root / "ground_truth"), users, np.full(len(users), finished[0]))
    assert served.treatment_fallback_share == 1.0
    assert not served.impressions["ad_id"].isin(World.ids("ad", finished)).any()


def test_schedule_policy_draws_only_eligible_scheduled_ads(simulated):
    _, truth = simulated
    world = truth.world
    policy = SchedulePolicy(world, np.array([0, 0, 0]), np.array([1, 2, 2]))
    eligible = np.ones(world.n_ads, dtype=bool)
    eligible[2] = False
    chosen, propensity = policy(world, np.full((50, world.n_categories), 1 / world.n_categories), np.zeros(50, int),
                                eligible, np.random.default_rng(0))
    assert (chosen == 1).all() and (propensity == 1.0).all() and policy.fallback_opportunities == 0


def test_a_served_day_is_reproducible_lands_once_and_the_next_continues_from_it(simulated):
    root, truth = simulated
    world = truth.world
    schedule = in_flight_schedule(world)
    state = Continuation.load(root / "ground_truth")
    first, again = serve_ab_day(world, state, *schedule), serve_ab_day(world, state, *schedule)
    pd.testing.assert_frame_equal(first.impressions, again.impressions)
    directory = save_served_day(first, served_day_dir(root, first.day))
    reloaded = load_served_day(directory)
    pd.testing.assert_frame_equal(reloaded.impressions, first.impressions)

    assert land_served_day(root, directory) == TINY.end_date + dt.timedelta(days=1)
    with pytest.raises(ValueError, match="next day is"):
        land_served_day(root, directory)
    ad_events = duckdb.sql(f"select * from read_parquet('{root}/landing/ad_events/date={first.day}/*.parquet')").df()
    impressions = ad_events[ad_events["event_type"] == "impression"]
    assert len(impressions) and impressions["propensity"].between(0, 1, inclusive="right").all()
    assert ad_events.loc[ad_events["event_type"] != "impression", "propensity"].isna().all()
    assert ad_events["event_id"].is_unique and impressions["event_id"].min() >= state.next_event_id
    for table in ("users", "campaigns", "ads", "behavior_events"):
        assert list((root / "landing" / table).glob(f"date={first.day}/part-0.parquet")), table
    # The ground truth knows the new day's impressions (oracle AUC on closed-loop days).
    assert set(first.truth["impression_id"]) <= set(GroundTruth.load(root / "ground_truth").impressions()["impression_id"])

    following = serve_ab_day(world, Continuation.load(root / "ground_truth"), *schedule)
    assert following.day == first.day + dt.timedelta(days=1)
    next_events = following.landing["ad_events"].to_pandas()
    new_impressions = next_events[next_events["event_type"] == "impression"]
    assert new_impressions["event_id"].min() > ad_events["event_id"].max()  # late conversions keep their older ids


# ---- the readout --------------------------------------------------------------------------------

def synthetic_test(rng: np.random.Generator, n_users: int, lift: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Users with Poisson opportunities; each impression's value is Bernoulli(p) x 2, p = 0.05 (+ lift/2
    for treatment), and a per-user propensity to click so a user's impressions are correlated."""
    arm = np.where(rng.random(n_users) < 0.5, "treatment", "control")
    opportunities = rng.poisson(6, n_users)
    user_rate = np.clip(0.05 + np.where(arm == "treatment", lift / 2, 0.0) + rng.normal(0, 0.03, n_users), 0, 1)
    user_of_row = np.repeat(np.arange(n_users), opportunities)
    clicks = (rng.random(len(user_of_row)) < user_rate[user_of_row]).astype(int)
    impressions = pd.DataFrame({"arm": arm[user_of_row], "user_id": user_of_row, "campaign_id": 1, "clicks": clicks,
                                "conversions": 0, "value": 2.0 * clicks})
    users = pd.DataFrame({"user_id": np.arange(n_users), "arm": arm, "opportunities": opportunities})
    return impressions, users


def test_lift_intervals_cover_the_true_lift_at_their_nominal_rate():
    rng = np.random.default_rng(5)
    true_lift_per_opportunity = 0.02  # value 2 x rate difference 0.01
    covered = 0
    replications = 300
    for _ in range(replications):
        impressions, users = synthetic_test(rng, 600, lift=0.02)
        row = lift_table(impressions, users).set_index("metric").loc["value per opportunity"]
        covered += row["ci_low"] <= true_lift_per_opportunity <= row["ci_high"]
    assert 0.91 <= covered / replications <= 0.99


def test_a_null_test_is_rarely_significant_and_a_large_effect_is_found():
    rng = np.random.default_rng(9)
    false_alarms = sum(lift_table(*synthetic_test(rng, 800, lift=0.0)).set_index("metric").loc[
        "value per user", "significant"] for _ in range(200))
    assert false_alarms / 200 <= 0.09
    strong = lift_table(*synthetic_test(rng, 4000, lift=0.06)).set_index("metric")
    assert strong.loc["value per user", "significant"] and strong.loc["value per user", "lift"] > 0
    assert strong.loc["value per user", "relative_ci_low"] > 0


def test_users_without_impressions_count_and_bad_inputs_are_refused():
    impressions = pd.DataFrame({"arm": ["control"], "user_id": [1], "campaign_id": [5], "clicks": [1],
                                "conversions": [0], "value": [3.0]})
    users = pd.DataFrame({"user_id": [1, 2, 3], "arm": ["control", "control", "treatment"],
                          "opportunities": [2, 1, 4]})
    totals = per_user_totals(impressions, users).set_index("user_id")
    assert totals.loc[2, "value"] == 0 and totals.loc[3, "impressions"] == 0
    campaigns = pd.DataFrame({"campaign_id": [5, 5], "arm": ["control", "treatment"], "budget": [4.0, 4.0],
                              "spend": [3.0, 0.0]})
    arms = arm_table(impressions, users, campaigns).set_index("arm")
    assert arms.loc["control", "value_per_user"] == pytest.approx(1.5)
    assert arms.loc["control", "pacing_error"] == pytest.approx(0.25)
    assert arms.loc["treatment", "pacing_error"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="twice"):
        per_user_totals(impressions, pd.concat([users, users.iloc[:1]]))
    with pytest.raises(ValueError, match="not in the test's users"):
        per_user_totals(impressions.assign(user_id=9), users)
    with pytest.raises(ValueError, match="unknown arms"):
        per_user_totals(impressions.assign(arm="B"), users)


def test_treatment_shows_the_creative_the_schedule_drew_and_logs_its_probability(simulated):
    root, truth = simulated
    world = truth.world
    users, ads = in_flight_schedule(world)
    first, count = world.creative_ranges()
    planned = np.where(count[ads] > 0, first[ads] + (users % np.maximum(count[ads], 1)), -1)
    served = serve_ab_day(world, Continuation.load(root / "ground_truth"), users, ads,
                          schedule_creatives=(planned, np.full(len(users), 0.37)))
    events = served.landing["ad_events"].to_pandas()
    impressions = events[events["event_type"] == "impression"].merge(
        served.impressions[["impression_id", "arm"]], on="impression_id")
    plan = pd.DataFrame({"user_id": World.ids("user", users), "ad_id": World.ids("ad", ads),
                         "planned": pd.array(np.where(planned >= 0, World.ids("creative", np.maximum(planned, 0)), -1))})
    shown = impressions.merge(plan[plan["planned"] >= 0], on=["user_id", "ad_id"], how="inner")
    treated, control = shown[shown["arm"] == "treatment"], shown[shown["arm"] == "control"]
    assert len(treated) > 50 and len(control) > 50
    assert (treated["creative_id"] == treated["planned"]).all() and np.allclose(treated["creative_propensity"], 0.37)
    # The control arm's logging policy draws uniformly among the ad's creatives, whatever was planned.
    k = count[control["ad_id"].to_numpy() - World.ids("ad", 0)]
    assert np.allclose(control["creative_propensity"], 1.0 / k)
    assert (control["creative_id"] != control["planned"]).any()
