"""The simulator at tiny scale: determinism, the raw data contract, event integrity and the oracle."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ml.simulator import GroundTruth, SimulationConfig, simulate
from ml.simulator.cli import main as cli_main

TINY = SimulationConfig(n_users=400, n_ads=30, n_campaigns=10, n_advertisers=5, n_days=4, n_categories=12,
                        n_brands=40, n_items=600, seed=7)

# The raw data contract of ARCHITECTURE.md as DuckDB sees the files.
CONTRACT_TYPES = {
    "users": {"user_id": "BIGINT", "gender": "VARCHAR", "age_band": "VARCHAR", "city_tier": "INTEGER",
              "occupation": "VARCHAR", "first_seen": "DATE"},
    "campaigns": {"campaign_id": "BIGINT", "advertiser_id": "BIGINT", "objective": "VARCHAR", "bid_type": "VARCHAR",
                  "bid": "DOUBLE", "daily_budget": "DOUBLE", "start_date": "DATE", "end_date": "DATE",
                  "restricted": "BOOLEAN"},
    "ads": {"ad_id": "BIGINT", "campaign_id": "BIGINT", "category_id": "BIGINT", "brand_id": "BIGINT",
            "price": "DOUBLE", "title": "VARCHAR"},
    "creatives": {"creative_id": "BIGINT", "ad_id": "BIGINT", "title": "VARCHAR"},
    "behavior_events": {"event_id": "BIGINT", "user_id": "BIGINT", "ts": "TIMESTAMP", "event_type": "VARCHAR",
                        "category_id": "BIGINT", "brand_id": "BIGINT", "item_id": "BIGINT"},
    "ad_events": {"event_id": "BIGINT", "impression_id": "BIGINT", "user_id": "BIGINT", "ad_id": "BIGINT",
                  "ts": "TIMESTAMP", "event_type": "VARCHAR", "slot": "INTEGER", "cost": "DOUBLE", "propensity": "DOUBLE",
                  "creative_id": "BIGINT", "creative_propensity": "DOUBLE"},
}


def read_table(root: Path, table: str, file_format: str = "parquet") -> pd.DataFrame:
    """All partitions of a landing table with the partition date as a column."""
    frames = []
    for path in sorted((root / "landing" / table).glob(f"date=*/part-0.{file_format}")):
        frame = pd.read_parquet(path) if file_format == "parquet" else pd.read_csv(path)
        frame["partition_date"] = dt.date.fromisoformat(path.parent.name.removeprefix("date="))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sim")
    simulate(TINY, root, progress=False)
    return root


@pytest.fixture(scope="module")
def ad_events(tiny_root: Path) -> pd.DataFrame:
    return read_table(tiny_root, "ad_events")


def landing_bytes(root: Path) -> dict[str, bytes]:
    files = sorted((root / "landing").rglob("part-0.*")) + [root / "ground_truth" / "impressions.parquet"]
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def test_same_seed_gives_identical_files_and_another_seed_does_not(tiny_root: Path, tmp_path: Path) -> None:
    simulate(TINY, tmp_path / "again", progress=False)
    assert landing_bytes(tmp_path / "again") == landing_bytes(tiny_root)
    other = SimulationConfig(**{**TINY.__dict__, "seed": 8})
    simulate(other, tmp_path / "other", progress=False)
    first, second = landing_bytes(tiny_root), landing_bytes(tmp_path / "other")
    assert first.keys() == second.keys()
    assert first["landing/ad_events/date=2026-11-01/part-0.parquet"] != second["landing/ad_events/date=2026-11-01/part-0.parquet"]


def test_every_table_and_day_matches_the_contract_types(tiny_root: Path) -> None:
    for table, expected in CONTRACT_TYPES.items():
        partitions = sorted((tiny_root / "landing" / table).glob("date=*"))
        assert [p.name for p in partitions] == [f"date={TINY.day(d).isoformat()}" for d in range(TINY.n_days)]
        for partition in partitions:
            described = duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{partition / 'part-0.parquet'}', hive_partitioning=false)").fetchall()
            assert {name: dtype for name, dtype, *_ in described} == expected, f"{table} {partition.name}"
            assert [name for name, *_ in described] == list(expected)


def test_dimension_tables_land_on_their_first_day(tiny_root: Path) -> None:
    users = read_table(tiny_root, "users")
    assert users.user_id.is_unique and len(users) == TINY.n_users
    assert (users.first_seen == users.partition_date).all()
    assert (users.partition_date == TINY.start_date).mean() > 0.7  # most users exist from day 1
    assert set(users.gender) <= {"M", "F", "U"}
    campaigns = read_table(tiny_root, "campaigns")
    assert campaigns.campaign_id.is_unique and len(campaigns) == TINY.n_campaigns
    assert (campaigns.partition_date == campaigns.start_date.clip(lower=TINY.start_date)).all()
    assert (campaigns.end_date >= campaigns.start_date).all() and (campaigns.bid > 0).all() and (campaigns.daily_budget > 0).all()
    assert set(zip(campaigns.objective, campaigns.bid_type)) <= {("click", "cpc"), ("conversion", "cpa")}
    ads = read_table(tiny_root, "ads")
    assert ads.ad_id.is_unique and len(ads) == TINY.n_ads and (ads.price >= 0).all()
    landed_with = ads.merge(campaigns[["campaign_id", "partition_date"]], on="campaign_id", suffixes=("", "_campaign"))
    assert len(landed_with) == len(ads)
    # An ad lands with its campaign or, launched later in the flight, on its own launch day.
    assert (landed_with.partition_date >= landed_with.partition_date_campaign).all()
    assert (landed_with.partition_date > landed_with.partition_date_campaign).any()


def test_new_ads_keep_launching_and_are_never_served_before_they_land(tiny_root: Path, ad_events: pd.DataFrame) -> None:
    ads = read_table(tiny_root, "ads")
    assert ads.partition_date.nunique() > 1
    landed = ads[["ad_id", "partition_date"]].rename(columns={"partition_date": "landed"})
    shown = ad_events[ad_events.event_type == "impression"].merge(landed, on="ad_id")
    assert len(shown) and (shown.ts.dt.date >= pd.to_datetime(shown.landed).dt.date).all()


def test_titles_carry_the_ads_quality_in_their_words(tiny_root: Path) -> None:
    """Each title names its brand and category and two terms drawn by the ad's hidden quality: the
    terms that go with quality appear on better ads (the content features' signal)."""
    from ml.simulator.world import TITLE_TERMS, World

    world = World.load(tiny_root / "ground_truth")
    ads = read_table(tiny_root, "ads").sort_values("ad_id")
    assert ads.title.str.contains(": ").all()
    loading = dict(TITLE_TERMS)
    title_score = ads.title.map(lambda title: sum(loading[term] for term in title.split(": ", 1)[1].split(", ")))
    quality = world.ad_quality[(ads.ad_id - 50_001).to_numpy()]
    assert np.corrcoef(title_score, quality)[0, 1] > 0.3


def test_events_lie_inside_their_partition_day_and_ids_are_unique(tiny_root: Path, ad_events: pd.DataFrame) -> None:
    behavior = read_table(tiny_root, "behavior_events")
    for events in (behavior, ad_events):
        assert (events.ts.dt.date == events.partition_date).all()
    all_ids = pd.concat([behavior.event_id, ad_events.event_id])
    assert all_ids.is_unique
    assert set(behavior.event_type) == {"view", "click", "cart", "fav", "buy"}
    assert (behavior.event_type == "view").mean() > 0.5  # the funnel narrows


def test_clicks_and_conversions_follow_their_impression(ad_events: pd.DataFrame) -> None:
    impressions = ad_events[ad_events.event_type == "impression"].set_index("impression_id")
    assert (impressions.index == impressions.event_id).all() and impressions.index.is_unique
    assert ((impressions.propensity > 0) & (impressions.propensity <= 1)).all()
    assert (impressions.cost == 0).all() and impressions.slot.between(1, 4).all()
    follow_ups = ad_events[ad_events.event_type != "impression"]
    assert follow_ups.impression_id.isin(impressions.index).all()
    source = impressions.loc[follow_ups.impression_id]
    assert (follow_ups.ts.to_numpy() > source.ts.to_numpy()).all()
    assert (follow_ups[["user_id", "ad_id", "slot"]].to_numpy() == source[["user_id", "ad_id", "slot"]].to_numpy()).all()
    assert follow_ups.propensity.isna().all()

    clicks = ad_events[ad_events.event_type == "click"].set_index("impression_id")
    assert clicks.index.is_unique
    conversions = ad_events[ad_events.event_type == "conversion"]
    assert len(conversions) > 0 and conversions.impression_id.isin(clicks.index).all()
    assert (conversions.ts.to_numpy() > clicks.loc[conversions.impression_id].ts.to_numpy()).all()
    # Some conversions land on a later day than their click, never more than a week later.
    delay = conversions.partition_date.to_numpy() - clicks.loc[conversions.impression_id].partition_date.to_numpy()
    assert max(delay) > dt.timedelta(0) and max(delay) <= dt.timedelta(days=7)


def test_costs_follow_the_bid_type(tiny_root: Path, ad_events: pd.DataFrame) -> None:
    ads = read_table(tiny_root, "ads").merge(read_table(tiny_root, "campaigns"), on="campaign_id")
    priced = ad_events[ad_events.event_type != "impression"].merge(ads[["ad_id", "bid_type", "bid"]], on="ad_id")
    charged = ((priced.event_type == "click") & (priced.bid_type == "cpc")) | (
        (priced.event_type == "conversion") & (priced.bid_type == "cpa")
    )
    assert np.allclose(priced.cost, np.where(charged, priced.bid, 0.0))


def test_behavior_follows_interests_and_active_hours(tiny_root: Path) -> None:
    world = GroundTruth.load(tiny_root / "ground_truth").world
    behavior = read_table(tiny_root, "behavior_events")
    user = (behavior.user_id - world.ids("user", 0)).to_numpy()
    day = (pd.to_datetime(behavior.partition_date) - pd.Timestamp(TINY.start_date)).dt.days.to_numpy()
    category = (behavior.category_id - world.ids("category", 0)).to_numpy()
    interest = world.interest(user, day)
    # Users browse the categories they care about that day far more than chance would.
    assert interest[np.arange(len(user)), category].mean() > 2.5 / TINY.n_categories
    hour = behavior.ts.dt.hour.to_numpy()
    distance = np.abs((hour + 0.5 - world.user_peak_hour[user] + 12) % 24 - 12)
    assert (distance <= 3.5).mean() > 0.45  # 7 of 24 hours would hold 29% without personal rhythms


def test_click_and_conversion_rates_are_realistic(ad_events: pd.DataFrame) -> None:
    counts = ad_events.event_type.value_counts()
    assert counts["impression"] > 5000
    assert 0.015 < counts["click"] / counts["impression"] < 0.07
    assert 0.03 < counts["conversion"] / counts["click"] < 0.25


def test_true_pctr_predicts_observed_clicks(tiny_root: Path, ad_events: pd.DataFrame) -> None:
    truth = GroundTruth.load(tiny_root / "ground_truth").impressions()
    clicked = truth.impression_id.isin(ad_events.loc[ad_events.event_type == "click", "impression_id"])
    assert roc_auc_score(clicked, truth.true_pctr) > 0.6
    assert len(truth) == (ad_events.event_type == "impression").sum()


def test_oracle_matches_the_realized_probabilities_on_average(tiny_root: Path) -> None:
    oracle = GroundTruth.load(tiny_root / "ground_truth")
    truth = oracle.impressions()
    pctr, pcvr = oracle.true_probabilities(truth.user_id, truth.ad_id, truth.ts.dt.date, truth.ts.dt.hour, truth.slot)
    # The oracle averages over the session intent the realized probability knew, so only means agree.
    assert abs(pctr.mean() / truth.true_pctr.mean() - 1) < 0.1
    assert np.allclose(pcvr, truth.true_pcvr)
    assert np.corrcoef(pctr, truth.true_pctr)[0, 1] > 0.8


def test_oracle_scores_days_after_the_last_simulated_day(tiny_root: Path) -> None:
    oracle = GroundTruth.load(tiny_root / "ground_truth")
    ads = oracle.ad_table()
    assert list(ads.columns[:5]) == ["ad_id", "campaign_id", "advertiser_id", "category_id", "brand_id"]
    assert {"bid", "bid_type", "objective"} <= set(ads.columns) and len(ads) == TINY.n_ads
    users = np.repeat(np.arange(10_000_001, 10_000_021), len(ads))
    ad_ids = np.tile(ads.ad_id.to_numpy(), 20)
    scores = {}
    for offset in (0, TINY.n_days, TINY.n_days + 30):
        day = np.full(len(users), np.datetime64(TINY.day(offset)))
        pctr, pcvr = oracle.true_probabilities(users, ad_ids, day, np.full(len(users), 20), np.ones(len(users), int))
        assert ((pctr > 0) & (pctr < 1) & (pcvr > 0) & (pcvr < 1)).all()
        scores[offset] = pctr
    next_day = np.full(len(users), np.datetime64(TINY.day(TINY.n_days)))
    again, _ = oracle.true_probabilities(users, ad_ids, next_day, np.full(len(users), 20), np.ones(len(users), int))
    assert np.array_equal(again, scores[TINY.n_days])  # deterministic per day
    assert not np.allclose(scores[0], scores[TINY.n_days])  # interests drift
    assert np.corrcoef(scores[0], scores[TINY.n_days])[0, 1] > 0.5  # but stay recognisable
    worse_slot, _ = oracle.true_probabilities(users, ad_ids, next_day, np.full(len(users), 20), np.full(len(users), 4))
    assert (worse_slot < scores[TINY.n_days]).all()  # position bias


def test_oracle_rejects_unknown_ids(tiny_root: Path) -> None:
    oracle = GroundTruth.load(tiny_root / "ground_truth")
    with pytest.raises(ValueError, match="unknown ad_id"):
        oracle.true_probabilities([10_000_001], [1], ["2026-11-01"], [12], [1])
    with pytest.raises(FileNotFoundError, match="adflow-simulate"):
        GroundTruth.load(tiny_root / "nowhere")


def test_csv_output_matches_parquet_and_a_rerun_replaces_old_files(tiny_root: Path, tmp_path: Path) -> None:
    simulate(TINY, tmp_path, progress=False)
    assert cli_main(["--users", "400", "--ads", "30", "--campaigns", "10", "--advertisers", "5", "--days", "4",
                     "--categories", "12", "--brands", "40", "--items", "600", "--seed", "7", "--format", "csv",
                     "--out", str(tmp_path), "--no-progress"]) == 0
    assert not list((tmp_path / "landing").rglob("*.parquet"))
    events = duckdb.sql(
        f"SELECT * FROM read_csv('{tmp_path}/landing/ad_events/*/part-0.csv', hive_partitioning=false) ORDER BY event_id"
    ).df()
    expected = read_table(tiny_root, "ad_events").drop(columns="partition_date").sort_values("event_id")
    assert str(events.ts.dtype).startswith("datetime64")
    assert (events.ts.to_numpy() == expected.ts.to_numpy()).all()
    pd.testing.assert_frame_equal(
        events.drop(columns="ts").reset_index(drop=True), expected.drop(columns="ts").reset_index(drop=True),
        check_dtype=False,
    )

    simulate(SimulationConfig(**{**TINY.__dict__, "n_days": 2}), tmp_path, progress=False)
    assert sorted(p.name for p in (tmp_path / "landing" / "ad_events").iterdir()) == [
        f"date={TINY.day(d).isoformat()}" for d in range(2)
    ]
    assert not list((tmp_path / "landing").rglob("*.csv"))


def test_invalid_config_is_rejected_with_a_reason() -> None:
    with pytest.raises(ValueError, match="n_users"):
        SimulationConfig(n_users=0)
    with pytest.raises(ValueError, match="file_format"):
        SimulationConfig(file_format="json")
    with pytest.raises(ValueError, match="n_campaigns"):
        SimulationConfig(n_ads=10, n_campaigns=20, n_advertisers=5)


def test_creatives_land_with_their_ads_and_impressions_log_a_uniform_choice(tiny_root: Path) -> None:
    creatives, ads = read_table(tiny_root, "creatives"), read_table(tiny_root, "ads")
    assert creatives.creative_id.is_unique and len(creatives) > 0
    landed = creatives.merge(ads[["ad_id", "partition_date", "title"]], on="ad_id", suffixes=("", "_ad"))
    assert len(landed) == len(creatives)  # every creative's ad exists ...
    assert (landed.partition_date == landed.partition_date_ad).all()  # ... and landed the same day
    assert all(title.startswith(f"{ad_title} | ") for title, ad_title in zip(landed.title, landed.title_ad))
    per_ad = creatives.groupby("ad_id").size()
    assert set(per_ad) <= {2, 3}

    events = read_table(tiny_root, "ad_events")
    impressions = events[events.event_type == "impression"]
    with_creatives = impressions.ad_id.isin(per_ad.index)
    assert impressions.loc[~with_creatives, "creative_id"].isna().all()
    shown = impressions[with_creatives].merge(creatives[["creative_id", "ad_id"]], on="creative_id",
                                             suffixes=("", "_of_creative"))
    assert len(shown) == with_creatives.sum() and (shown.ad_id == shown.ad_id_of_creative).all()
    assert np.allclose(shown.creative_propensity, 1.0 / shown.ad_id.map(per_ad))  # uniform logging policy
    clicks = events[events.event_type == "click"].merge(impressions[["impression_id", "creative_id"]],
                                                        on="impression_id", suffixes=("", "_shown"))
    assert clicks.creative_id.astype("Int64").equals(clicks.creative_id_shown.astype("Int64"))


def test_creative_appeal_is_centred_per_ad_and_the_truth_swaps_it(tiny_root: Path) -> None:
    truth = GroundTruth.load(tiny_root / "ground_truth")
    world = truth.world
    per_ad = np.bincount(world.creative_ad, weights=world.creative_appeal, minlength=world.n_ads)
    assert np.allclose(per_ad, 0.0) and world.creative_appeal.std() > 0.1
    log = truth.impressions()
    shown = log[log.creative_id.notna()].head(500)
    # With the creative it showed, an impression's counterfactual CTR is its logged true CTR.
    assert np.allclose(truth.creative_ctr(shown.impression_id, shown.creative_id), shown.true_pctr)
    first = world.creative_ranges()[0]
    ad_position = shown.ad_id.to_numpy() - world.ids("ad", 0)
    other = world.ids("creative", first[ad_position] + (shown.creative_id.to_numpy() - world.ids("creative", first[ad_position]) == 0))
    swapped = truth.creative_ctr(shown.impression_id, other)
    better = world.creative_appeal[other - world.ids("creative", 0)] > world.appeal_of(shown.creative_id.to_numpy() - world.ids("creative", 0))
    assert ((swapped > shown.true_pctr.to_numpy()) == better).all()
