"""Taobao adapter on a hand-written fixture in the published file format (not the real data)."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ml.datasets.taobao import TaobaoSourceError, taobao_to_landing

FIXTURE = Path(__file__).parent / "fixtures" / "taobao"

CONTRACT_TYPES = {
    "users": {"user_id": "BIGINT", "gender": "VARCHAR", "age_band": "VARCHAR",
              "city_tier": "INTEGER", "occupation": "VARCHAR", "first_seen": "DATE"},
    "campaigns": {"campaign_id": "BIGINT", "advertiser_id": "BIGINT", "objective": "VARCHAR",
                  "bid_type": "VARCHAR", "bid": "DOUBLE", "daily_budget": "DOUBLE",
                  "start_date": "DATE", "end_date": "DATE", "restricted": "BOOLEAN"},
    "ads": {"ad_id": "BIGINT", "campaign_id": "BIGINT", "category_id": "BIGINT",
            "brand_id": "BIGINT", "price": "DOUBLE", "title": "VARCHAR"},
    "behavior_events": {"event_id": "BIGINT", "user_id": "BIGINT", "ts": "TIMESTAMP",
                        "event_type": "VARCHAR", "category_id": "BIGINT", "brand_id": "BIGINT",
                        "item_id": "BIGINT"},
    "ad_events": {"event_id": "BIGINT", "impression_id": "BIGINT", "user_id": "BIGINT",
                  "ad_id": "BIGINT", "ts": "TIMESTAMP", "event_type": "VARCHAR", "slot": "INTEGER",
                  "cost": "DOUBLE", "propensity": "DOUBLE", "creative_id": "BIGINT",
                  "creative_propensity": "DOUBLE"},
}


def read_landing(data_root: Path, table: str) -> pd.DataFrame:
    """All landed rows of a table plus the partition day of the file each row came from."""
    pattern = str(data_root / "landing" / table / "date=*" / "*.parquet")
    return duckdb.sql(
        f"select *, cast(regexp_extract(filename, 'date=([0-9-]+)', 1) as date) as partition_day "
        f"from read_parquet('{pattern}', filename=true, hive_partitioning=false)"
    ).df()


@pytest.fixture(scope="module")
def landed(tmp_path_factory):
    data_root = tmp_path_factory.mktemp("taobao_root")
    # A chunk size that splits every file into several chunks exercises the streaming path.
    report = taobao_to_landing(FIXTURE, data_root, chunksize=7)
    return data_root, report


def raw(name: str) -> pd.DataFrame:
    return pd.read_csv(FIXTURE / name, na_values=["NULL"])


@pytest.mark.parametrize("table", list(CONTRACT_TYPES))
def test_landing_files_have_contract_columns_and_types(landed, table):
    data_root, _ = landed
    pattern = str(data_root / "landing" / table / "date=*" / "*.parquet")
    described = duckdb.sql(
        f"describe select * from read_parquet('{pattern}', hive_partitioning=false)"
    ).fetchall()
    assert {name: kind for name, kind, *_ in described} == CONTRACT_TYPES[table]


def test_ad_events_reconcile_with_raw_sample(landed):
    data_root, report = landed
    sample = raw("raw_sample.csv")
    events = read_landing(data_root, "ad_events")
    impressions = events[events.event_type == "impression"]
    clicks = events[events.event_type == "click"]
    assert set(events.event_type) == {"impression", "click"}
    assert len(impressions) == len(sample) == report.counts["impressions"]
    assert len(clicks) == sample.clk.sum() == report.counts["clicks"]
    assert events.event_id.is_unique and impressions.impression_id.is_unique
    # Every click follows its own impression by one second, same user, ad and slot.
    joined = clicks.merge(impressions, on="impression_id", suffixes=("_click", "_imp"))
    assert len(joined) == len(clicks)
    assert (joined.ts_click - joined.ts_imp == pd.Timedelta(seconds=1)).all()
    assert (joined.user_id_click == joined.user_id_imp).all()
    assert (joined.slot_click == joined.slot_imp).all()
    assert (impressions.cost == 0).all() and events.propensity.isna().all()


def test_clicks_cost_their_campaign_bid(landed):
    data_root, _ = landed
    clicks = read_landing(data_root, "ad_events").query("event_type == 'click'")
    ads = read_landing(data_root, "ads")
    campaigns = read_landing(data_root, "campaigns")
    priced = clicks.merge(ads, on="ad_id").merge(campaigns, on="campaign_id")
    assert len(priced) == len(clicks)
    assert (priced.cost == priced.bid).all() and (priced.cost > 0).all()


def test_slots_come_from_the_two_pids(landed):
    data_root, _ = landed
    sample = raw("raw_sample.csv")
    impressions = read_landing(data_root, "ad_events").query("event_type == 'impression'")
    by_row = impressions.sort_values("impression_id").slot.to_numpy()
    expected = sample.pid.map({"430548_1007": 1, "430539_1007": 2}).to_numpy()
    assert (by_row == expected).all() and set(by_row) == {1, 2}


@pytest.mark.parametrize("table", ["ad_events", "behavior_events"])
def test_event_ts_inside_partition_day_and_days_are_complete(landed, table):
    data_root, report = landed
    events = read_landing(data_root, table)
    assert (events.ts.dt.date == events.partition_day.dt.date).all()
    days = report.days_by_table[table]
    assert days == [days[0] + dt.timedelta(d) for d in range((days[-1] - days[0]).days + 1)]
    assert report.days_by_table["ad_events"] == report.days_by_table["behavior_events"]


def test_times_are_utc(landed):
    data_root, _ = landed
    events = read_landing(data_root, "ad_events")
    # 1494000000 is 2017-05-06 00:00 in Beijing, 2017-05-05 16:00 UTC.
    first = events[events.impression_id == 1].query("event_type == 'impression'").iloc[0]
    assert first.ts == pd.Timestamp("2017-05-05 16:00:00")
    # An impression at 23:59:59 UTC whose click lands on the next day's partition.
    late_click = events[(events.impression_id == 2) & (events.event_type == "click")].iloc[0]
    assert late_click.ts == pd.Timestamp("2017-05-07 00:00:00")
    assert late_click.partition_day == pd.Timestamp("2017-05-07")


def test_behavior_events_mapping(landed):
    data_root, report = landed
    log = raw("behavior_log.csv")
    events = read_landing(data_root, "behavior_events").sort_values("event_id")
    assert len(events) == len(log) == report.counts["behavior_rows"]
    assert events.event_type.tolist() == log.btag.map(
        {"pv": "view", "cart": "cart", "fav": "fav", "buy": "buy"}).tolist()
    assert events.event_id.tolist() == list(range(1, len(log) + 1))
    assert (events.brand_id.to_numpy() == log.brand.fillna(-1).astype("int64").to_numpy()).all()
    assert log.brand.isna().any() and (events.item_id == -1).all()


def test_ads_and_campaigns_mapping(landed):
    data_root, _ = landed
    features = raw("ad_feature.csv")
    ads = read_landing(data_root, "ads").set_index("ad_id").sort_index()
    features = features.set_index("adgroup_id").sort_index()
    assert ads.index.tolist() == features.index.tolist()
    assert ads.loc[375706, "brand_id"] == -1  # the NULL brand
    assert (ads.campaign_id == features.campaign_id).all()
    assert ads.loc[63133, "title"] == "adgroup 63133"
    campaigns = read_landing(data_root, "campaigns").set_index("campaign_id")
    assert sorted(campaigns.index) == sorted(features.campaign_id.unique())
    assert campaigns.loc[135256, "advertiser_id"] == 2
    assert set(campaigns.objective) == {"click"} and set(campaigns.bid_type) == {"cpc"}
    assert (campaigns.bid > 0).all() and (campaigns.daily_budget > 0).all()
    assert (campaigns.end_date >= campaigns.start_date).all()


def test_users_mapping(landed):
    data_root, report = landed
    users = read_landing(data_root, "users").set_index("user_id")
    assert users.index.is_unique
    assert set(users.gender) <= {"M", "F", "U"}
    assert users.loc[234, "gender"] == "F" and users.loc[612, "gender"] == "M"
    assert users.loc[234, "age_band"] == "level_5"
    assert users.loc[612, "city_tier"] == 0  # empty new_user_class_level → documented default
    assert users.loc[523, "occupation"] == "college_student"
    # 9999 has impressions, 558157 behavior, neither a profile: both land as unknown users.
    assert users.loc[9999, "gender"] == "U" and users.loc[558157, "age_band"] == "unknown"
    assert report.counts["event_users_without_profile"] == 2
    sample = raw("raw_sample.csv")
    first_9999 = pd.to_datetime(sample[sample.user == 9999].time_stamp.min(), unit="s").normalize()
    assert users.loc[9999, "first_seen"] == first_9999
    # Dimension tables land once, on the first event day.
    assert report.days_by_table["users"] == report.days_by_table["ads"] == [
        report.days_by_table["behavior_events"][0]
    ]


def test_relanding_replaces_the_adapters_files_only(landed, tmp_path):
    data_root, _ = landed
    root = tmp_path / "root"
    shutil.copytree(data_root, root)
    other_source = root / "landing" / "ads" / "date=2017-04-30" / "other.csv"
    other_source.write_text("ad_id\n1\n")
    report = taobao_to_landing(FIXTURE, root, chunksize=1000)
    assert report.rows_by_table["ad_events"] == len(read_landing(root, "ad_events"))
    assert other_source.exists()
    assert not (root / ".adapter_staging").exists()


def copy_fixture(tmp_path: Path) -> Path:
    source = tmp_path / "taobao"
    shutil.copytree(FIXTURE, source)
    return source


def test_header_mismatch_is_a_clear_error(tmp_path):
    source = copy_fixture(tmp_path)
    sample = source / "raw_sample.csv"
    sample.write_text(sample.read_text().replace("adgroup_id", "ad_id", 1))
    with pytest.raises(TaobaoSourceError, match=r"raw_sample.csv.*published header.*missing \['adgroup_id'\]"):
        taobao_to_landing(source, tmp_path / "root")
    assert not (tmp_path / "root" / "landing").exists()


def test_missing_file_is_a_clear_error(tmp_path):
    source = copy_fixture(tmp_path)
    (source / "behavior_log.csv").unlink()
    with pytest.raises(TaobaoSourceError, match="behavior_log.csv is missing"):
        taobao_to_landing(source, tmp_path / "root")


def test_unknown_pid_names_the_row(tmp_path):
    source = copy_fixture(tmp_path)
    sample = source / "raw_sample.csv"
    lines = sample.read_text().splitlines()
    lines[3] = lines[3].replace("430548_1007", "999_1").replace("430539_1007", "999_1")
    sample.write_text("\n".join(lines) + "\n")
    with pytest.raises(TaobaoSourceError, match=r"data row 3 has pid '999_1'"):
        taobao_to_landing(source, tmp_path / "root", chunksize=2)
    assert not (tmp_path / "root" / "landing").exists()


def test_unparsable_number_names_the_file(tmp_path):
    source = copy_fixture(tmp_path)
    log = source / "behavior_log.csv"
    log.write_text(log.read_text().replace("558157,1493741626", "558157,yesterday"))
    with pytest.raises(TaobaoSourceError, match="behavior_log.csv: cannot parse"):
        taobao_to_landing(source, tmp_path / "root")


def test_landed_files_pass_ingest_without_quarantine(landed):
    """The real ingest (ml.ingest) accepts every landed row: the adapter meets the contract."""
    from ml.ingest import ingest_day

    data_root, report = landed
    days = sorted({day for days in report.days_by_table.values() for day in days})
    accepted: dict[str, int] = {}
    quarantined: dict[str, dict[str, int]] = {}
    with duckdb.connect() as conn:
        for day in days:
            for table_report in ingest_day(conn, data_root / "landing", day):
                accepted[table_report.table] = accepted.get(table_report.table, 0) + table_report.rows_accepted
                if table_report.rows_quarantined:
                    quarantined[f"{table_report.table} {day}"] = table_report.quarantined_by_rule
    assert quarantined == {}
    # The log has no creatives (an optional table): ingest reads none.
    assert accepted == {**report.rows_by_table, "creatives": 0}


def test_cli_lands_taobao_and_reports_bad_input(tmp_path, capsys):
    from ml.datasets.cli import main

    assert main(["taobao", "--source", str(FIXTURE), "--out", str(tmp_path), "--chunksize", "5"]) == 0
    printed = capsys.readouterr().out
    assert "ad_events" in printed and "first landed day: 2017-04-30" in printed
    assert len(read_landing(tmp_path, "ad_events")) == len(raw("raw_sample.csv")) + raw("raw_sample.csv").clk.sum()
    assert main(["taobao", "--source", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
