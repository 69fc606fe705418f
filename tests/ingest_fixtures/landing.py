"""Tiny contract-conformant landing days written into a tmp dir, plus helpers to plant bad files."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

DAY = dt.date(2026, 11, 1)
NEXT_DAY = DAY + dt.timedelta(days=1)


def at(day: dt.date, hour: int, minute: int = 0) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.combine(day, dt.time(hour, minute)))


def campaigns_frame(ids: list[int] | None = None, bid: float = 0.5) -> pd.DataFrame:
    ids = ids or [1, 2]
    return pd.DataFrame({
        "campaign_id": ids,
        "advertiser_id": [100 + i for i in ids],
        "objective": ["click" if i % 2 else "conversion" for i in ids],
        "bid_type": ["cpc" if i % 2 else "cpa" for i in ids],
        "bid": [bid] * len(ids),
        "daily_budget": [100.0] * len(ids),
        "start_date": [DAY] * len(ids),
        "end_date": [DAY + dt.timedelta(days=30)] * len(ids),
    })


def ads_frame(ids: list[int] | None = None, campaign_ids: list[int] | None = None) -> pd.DataFrame:
    ids = ids or [10, 11, 12]
    campaign_ids = campaign_ids or [1 + i % 2 for i in range(len(ids))]
    return pd.DataFrame({
        "ad_id": ids,
        "campaign_id": campaign_ids,
        "category_id": [7] * len(ids),
        "brand_id": [8] * len(ids),
        "price": [19.99] * len(ids),
        "title": [f"ad number {i}, now with commas and \"quotes\"" for i in ids],
    })


def creatives_frame(ids: list[int] | None = None, ad_ids: list[int] | None = None) -> pd.DataFrame:
    ids = ids or [70, 71]
    ad_ids = ad_ids or [10] * len(ids)
    return pd.DataFrame({"creative_id": ids, "ad_id": ad_ids, "title": [f"Ad 10 | variant {i}" for i in ids]})


def users_frame(ids: list[int] | None = None, occupation: str = "student") -> pd.DataFrame:
    ids = ids or [1000, 1001, 1002]
    return pd.DataFrame({
        "user_id": ids,
        "gender": ["M", "F", "U"][: len(ids)] + ["U"] * max(0, len(ids) - 3),
        "age_band": ["25-34"] * len(ids),
        "city_tier": [2] * len(ids),
        "occupation": [occupation] * len(ids),
        "first_seen": [DAY] * len(ids),
    })


def behavior_events_frame(day: dt.date = DAY, ids: list[int] | None = None) -> pd.DataFrame:
    ids = ids or [1, 2, 3, 4]
    return pd.DataFrame({
        "event_id": ids,
        "user_id": [1000 + i % 3 for i in range(len(ids))],
        "ts": [at(day, 8 + i % 12, i % 60) for i in range(len(ids))],
        "event_type": [["view", "click", "cart", "fav", "buy"][i % 5] for i in range(len(ids))],
        "category_id": [7] * len(ids),
        "brand_id": [8] * len(ids),
        "item_id": [500 + i for i in range(len(ids))],
    })


def ad_events_frame(day: dt.date = DAY, ids: list[int] | None = None, ad_id: int = 10) -> pd.DataFrame:
    ids = ids or [1, 2, 3]
    return pd.DataFrame({
        "event_id": ids,
        "impression_id": [900 + i // 2 for i in range(len(ids))],
        "user_id": [1000] * len(ids),
        "ad_id": [ad_id] * len(ids),
        "ts": [at(day, 12, i) for i in range(len(ids))],
        "event_type": [["impression", "click", "conversion"][i % 3] for i in range(len(ids))],
        "slot": [1] * len(ids),
        "cost": [0.0] * len(ids),
        "propensity": [0.25] * len(ids),
    })


def partition_folder(landing: Path, table: str, day: dt.date = DAY) -> Path:
    folder = landing / table / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_parquet(landing: Path, table: str, frame: pd.DataFrame, day: dt.date = DAY, name: str = "part-0.parquet") -> Path:
    path = partition_folder(landing, table, day) / name
    frame.to_parquet(path, index=False)
    return path


def write_csv(landing: Path, table: str, frame: pd.DataFrame, day: dt.date = DAY, name: str = "part-0.csv") -> Path:
    path = partition_folder(landing, table, day) / name
    frame.to_csv(path, index=False)
    return path


def write_bytes(landing: Path, table: str, data: bytes, day: dt.date = DAY, name: str = "part-0.csv") -> Path:
    path = partition_folder(landing, table, day) / name
    path.write_bytes(data)
    return path


def write_valid_day(landing: Path, day: dt.date = DAY) -> None:
    """Dimensions as Parquet, events as CSV, so both readers run on the happy path."""
    write_parquet(landing, "campaigns", campaigns_frame(), day)
    write_parquet(landing, "ads", ads_frame(), day)
    write_csv(landing, "users", users_frame(), day)
    write_csv(landing, "behavior_events", behavior_events_frame(day), day)
    write_parquet(landing, "ad_events", ad_events_frame(day), day)


def connect(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(tmp_path / "warehouse.duckdb"))


def quarantine_rules(conn: duckdb.DuckDBPyConnection, table: str) -> list[tuple[int, str]]:
    return conn.execute(
        "select row_number, rule from raw.quarantine where table_name = ? order by source_file, row_number", [table]
    ).fetchall()
