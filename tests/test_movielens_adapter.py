"""MovieLens adapter: mapping rules on a few hand-made ratings, then the real ML-100k via the loader."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ml.datasets.movielens_landing import (
    MovieLensFrameError,
    movielens_frames_to_landing,
    movielens_to_landing,
)

CONTRACT_TYPES = {
    "users": ["user_id BIGINT", "gender VARCHAR", "age_band VARCHAR", "city_tier INTEGER",
              "occupation VARCHAR", "first_seen DATE"],
    "campaigns": ["campaign_id BIGINT", "advertiser_id BIGINT", "objective VARCHAR",
                  "bid_type VARCHAR", "bid DOUBLE", "daily_budget DOUBLE", "start_date DATE",
                  "end_date DATE", "restricted BOOLEAN"],
    "ads": ["ad_id BIGINT", "campaign_id BIGINT", "category_id BIGINT", "brand_id BIGINT",
            "price DOUBLE", "title VARCHAR"],
    "behavior_events": ["event_id BIGINT", "user_id BIGINT", "ts TIMESTAMP", "event_type VARCHAR",
                        "category_id BIGINT", "brand_id BIGINT", "item_id BIGINT"],
    "ad_events": ["event_id BIGINT", "impression_id BIGINT", "user_id BIGINT", "ad_id BIGINT",
                  "ts TIMESTAMP", "event_type VARCHAR", "slot INTEGER", "cost DOUBLE",
                  "propensity DOUBLE", "creative_id BIGINT", "creative_propensity DOUBLE"],
}
DAY0 = 881_107_200  # 1997-12-03 00:00:00 UTC


def read_landing(data_root: Path, table: str) -> pd.DataFrame:
    pattern = str(data_root / "landing" / table / "date=*" / "*.parquet")
    return duckdb.sql(
        f"select *, cast(regexp_extract(filename, 'date=([0-9-]+)', 1) as date) as partition_day "
        f"from read_parquet('{pattern}', filename=true, hive_partitioning=false)"
    ).df()


def column_types(data_root: Path, table: str) -> list[str]:
    pattern = str(data_root / "landing" / table / "date=*" / "*.parquet")
    rows = duckdb.sql(f"describe select * from read_parquet('{pattern}', hive_partitioning=false)")
    return [f"{name} {kind}" for name, kind, *_ in rows.fetchall()]


# Frames shaped like the loader's: movie 10 and 20 are ads (id % 10 == 0), 7 is organic.
TINY_ITEMS = pd.DataFrame({
    "item_id": [7, 10, 20], "movie_title": ["Seven", "Ten", "Twenty"],
    "release_year": ["1995", "1994", None], "class": ["Crime Thriller", "Drama", "Comedy Romance"],
})
TINY_USERS = pd.DataFrame({
    "user_id": [1, 2, 3], "age": [17, 30, 60], "gender": ["M", "F", "M"],
    "occupation": ["student", "writer", "retired"], "zip_code": ["1", "2", "3"],
})
TINY_RATINGS = pd.DataFrame({
    "user_id": [1, 1, 2, 2, 1],
    "item_id": [7, 10, 10, 20, 7],
    "rating": [5.0, 4.0, 2.0, 3.0, 1.0],
    "timestamp": [DAY0 + 10, DAY0 + 20, DAY0 + 86_399, DAY0 + 86_400 + 5, DAY0 + 3 * 86_400],
})


@pytest.fixture()
def tiny_root(tmp_path):
    report = movielens_frames_to_landing(TINY_RATINGS, TINY_ITEMS, TINY_USERS, tmp_path)
    return tmp_path, report


def test_tiny_behavior_events(tiny_root):
    root, _ = tiny_root
    events = read_landing(root, "behavior_events").sort_values("event_id")
    # Ratings of movie 7: r=1 (5 stars → view + fav) and r=5 (1 star → view only).
    assert events[["event_id", "event_type", "item_id"]].values.tolist() == [
        [2, "view", 7], [3, "fav", 7], [10, "view", 7]]
    assert set(events.category_id) == {6}  # Crime, the first genre
    assert set(events.brand_id) == {1995}


def test_tiny_ad_layer(tiny_root):
    root, report = tiny_root
    events = read_landing(root, "ad_events").sort_values("event_id")
    assert events[["event_id", "impression_id", "ad_id", "event_type"]].values.tolist() == [
        [4, 2, 10, "impression"], [5, 2, 10, "click"],
        [6, 3, 10, "impression"], [8, 4, 20, "impression"]]
    ads = read_landing(root, "ads").set_index("ad_id")
    campaigns = read_landing(root, "campaigns").set_index("campaign_id")
    assert sorted(ads.index) == [10, 20] and ads.loc[20, "brand_id"] == -1
    click = events[events.event_type == "click"].iloc[0]
    assert click.cost == campaigns.loc[ads.loc[10, "campaign_id"], "bid"] > 0
    assert click.ts - events.iloc[0].ts == pd.Timedelta(seconds=1)
    assert set(events.slot) <= {1, 2} and events.propensity.isna().all()
    assert report.counts["impressions"] == 3 and report.counts["clicks"] == 1


def test_tiny_partitions_and_users(tiny_root):
    root, report = tiny_root
    for table in ("behavior_events", "ad_events"):
        events = read_landing(root, table)
        assert (events.ts.dt.date == events.partition_day.dt.date).all()
        # Day 2 had no rating, yet both event tables have a (possibly empty) file for it.
        assert report.days_by_table[table] == [dt.date(1997, 12, 3) + dt.timedelta(d) for d in range(4)]
    users = read_landing(root, "users").set_index("user_id")
    assert sorted(users.index) == [1, 2]  # user 3 never rated: not landed
    assert users.loc[1, "age_band"] == "under_18" and users.loc[2, "age_band"] == "25-34"
    assert users.loc[2, "first_seen"] == pd.Timestamp("1997-12-03")


def test_max_days_cuts_later_ratings(tmp_path):
    report = movielens_frames_to_landing(TINY_RATINGS, TINY_ITEMS, TINY_USERS, tmp_path, max_days=1)
    assert report.counts["ratings_landed"] == 3
    assert report.dropped == {"ratings after the first 1 days": 2}
    assert report.days_by_table["ad_events"] == [dt.date(1997, 12, 3)]


def test_missing_columns_are_a_clear_error(tmp_path):
    with pytest.raises(MovieLensFrameError, match=r"items lack columns \['class'\]"):
        movielens_frames_to_landing(TINY_RATINGS, TINY_ITEMS.drop(columns="class"), TINY_USERS, tmp_path)
    assert not (tmp_path / "landing").exists()


@pytest.fixture(scope="module")
def ml100k_root(tmp_path_factory):
    from ml.datasets.movielens import find_ml100k

    try:
        find_ml100k()
    except (FileNotFoundError, OSError) as error:
        pytest.skip(f"MovieLens-100k not found and could not be fetched by the loader: {error}")
    root = tmp_path_factory.mktemp("ml100k_root")
    return root, movielens_to_landing(root)


@pytest.mark.parametrize("table", list(CONTRACT_TYPES))
def test_ml100k_contract_types(ml100k_root, table):
    root, _ = ml100k_root
    assert column_types(root, table) == CONTRACT_TYPES[table]


def test_ml100k_counts(ml100k_root):
    root, report = ml100k_root
    users = read_landing(root, "users")
    assert len(users) == 943 and users.user_id.is_unique
    assert set(users.gender) == {"M", "F"}
    behavior = read_landing(root, "behavior_events")
    ad_events = read_landing(root, "ad_events")
    views = (behavior.event_type == "view").sum()
    impressions = (ad_events.event_type == "impression").sum()
    assert views + impressions == report.counts["ratings_landed"] == 100_000
    assert (ad_events.event_type == "click").sum() == report.counts["clicks"] > 0
    assert behavior.event_id.is_unique and ad_events.event_id.is_unique
    ads = read_landing(root, "ads")
    assert set(ad_events.ad_id) <= set(ads.ad_id)
    assert set(ads.campaign_id) <= set(read_landing(root, "campaigns").campaign_id)


def test_ml100k_every_ts_in_its_partition_day(ml100k_root):
    root, _ = ml100k_root
    for table in ("behavior_events", "ad_events"):
        events = read_landing(root, table)
        assert (events.ts.dt.date == events.partition_day.dt.date).all()


def test_tiny_landing_passes_ingest_without_quarantine(tiny_root):
    from ml.ingest import ingest_day

    root, report = tiny_root
    days = sorted({day for days in report.days_by_table.values() for day in days})
    with duckdb.connect() as conn:
        reports = [r for day in days for r in ingest_day(conn, root / "landing", day)]
    assert sum(r.rows_quarantined for r in reports) == 0
    assert sum(r.rows_accepted for r in reports) == sum(report.rows_by_table.values())
