"""Hostile landing input: every contract rule, broken files and broken CSV lines.

Each test asserts the exact quarantine rule (or failed-file error) and that every file of the
day still balances: rows_in = rows_accepted + rows_quarantined, matching what is stored.
"""
from __future__ import annotations

import json

import pandas as pd
import pytest
from ingest_fixtures.landing import (
    DAY,
    NEXT_DAY,
    ad_events_frame,
    ads_frame,
    at,
    behavior_events_frame,
    campaigns_frame,
    connect,
    creatives_frame,
    quarantine_rules,
    users_frame,
    write_bytes,
    write_csv,
    write_parquet,
)

from ml.ingest import ingest_day, ingest_table_partition, reconcile_partition

BEHAVIOR_HEADER = "event_id,user_id,ts,event_type,category_id,brand_id,item_id\n"


def ingest(conn, landing, day=DAY):
    """Ingest the whole day and require every file to balance."""
    reports = {r.table: r for r in ingest_day(conn, landing, day)}
    reconciliation = reconcile_partition(conn, day)
    assert reconciliation["balanced"].all(), reconciliation.to_string()
    return reports


def csv_bytes(header: str, *lines: str) -> bytes:
    return (header + "".join(line + "\n" for line in lines)).encode()


def with_parents(landing):
    write_parquet(landing, "campaigns", campaigns_frame([1, 2]))
    write_parquet(landing, "ads", ads_frame([10, 11, 12]))


# --- row rules -------------------------------------------------------------------------------

def test_null_key_in_parquet_and_csv(tmp_path):
    landing = tmp_path / "landing"
    users = users_frame([1, 2, 3]).astype({"user_id": "Int64"})
    users.loc[1, "user_id"] = pd.NA
    write_parquet(landing, "users", users)
    write_bytes(landing, "behavior_events", csv_bytes(BEHAVIOR_HEADER, ",1,2026-11-01 10:00:00,view,1,1,1"))
    conn = connect(tmp_path)

    reports = ingest(conn, landing)

    assert quarantine_rules(conn, "users") == [(2, "null_key")]
    assert quarantine_rules(conn, "behavior_events") == [(1, "null_key")]
    assert reports["users"].rows_accepted == 2


def test_bad_types_name_the_column(tmp_path):
    landing = tmp_path / "landing"
    write_bytes(landing, "behavior_events", csv_bytes(
        BEHAVIOR_HEADER,
        "abc,1,2026-11-01 10:00:00,view,1,1,1",     # id not a number
        "2,1.5,2026-11-01 10:00:00,view,1,1,1",     # TRY_CAST would round 1.5 to 2
        "3,1,yesterday,view,1,1,1",                 # not a timestamp
        "4,1,2026-11-01 10:00:00,view,1,1,99999999999999999999999",  # overflows BIGINT
        "5,1,2026-11-01 10:00:00,view,1,1,1",       # valid
    ))
    conn = connect(tmp_path)

    reports = ingest(conn, landing)

    assert quarantine_rules(conn, "behavior_events") == [
        (1, "bad_type:event_id"), (2, "bad_type:user_id"), (3, "bad_type:ts"), (4, "bad_type:item_id"),
    ]
    assert reports["behavior_events"].quarantined_by_rule["bad_type:ts"] == 1
    assert reports["behavior_events"].rows_accepted == 1
    (reason,) = conn.execute("select reason from raw.quarantine where rule = 'bad_type:user_id'").fetchone()
    assert reason == 'user_id="1.5" is not a whole number that fits BIGINT'


def test_non_finite_and_float_ids_in_parquet_are_bad_types(tmp_path):
    landing = tmp_path / "landing"
    campaigns = campaigns_frame([1, 2, 3]).astype({"advertiser_id": "float64"})
    campaigns.loc[0, "bid"] = float("nan")  # pyarrow writes NaN as NULL -> required value missing
    campaigns.loc[1, "daily_budget"] = float("inf")
    campaigns.loc[2, "advertiser_id"] = 103.5
    write_parquet(landing, "campaigns", campaigns)
    conn = connect(tmp_path)

    ingest(conn, landing)

    assert quarantine_rules(conn, "campaigns") == [
        (1, "null_value:bid"), (2, "bad_type:daily_budget"), (3, "bad_type:advertiser_id"),
    ]


def test_null_in_required_column(tmp_path):
    landing = tmp_path / "landing"
    with_parents(landing)
    events = ad_events_frame(ids=[1, 2]).astype({"user_id": "Int64"})
    events.loc[0, "user_id"] = pd.NA
    write_parquet(landing, "ad_events", events)
    conn = connect(tmp_path)

    ingest(conn, landing)

    assert quarantine_rules(conn, "ad_events") == [(1, "null_value:user_id")]


@pytest.mark.parametrize(
    ("table", "frame", "column", "value"),
    [
        ("users", users_frame([1]), "gender", "X"),
        ("campaigns", campaigns_frame([1]), "objective", "install"),
        ("campaigns", campaigns_frame([1]), "bid_type", "cpm"),
        ("behavior_events", behavior_events_frame(ids=[1]), "event_type", "VIEW"),
    ],
)
def test_unknown_enum(tmp_path, table, frame, column, value):
    landing = tmp_path / "landing"
    write_csv(landing, table, frame.assign(**{column: value}))
    conn = connect(tmp_path)

    ingest(conn, landing)

    assert quarantine_rules(conn, table) == [(1, f"unknown_enum:{column}")]


def test_unknown_ad_event_type(tmp_path):
    landing = tmp_path / "landing"
    with_parents(landing)
    write_parquet(landing, "ad_events", ad_events_frame(ids=[1]).assign(event_type="view"))
    conn = connect(tmp_path)

    ingest(conn, landing)

    assert quarantine_rules(conn, "ad_events") == [(1, "unknown_enum:event_type")]


def test_campaign_ranges(tmp_path):
    landing = tmp_path / "landing"
    campaigns = campaigns_frame([1, 2, 3, 4])
    campaigns.loc[0, "bid"] = 0.0
    campaigns.loc[1, "daily_budget"] = -5.0
    campaigns.loc[2, "end_date"] = DAY - pd.Timedelta(days=1)
    write_parquet(landing, "campaigns", campaigns)
    conn = connect(tmp_path)

    reports = ingest(conn, landing)

    assert quarantine_rules(conn, "campaigns") == [
        (1, "out_of_range:bid"), (2, "out_of_range:daily_budget"), (3, "out_of_range:end_date"),
    ]
    assert reports["campaigns"].rows_accepted == 1


def test_negative_price(tmp_path):
    landing = tmp_path / "landing"
    write_parquet(landing, "campaigns", campaigns_frame([1]))
    write_parquet(landing, "ads", ads_frame([10, 11], campaign_ids=[1, 1]).assign(price=[-0.01, 0.0]))
    conn = connect(tmp_path)

    ingest(conn, landing)

    assert quarantine_rules(conn, "ads") == [(1, "out_of_range:price")]


def test_ad_event_ranges_negative_cost_propensity_and_slot(tmp_path):
    landing = tmp_path / "landing"
    with_parents(landing)
    events = ad_events_frame(ids=[1, 2, 3, 4, 5, 6])
    events.loc[0, "cost"] = -0.5
    events.loc[1, "propensity"] = 0.0
    events.loc[2, "propensity"] = 1.5
    events.loc[3, "slot"] = 0
    events.loc[4, "propensity"] = None  # optional: allowed
    events.loc[5, "propensity"] = 1.0  # upper bound included
    write_csv(landing, "ad_events", events)
    conn = connect(tmp_path)

    reports = ingest(conn, landing)

    assert quarantine_rules(conn, "ad_events") == [
        (1, "out_of_range:cost"), (2, "out_of_range:propensity"), (3, "out_of_range:propensity"),
        (4, "out_of_range:slot"),
    ]
    assert reports["ad_events"].rows_accepted == 2


def test_ts_outside_partition_day_boundaries(tmp_path):
    landing = tmp_path / "landing"
    events = behavior_events_frame(ids=[1, 2, 3, 4])
    events["ts"] = [at(DAY, 0, 0), at(NEXT_DAY, 0, 0), at(DAY - pd.Timedelta(days=1), 23, 59), at(DAY, 23, 59)]
    write_parquet(landing, "behavior_events", events)
    conn = connect(tmp_path)

    ingest(conn, landing)

    assert quarantine_rules(conn, "behavior_events") == [(2, "ts_outside_partition"), (3, "ts_outside_partition")]


def test_first_broken_rule_wins(tmp_path):
    landing = tmp_path / "landing"
    write_bytes(landing, "behavior_events", csv_bytes(
        BEHAVIOR_HEADER,
        ",1,2026-12-01 10:00:00,teleport,1,1,1",   # null key before enum and ts
        "1,x,2026-12-01 10:00:00,teleport,1,1,1",  # bad type before enum
        "2,1,2026-12-01 10:00:00,teleport,1,1,1",  # enum before ts
    ))
    conn = connect(tmp_path)

    ingest(conn, landing)

    assert quarantine_rules(conn, "behavior_events") == [
        (1, "null_key"), (2, "bad_type:user_id"), (3, "unknown_enum:event_type"),
    ]


def test_original_row_keeps_the_text_as_read(tmp_path):
    landing = tmp_path / "landing"
    write_bytes(landing, "behavior_events", csv_bytes(BEHAVIOR_HEADER, "7,1, 2026-13-01 ,view,,1,1"))
    conn = connect(tmp_path)

    ingest(conn, landing)

    (original_row, reason) = conn.execute("select original_row, reason from raw.quarantine").fetchone()
    assert json.loads(original_row) == {
        "event_id": "7", "user_id": "1", "ts": " 2026-13-01 ", "event_type": "view",
        "category_id": None, "brand_id": "1", "item_id": "1",
    }
    assert "ts=" in reason and "TIMESTAMP" in reason


# --- duplicates and references ------------------------------------------------------------------

def test_duplicate_event_id_within_a_file_keeps_the_first_copy(tmp_path):
    landing = tmp_path / "landing"
    write_parquet(landing, "behavior_events", behavior_events_frame(ids=[1, 2, 1, 1]))
    conn = connect(tmp_path)

    ingest(conn, landing)

    assert quarantine_rules(conn, "behavior_events") == [(3, "duplicate_event_id"), (4, "duplicate_event_id")]
    assert conn.execute("select event_id, item_id from raw.behavior_events order by event_id").fetchall() == [
        (1, 500), (2, 501),
    ]


@pytest.mark.parametrize("ids", [[5, 6, 5], [5, 2**40, 5]], ids=["bitmap_check", "wide_key_range"])
def test_duplicate_event_id_found_whatever_the_key_range(tmp_path, ids):
    landing = tmp_path / "landing"
    write_parquet(landing, "behavior_events", behavior_events_frame(ids=ids))
    conn = connect(tmp_path)

    ingest(conn, landing)

    assert quarantine_rules(conn, "behavior_events") == [(3, "duplicate_event_id")]


def test_duplicate_event_id_across_files_of_one_day(tmp_path):
    landing = tmp_path / "landing"
    write_parquet(landing, "behavior_events", behavior_events_frame(ids=[1, 2]), name="a.parquet")
    write_csv(landing, "behavior_events", behavior_events_frame(ids=[2, 3]), name="b.csv")
    conn = connect(tmp_path)

    ingest(conn, landing)

    assert conn.execute("select source_file, row_number, rule, reason from raw.quarantine").fetchall() == [(
        "behavior_events/date=2026-11-01/b.csv", 1, "duplicate_event_id",
        "event_id=2 repeats within this day's files; kept the first copy at "
        "behavior_events/date=2026-11-01/a.parquet row 2",
    )]
    (original_row,) = conn.execute("select original_row from raw.quarantine").fetchone()
    assert json.loads(original_row)["event_id"] == "2" and json.loads(original_row)["item_id"] == "500"


def test_duplicate_whose_first_copy_is_invalid_is_accepted(tmp_path):
    landing = tmp_path / "landing"
    events = behavior_events_frame(ids=[1, 1]).assign(event_type=["teleport", "view"])
    write_parquet(landing, "behavior_events", events)
    conn = connect(tmp_path)

    ingest(conn, landing)

    assert quarantine_rules(conn, "behavior_events") == [(1, "unknown_enum:event_type")]
    assert conn.execute("select event_id, event_type from raw.behavior_events").fetchall() == [(1, "view")]


def test_duplicate_event_id_against_an_already_loaded_partition(tmp_path):
    landing = tmp_path / "landing"
    write_parquet(landing, "behavior_events", behavior_events_frame(DAY, ids=[1, 2]), DAY)
    write_parquet(landing, "behavior_events", behavior_events_frame(NEXT_DAY, ids=[2, 3]), NEXT_DAY)
    conn = connect(tmp_path)
    ingest(conn, landing, DAY)

    ingest(conn, landing, NEXT_DAY)

    assert quarantine_rules(conn, "behavior_events") == [(1, "duplicate_event_id")]
    (reason,) = conn.execute("select reason from raw.quarantine").fetchone()
    assert "already loaded in partition 2026-11-01" in reason
    # Re-ingesting the first day must not count its own rows as duplicates.
    ingest(conn, landing, DAY)
    assert conn.execute("select count(*) from raw.behavior_events").fetchone() == (3,)


def test_duplicate_dimension_key_within_a_day(tmp_path):
    landing = tmp_path / "landing"
    write_parquet(landing, "users", users_frame([1, 2]), name="a.parquet")
    write_parquet(landing, "users", users_frame([2], occupation="other"), name="b.parquet")
    write_parquet(landing, "campaigns", campaigns_frame([5, 5]))
    conn = connect(tmp_path)

    ingest(conn, landing)

    assert quarantine_rules(conn, "users") == [(1, "duplicate_key")]
    assert quarantine_rules(conn, "campaigns") == [(2, "duplicate_key")]
    assert conn.execute("select occupation from raw.users where user_id = 2").fetchall() == [("student",)]


def test_ad_referencing_no_campaign(tmp_path):
    landing = tmp_path / "landing"
    write_parquet(landing, "campaigns", campaigns_frame([1]))
    write_parquet(landing, "ads", ads_frame([10, 11], campaign_ids=[1, 99]))
    conn = connect(tmp_path)

    ingest(conn, landing)

    assert quarantine_rules(conn, "ads") == [(2, "unknown_campaign")]


def test_ad_referencing_a_quarantined_campaign_is_unknown(tmp_path):
    landing = tmp_path / "landing"
    write_parquet(landing, "campaigns", campaigns_frame([1]).assign(bid=-1.0))
    write_parquet(landing, "ads", ads_frame([10], campaign_ids=[1]))
    conn = connect(tmp_path)

    ingest(conn, landing)

    assert quarantine_rules(conn, "ads") == [(1, "unknown_campaign")]


def test_ad_event_referencing_no_ad(tmp_path):
    landing = tmp_path / "landing"
    with_parents(landing)
    write_parquet(landing, "ad_events", pd.concat([ad_events_frame(ids=[1]), ad_events_frame(ids=[2], ad_id=404)]))
    conn = connect(tmp_path)

    ingest(conn, landing)

    assert quarantine_rules(conn, "ad_events") == [(2, "unknown_ad")]


# --- the optional creatives table and the creative columns of ad_events --------------------------

def test_creatives_break_their_rules_by_name(tmp_path):
    landing = tmp_path / "landing"
    with_parents(landing)
    creatives = creatives_frame([70, 71, 72, 70, 73], ad_ids=[10, 404, 11, 10, 12])
    creatives.loc[2, "title"] = None  # a creative is its title: required
    write_csv(landing, "creatives", creatives)
    conn = connect(tmp_path)

    reports = ingest(conn, landing)

    assert quarantine_rules(conn, "creatives") == [(2, "unknown_ad"), (3, "null_value:title"), (4, "duplicate_key")]
    assert reports["creatives"].rows_accepted == 2


def test_ad_events_creative_columns_are_optional_and_checked(tmp_path):
    landing = tmp_path / "landing"
    with_parents(landing)
    write_parquet(landing, "creatives", creatives_frame([70, 71]))
    events = ad_events_frame(ids=[1, 2, 3, 4, 5, 6]).assign(creative_id=70, creative_propensity=0.5)
    events.loc[0, "creative_id"] = 999  # no such creative
    events.loc[1, "creative_propensity"] = 0.0
    events.loc[2, "creative_propensity"] = 1.2
    events.loc[3, ["creative_id", "creative_propensity"]] = None  # the ad's own title: allowed
    write_csv(landing, "ad_events", events)
    write_parquet(landing, "ad_events", ad_events_frame(ids=[7, 8]), name="part-1.parquet")  # no creative columns
    conn = connect(tmp_path)

    reports = ingest(conn, landing)

    assert quarantine_rules(conn, "ad_events") == [
        (1, "unknown_creative"), (2, "out_of_range:creative_propensity"), (3, "out_of_range:creative_propensity"),
    ]
    assert reports["ad_events"].rows_accepted == 5
    loaded = conn.sql("select event_id, creative_id from raw.ad_events order by event_id").fetchall()
    assert loaded == [(4, None), (5, 70), (6, 70), (7, None), (8, None)]


def test_a_log_without_creatives_loads_and_checks_nothing_for_them(tmp_path):
    landing = tmp_path / "landing"
    with_parents(landing)
    write_parquet(landing, "ad_events", ad_events_frame(ids=[1, 2]))
    conn = connect(tmp_path)

    reports = ingest(conn, landing)

    assert reports["creatives"].rows_in == 0 and not reports["creatives"].failed_files
    assert reports["ad_events"].rows_accepted == 2


# --- broken CSV lines --------------------------------------------------------------------------

def test_wrong_column_count_lines_are_quarantined(tmp_path):
    landing = tmp_path / "landing"
    write_bytes(landing, "behavior_events", csv_bytes(
        BEHAVIOR_HEADER,
        "1,1,2026-11-01 10:00:00,view,1,1,1",
        "2,1,2026-11-01 10:00:00,view,1,1",          # one column short
        "3,1,2026-11-01 10:00:00,view,1,1,1,extra",  # one column too many
        "4,1,2026-11-01 10:00:00,view,1,1,1",
    ))
    conn = connect(tmp_path)

    reports = ingest(conn, landing)

    assert quarantine_rules(conn, "behavior_events") == [(3, "malformed_line"), (4, "malformed_line")]
    report = reports["behavior_events"].files[0]
    assert (report.rows_in, report.rows_accepted, report.rows_quarantined) == (4, 2, 2)
    rows = conn.execute("select reason, original_row from raw.quarantine order by row_number").fetchall()
    assert rows[0][0].startswith("line 3: Expected Number of Columns: 7 Found: 6")
    assert json.loads(rows[1][1]) == {"raw_line": "3,1,2026-11-01 10:00:00,view,1,1,1,extra"}


def test_unterminated_quote_quarantines_the_rest_of_the_file_as_one_line(tmp_path):
    landing = tmp_path / "landing"
    write_bytes(landing, "behavior_events", csv_bytes(
        BEHAVIOR_HEADER,
        "1,1,2026-11-01 10:00:00,view,1,1,1",
        '2,1,2026-11-01 10:00:00,"view,1,1,1',
        "3,1,2026-11-01 10:00:00,view,1,1,1",
    ))
    conn = connect(tmp_path)

    ingest(conn, landing)

    assert quarantine_rules(conn, "behavior_events") == [(3, "malformed_line")]
    (original_row,) = conn.execute("select original_row from raw.quarantine").fetchone()
    # The text swallowed by the open quote is kept, so nothing disappears silently.
    assert "3,1,2026-11-01 10:00:00,view,1,1,1" in json.loads(original_row)["raw_line"]


def test_latin1_lines_are_quarantined_as_bad_encoding(tmp_path):
    landing = tmp_path / "landing"
    write_parquet(landing, "campaigns", campaigns_frame([1]))
    header = "ad_id,campaign_id,category_id,brand_id,price,title\n"
    data = header.encode() + "10,1,1,1,2.5,Caf\u00e9 cr\u00e8me\n11,1,1,1,2.5,plain\n".encode("latin-1")
    write_bytes(landing, "ads", data)
    conn = connect(tmp_path)

    reports = ingest(conn, landing)

    assert quarantine_rules(conn, "ads") == [(2, "bad_encoding")]
    (reason,) = conn.execute("select reason from raw.quarantine").fetchone()
    assert "UTF-8" in reason
    assert reports["ads"].rows_accepted == 1


def test_csv_with_extra_columns_loads_and_reports_them(tmp_path):
    landing = tmp_path / "landing"
    write_csv(landing, "users", users_frame([1]).assign(loyalty_tier="gold"))
    conn = connect(tmp_path)

    report = ingest(conn, landing)["users"]

    assert report.rows_accepted == 1 and report.files[0].ignored_columns == ("loyalty_tier",)


# --- whole files that cannot be read -----------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("truncated.parquet", None, "not a readable Parquet file"),
        ("garbage.parquet", b"this is not parquet at all, just text", "not a readable Parquet file"),
        ("empty.csv", b"", "file is empty"),
        ("empty.parquet", b"", "file is empty"),
        ("latin1_header.csv", "\u00e9vent_id,user_id\n".encode("latin-1"), "header row is not valid UTF-8"),
        ("short.csv", b"event_id,user_id,ts\n1,1,2026-11-01 10:00:00\n", "missing_column:event_type"),
        ("events.json", b"{}", "unsupported file type '.json'"),
    ],
)
def test_unreadable_file_fails_alone_and_the_rest_of_the_day_loads(tmp_path, name, content, error):
    landing = tmp_path / "landing"
    good = write_parquet(landing, "behavior_events", behavior_events_frame(ids=[1, 2]), name="good.parquet")
    if content is None:  # cut a real Parquet file in half
        content = good.read_bytes()[: good.stat().st_size // 2]
    write_bytes(landing, "behavior_events", content, name=name)
    conn = connect(tmp_path)

    report = ingest(conn, landing)["behavior_events"]

    (failed,) = report.failed_files
    assert failed.source_file.endswith(name) and error in failed.error
    assert report.rows_accepted == 2
    ledger = conn.execute(
        "select status, rows_in, error from raw.ingest_files where source_file like ?", [f"%{name}"]
    ).fetchone()
    assert ledger[0] == "failed" and ledger[1] is None and error in ledger[2]


def test_parquet_missing_a_required_column_fails(tmp_path):
    landing = tmp_path / "landing"
    write_parquet(landing, "campaigns", campaigns_frame([1]).drop(columns=["bid"]))
    conn = connect(tmp_path)

    report = ingest(conn, landing)["campaigns"]

    assert report.failed_files[0].error.startswith("missing_column:bid:")
    assert conn.execute("select count(*) from raw.campaigns").fetchone() == (0,)


def test_header_only_csv_loads_zero_rows(tmp_path):
    landing = tmp_path / "landing"
    write_bytes(landing, "behavior_events", BEHAVIOR_HEADER.encode())
    conn = connect(tmp_path)

    report = ingest(conn, landing)["behavior_events"]

    assert [(f.status, f.rows_in, f.rows_accepted) for f in report.files] == [("loaded", 0, 0)]


def test_reconciliation_detects_rows_lost_after_the_load(tmp_path):
    landing = tmp_path / "landing"
    write_parquet(landing, "behavior_events", behavior_events_frame(ids=[1, 2]))
    conn = connect(tmp_path)
    ingest_table_partition(conn, landing, "behavior_events", DAY)

    conn.execute("delete from raw.behavior_events where event_id = 1")

    reconciliation = reconcile_partition(conn, DAY)
    assert reconciliation["balanced"].tolist() == [False]
    assert reconciliation[["rows_accepted", "stored_accepted"]].iloc[0].tolist() == [2, 1]
