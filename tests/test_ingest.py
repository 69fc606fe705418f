"""Happy path, idempotency and dimension updates for ml.ingest, on real files and a real DuckDB file."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from ingest_fixtures.landing import (
    DAY,
    NEXT_DAY,
    ad_events_frame,
    behavior_events_frame,
    campaigns_frame,
    connect,
    users_frame,
    write_csv,
    write_parquet,
    write_valid_day,
)

from ml.ingest import (
    CONTRACT_TABLES,
    ParentPartitionNotLoaded,
    ingest_day,
    ingest_table_partition,
    reconcile_partition,
)

LOAD_TIME_COLUMNS = {"_loaded_at", "quarantined_at", "loaded_at"}


def snapshot(conn) -> dict[str, pd.DataFrame]:
    """Every raw table without load timestamps, in a stable order, to compare two runs."""
    tables = [f"raw.{t}" for t in CONTRACT_TABLES] + ["raw.quarantine", "raw.ingest_files"]
    frames = {}
    for table in tables:
        frame = conn.sql(f"select * from {table}").df()
        frame = frame.drop(columns=[c for c in frame.columns if c in LOAD_TIME_COLUMNS])
        frames[table] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return frames


def test_valid_day_loads_every_row_with_contract_types(tmp_path):
    landing = tmp_path / "landing"
    write_valid_day(landing)
    conn = connect(tmp_path)

    reports = ingest_day(conn, landing, DAY)

    # No creatives folder landed: the optional table loads zero files and nothing is quarantined.
    assert [r.table for r in reports] == ["campaigns", "ads", "creatives", "users", "behavior_events", "ad_events"]
    assert {r.table: r.rows_accepted for r in reports} == {
        "campaigns": 2, "ads": 3, "creatives": 0, "users": 3, "behavior_events": 4, "ad_events": 3,
    }
    assert all(r.rows_quarantined == 0 and not r.failed_files for r in reports)
    assert conn.execute("select count(*) from raw.quarantine").fetchone() == (0,)
    types = dict(conn.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'raw' and table_name = 'ad_events'"
    ).fetchall())
    assert types["event_id"] == "BIGINT" and types["ts"] == "TIMESTAMP" and types["slot"] == "INTEGER"
    assert types["_partition_date"] == "DATE" and types["_source_file"] == "VARCHAR"
    # CSV text round-trips exactly (commas and quotes inside a quoted field included).
    users = conn.sql("select user_id, gender, first_seen, _source_file from raw.users order by user_id").fetchall()
    assert users[0] == (1000, "M", DAY, "users/date=2026-11-01/part-0.csv")
    events = conn.sql("select ts from raw.behavior_events order by event_id").fetchall()
    assert events[0][0] == dt.datetime(2026, 11, 1, 8, 0)
    assert reconcile_partition(conn, DAY)["balanced"].all()


def test_report_counts_files_and_duration(tmp_path):
    landing = tmp_path / "landing"
    write_parquet(landing, "campaigns", campaigns_frame([1]), name="a.parquet")
    write_csv(landing, "campaigns", campaigns_frame([2, 3]), name="b.csv")
    (landing / "campaigns" / "date=2026-11-01" / "_SUCCESS").write_text("")
    conn = connect(tmp_path)

    report = ingest_table_partition(conn, landing, "campaigns", DAY)

    assert [(f.source_file, f.rows_in, f.rows_accepted) for f in report.files] == [
        ("campaigns/date=2026-11-01/a.parquet", 1, 1, ),
        ("campaigns/date=2026-11-01/b.csv", 2, 2),
    ]
    assert report.skipped_files == ["campaigns/date=2026-11-01/_SUCCESS"]
    assert report.duration_seconds > 0
    assert report.as_metadata()["rows_accepted"] == 3


def test_reingesting_a_day_gives_identical_tables(tmp_path):
    landing = tmp_path / "landing"
    write_valid_day(landing)
    # A bad row too, so the quarantine's idempotency is exercised as well.
    bad_events = behavior_events_frame(ids=[50, 51]).assign(event_type=["view", "teleport"])
    write_parquet(landing, "behavior_events", bad_events, name="part-1.parquet")
    conn = connect(tmp_path)

    ingest_day(conn, landing, DAY)
    first = snapshot(conn)
    ingest_day(conn, landing, DAY)
    second = snapshot(conn)

    assert first.keys() == second.keys()
    for table in first:
        pd.testing.assert_frame_equal(first[table], second[table], check_like=False)
    assert len(first["raw.quarantine"]) == 1
    assert len(first["raw.ingest_files"]) == 6
    assert reconcile_partition(conn, DAY)["balanced"].all()


def test_reingest_reflects_changed_landing_files(tmp_path):
    landing = tmp_path / "landing"
    path = write_parquet(landing, "users", users_frame([1, 2, 3]))
    conn = connect(tmp_path)
    ingest_table_partition(conn, landing, "users", DAY)

    path.unlink()
    write_csv(landing, "users", users_frame([4]))
    ingest_table_partition(conn, landing, "users", DAY)

    assert conn.sql("select user_id, _source_file from raw.users").fetchall() == [
        (4, "users/date=2026-11-01/part-0.csv")
    ]
    assert conn.execute("select count(*) from raw.ingest_files").fetchone() == (1,)


def test_dimension_row_updated_on_a_later_day_keeps_both_versions(tmp_path):
    landing = tmp_path / "landing"
    write_parquet(landing, "users", users_frame([1000, 1001], occupation="student"), DAY)
    write_parquet(landing, "users", users_frame([1000], occupation="engineer"), NEXT_DAY)
    conn = connect(tmp_path)

    ingest_day(conn, landing, DAY, tables=["users"])
    report = ingest_day(conn, landing, NEXT_DAY, tables=["users"])[0]

    assert report.rows_accepted == 1 and report.rows_quarantined == 0
    versions = conn.sql(
        "select _partition_date, occupation from raw.users where user_id = 1000 order by _partition_date"
    ).fetchall()
    assert versions == [(DAY, "student"), (NEXT_DAY, "engineer")]


def test_ads_may_reference_a_campaign_from_an_earlier_day(tmp_path):
    landing = tmp_path / "landing"
    write_parquet(landing, "campaigns", campaigns_frame([1, 2]), DAY)
    write_parquet(landing, "ads", pd.DataFrame({
        "ad_id": [20], "campaign_id": [2], "category_id": [1], "brand_id": [1], "price": [0.0], "title": [None],
    }), NEXT_DAY)
    conn = connect(tmp_path)

    ingest_day(conn, landing, DAY)
    report = ingest_day(conn, landing, NEXT_DAY)[1]

    assert (report.table, report.rows_accepted, report.rows_quarantined) == ("ads", 1, 0)


def test_missing_table_folder_is_reported_not_an_error(tmp_path):
    conn = connect(tmp_path)

    report = ingest_table_partition(conn, tmp_path / "landing", "ad_events", DAY)

    assert report.files == [] and report.landing_folder_found is False and report.rows_in == 0
    assert reconcile_partition(conn, DAY).empty


def test_children_refuse_to_load_before_their_landed_parents(tmp_path):
    landing = tmp_path / "landing"
    write_valid_day(landing)
    conn = connect(tmp_path)

    with pytest.raises(ParentPartitionNotLoaded, match="ingest campaigns first"):
        ingest_table_partition(conn, landing, "ads", DAY)


def test_unknown_table_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="Unknown landing table 'clicks'"):
        ingest_day(connect(tmp_path), tmp_path, DAY, tables=["clicks"])


def test_optional_propensity_column_may_be_absent(tmp_path):
    landing = tmp_path / "landing"
    write_parquet(landing, "campaigns", campaigns_frame())
    write_parquet(landing, "ads", pd.DataFrame({
        "ad_id": [10], "campaign_id": [1], "category_id": [1], "brand_id": [1], "price": [1.0], "title": ["t"],
    }))
    write_csv(landing, "ad_events", ad_events_frame().drop(columns=["propensity"]))
    conn = connect(tmp_path)

    report = ingest_day(conn, landing, DAY)[-1]

    assert (report.table, report.rows_accepted) == ("ad_events", 3)
    assert conn.execute("select count(propensity) from raw.ad_events").fetchone() == (0,)


def test_timezone_aware_parquet_timestamps_are_stored_as_utc(tmp_path):
    landing = tmp_path / "landing"
    events = behavior_events_frame(ids=[1])
    events["ts"] = [pd.Timestamp("2026-11-01 09:30", tz="Europe/Berlin")]  # 08:30 UTC
    write_parquet(landing, "behavior_events", events)
    conn = connect(tmp_path)
    conn.execute("set TimeZone = 'America/New_York'")

    ingest_table_partition(conn, landing, "behavior_events", DAY)

    assert conn.execute("select ts from raw.behavior_events").fetchall() == [(dt.datetime(2026, 11, 1, 8, 30),)]


def test_raw_table_drifted_from_the_contract_is_a_clear_error(tmp_path):
    conn = connect(tmp_path)
    conn.execute("create schema raw")
    conn.execute("create table raw.users (user_id bigint)")

    with pytest.raises(RuntimeError, match=r"raw\.users has columns .* migrate or drop raw\.users"):
        ingest_table_partition(conn, tmp_path / "landing", "users", DAY)


def test_a_raw_table_from_before_an_optional_column_gains_it(tmp_path):
    """raw.campaigns made before `restricted` joined the contract: ingest adds the column, old rows
    read NULL (not restricted downstream) and new files with or without it load."""
    from ml.ingest.schema import raw_table_columns
    from ml.ingest.contract import CONTRACTS

    conn = connect(tmp_path)
    conn.execute("create schema raw")
    old_columns = [(name, sql_type) for name, sql_type in raw_table_columns(CONTRACTS["campaigns"])
                   if name != "restricted"]
    conn.execute(f"create table raw.campaigns ({', '.join(f'{n} {t}' for n, t in old_columns)})")
    landing = tmp_path / "landing"
    write_parquet(landing, "campaigns", campaigns_frame())  # no restricted column
    ingest_table_partition(conn, landing, "campaigns", DAY)
    write_parquet(landing, "campaigns", campaigns_frame().assign(restricted=True), day=NEXT_DAY)
    ingest_table_partition(conn, landing, "campaigns", NEXT_DAY)

    flags = conn.execute("select _partition_date, restricted from raw.campaigns order by 1").fetchall()
    assert [flag for _, flag in flags] == [None] * (len(flags) // 2) + [True] * (len(flags) // 2)
