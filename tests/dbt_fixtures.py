"""A tiny hand-written raw warehouse for dbt tests, created directly with SQL.

The rows below are a story the tests assert on (see tests/test_dbt_project.py); the comments say
which rule each row exercises. Tables follow the raw contract in ARCHITECTURE.md: contract
columns plus _partition_date, _source_file and _loaded_at, the way the ingest assets write them.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Iterable

import duckdb

AS_OF_DATE = dt.date(2026, 11, 5)

RAW_TABLE_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "users": [
        ("user_id", "BIGINT"), ("gender", "VARCHAR"), ("age_band", "VARCHAR"),
        ("city_tier", "INTEGER"), ("occupation", "VARCHAR"), ("first_seen", "DATE"),
    ],
    "campaigns": [
        ("campaign_id", "BIGINT"), ("advertiser_id", "BIGINT"), ("objective", "VARCHAR"),
        ("bid_type", "VARCHAR"), ("bid", "DOUBLE"), ("daily_budget", "DOUBLE"),
        ("start_date", "DATE"), ("end_date", "DATE"),
    ],
    "ads": [
        ("ad_id", "BIGINT"), ("campaign_id", "BIGINT"), ("category_id", "BIGINT"),
        ("brand_id", "BIGINT"), ("price", "DOUBLE"), ("title", "VARCHAR"),
    ],
    "creatives": [("creative_id", "BIGINT"), ("ad_id", "BIGINT"), ("title", "VARCHAR")],
    "behavior_events": [
        ("event_id", "BIGINT"), ("user_id", "BIGINT"), ("ts", "TIMESTAMP"), ("event_type", "VARCHAR"),
        ("category_id", "BIGINT"), ("brand_id", "BIGINT"), ("item_id", "BIGINT"),
    ],
    "ad_events": [
        ("event_id", "BIGINT"), ("impression_id", "BIGINT"), ("user_id", "BIGINT"), ("ad_id", "BIGINT"),
        ("ts", "TIMESTAMP"), ("event_type", "VARCHAR"), ("slot", "INTEGER"), ("cost", "DOUBLE"),
        ("propensity", "DOUBLE"),
    ],
}
LOAD_COLUMNS = [("_partition_date", "DATE"), ("_source_file", "VARCHAR"), ("_loaded_at", "TIMESTAMP")]
EVENT_TABLES = ("behavior_events", "ad_events")


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# Dimension rows carry the landing day as their last element (the version date).
USERS = [
    (1, "F", "25-34", 1, "student", d("2026-10-20"), d("2026-10-25")),
    (2, "M", "35-44", 2, "engineer", d("2026-10-25"), d("2026-10-25")),
    (3, "U", "18-24", 3, "other", d("2026-11-01"), d("2026-11-01")),
    # user 1 moves city: tier 2 from 2026-11-03 on, tier 1 before
    (1, "F", "25-34", 2, "student", d("2026-10-20"), d("2026-11-03")),
]
CAMPAIGNS = [
    (10, 100, "click", "cpc", 0.5, 100.0, d("2026-10-01"), d("2026-12-31"), d("2026-10-25")),
    (20, 200, "conversion", "cpa", 5.0, 500.0, d("2026-10-01"), d("2026-12-31"), d("2026-10-25")),
    # campaign 10 raises its bid from 2026-11-03 on
    (10, 100, "click", "cpc", 0.8, 100.0, d("2026-10-01"), d("2026-12-31"), d("2026-11-03")),
]
ADS = [
    (100, 10, 5, 50, 19.9, "cheap sneakers", d("2026-10-25")),
    (200, 20, 6, 60, 99.0, "headphones", d("2026-10-25")),
    (300, 10, 5, 51, 29.0, "running socks", d("2026-11-02")),  # lands later: no snapshot before 11-02
]
# Two title variants of ad 100; its impressions 3 and 5 showed 700, impression 4 showed 701 and
# impression 7 the ad's own title (creative_id NULL).
CREATIVES = [
    (700, 100, "cheap sneakers | shop now", d("2026-10-25")),
    (701, 100, "cheap sneakers | save today", d("2026-10-25")),
]
CREATIVE_OF_IMPRESSION = {3: 700, 4: 701, 5: 700}
BEHAVIOR_EVENTS = [
    # user 1 on 11-02: 10:00, 10:20, 10:50 (gap of exactly 30 min: same session), 11:25 (new session)
    (1001, 1, ts("2026-11-02 10:00"), "view", 5, 50, 5001),
    (1002, 1, ts("2026-11-02 10:20"), "view", 5, 50, 5002),
    (1003, 1, ts("2026-11-02 10:50"), "cart", 5, 50, 5002),
    (1004, 1, ts("2026-11-02 11:25"), "buy", 5, 50, 5002),
    (1005, 2, ts("2026-11-01 20:00"), "view", 6, 60, 6001),
    (1006, 2, ts("2026-11-03 09:00"), "fav", 6, 60, 6002),
    (1007, 3, ts("2026-11-04 15:00"), "view", 5, 51, 5101),
    (1008, 1, ts("2026-10-26 09:00"), "view", 6, 60, 6001),  # falls out of 7-day windows after 11-02
]
# (event_id, impression_id, user_id, ad_id, ts, event_type, slot, cost, propensity)
AD_EVENTS = [
    # impression 1: click, then a conversion the next day -> converted; conversion label final
    (1, 1, 1, 200, ts("2026-10-26 10:00"), "impression", 1, 0.0, 0.2),
    (2, 1, 1, 200, ts("2026-10-26 10:02"), "click", 1, 0.0, None),
    (3, 1, 1, 200, ts("2026-10-27 15:00"), "conversion", 1, 5.0, None),
    # impression 2: click, conversion 9 days later -> outside the 7-day window, not attributed
    (4, 2, 2, 200, ts("2026-10-25 11:00"), "impression", 2, 0.0, 0.5),
    (5, 2, 2, 200, ts("2026-10-25 11:05"), "click", 2, 0.0, None),
    (6, 2, 2, 200, ts("2026-11-03 12:00"), "conversion", 2, 5.0, None),
    # impressions 3 and 4 of ad 100 to user 1, both clicked; the conversion carries impression 3
    # but last-click attribution credits impression 4
    (7, 3, 1, 100, ts("2026-11-01 12:00"), "impression", 1, 0.0, 0.3),
    (8, 3, 1, 100, ts("2026-11-01 12:05"), "click", 1, 0.5, None),
    (9, 4, 1, 100, ts("2026-11-02 08:00"), "impression", 2, 0.0, 0.4),
    (10, 4, 1, 100, ts("2026-11-02 08:01"), "click", 2, 0.5, None),
    (11, 3, 1, 100, ts("2026-11-03 09:00"), "conversion", 1, 0.0, None),
    # impression 5: the click comes 25 hours later -> outside the 24-hour click window
    (12, 5, 3, 100, ts("2026-11-01 10:00"), "impression", 1, 0.0, 0.1),
    (13, 5, 3, 100, ts("2026-11-02 11:00"), "click", 1, 0.5, None),
    # impression 6: late on the as-of day -> click window still open, not a training row
    (14, 6, 2, 300, ts("2026-11-05 23:30"), "impression", 1, 0.0, 0.6),
    # impression 7: not clicked; the leakage test adds events on and after its day
    (15, 7, 2, 100, ts("2026-11-04 14:00"), "impression", 3, 0.0, 0.25),
    # impression 8: clicked within the window, the ad landed on 11-02
    (16, 8, 3, 300, ts("2026-11-04 09:00"), "impression", 1, 0.0, 0.35),
    (17, 8, 3, 300, ts("2026-11-04 09:30"), "click", 1, 0.5, None),
]


# Optional contract columns the story rows leave NULL (ingest adds them to raw as well).
OPTIONAL_RAW_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "campaigns": [("restricted", "BOOLEAN")],
    "ad_events": [("creative_id", "BIGINT"), ("creative_propensity", "DOUBLE")],
}


def _create_tables(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("create schema if not exists raw")
    conn.execute("create schema if not exists ml")
    for table, columns in RAW_TABLE_COLUMNS.items():
        all_columns = columns + LOAD_COLUMNS + OPTIONAL_RAW_COLUMNS.get(table, [])
        column_sql = ", ".join(f"{name} {type_}" for name, type_ in all_columns)
        conn.execute(f"create table if not exists raw.{table} ({column_sql})")
    conn.execute(
        "create table if not exists ml.ad_candidates (user_key VARCHAR, ad_id BIGINT, schedule_date DATE)"
    )


def insert_rows(path: Path | str, table: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """Append contract rows to raw.<table>.

    Event rows land on the day of their ts; dimension rows carry their landing day as an extra
    last element.
    """
    columns = [name for name, _ in RAW_TABLE_COLUMNS[table]]
    placeholders = ", ".join("?" for _ in range(len(columns) + len(LOAD_COLUMNS)))
    records = []
    for row in rows:
        if table in EVENT_TABLES:
            values, partition_date = tuple(row), row[columns.index("ts")].date()
        else:
            values, partition_date = tuple(row[:-1]), row[-1]
        loaded_at = dt.datetime.combine(partition_date + dt.timedelta(days=1), dt.time(1, 0))
        source_file = f"landing/{table}/date={partition_date.isoformat()}/part-0.csv"
        records.append(values + (partition_date, source_file, loaded_at))
    with duckdb.connect(str(path)) as conn:
        _create_tables(conn)
        names = ", ".join(columns + [name for name, _ in LOAD_COLUMNS])
        conn.executemany(f"insert into raw.{table} ({names}) values ({placeholders})", records)


def write_candidates(path: Path | str, candidates: Iterable[tuple[str, int, dt.date]]) -> None:
    with duckdb.connect(str(path)) as conn:
        _create_tables(conn)
        conn.execute("delete from ml.ad_candidates")
        conn.executemany("insert into ml.ad_candidates values (?, ?, ?)", list(candidates))


def create_raw_warehouse(path: Path | str) -> Path:
    """Create the raw schema with the story rows above (and an empty ml.ad_candidates)."""
    path = Path(path)
    with duckdb.connect(str(path)) as conn:
        _create_tables(conn)
    insert_rows(path, "users", USERS)
    insert_rows(path, "campaigns", CAMPAIGNS)
    insert_rows(path, "ads", ADS)
    insert_rows(path, "behavior_events", BEHAVIOR_EVENTS)
    insert_rows(path, "creatives", CREATIVES)
    insert_rows(path, "ad_events", AD_EVENTS)
    with duckdb.connect(str(path)) as conn:
        for impression_id, creative_id in CREATIVE_OF_IMPRESSION.items():
            conn.execute("update raw.ad_events set creative_id = ?, creative_propensity = 0.5 "
                         "where impression_id = ?", [creative_id, impression_id])
    return path
