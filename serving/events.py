"""Events posted to the service: validated against the landing contract, added to the stream the
re-ranking reads, and written as landing files for the next daily run (the feedback loop)."""
from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from ml.ingest.contract import get_contract
from ml.settings import Settings, pseudonymize

ARROW_TYPES = {"BIGINT": pa.int64(), "INTEGER": pa.int32(), "DOUBLE": pa.float64(), "VARCHAR": pa.string(),
               "TIMESTAMP": pa.timestamp("us"), "DATE": pa.date32(), "BOOLEAN": pa.bool_()}


class BehaviorEvent(BaseModel):
    event_id: int
    user_id: int
    ts: dt.datetime
    event_type: Literal["view", "click", "cart", "fav", "buy"]
    category_id: int | None = None
    brand_id: int | None = None
    item_id: int


class AdEvent(BaseModel):
    event_id: int
    impression_id: int
    user_id: int
    ad_id: int
    ts: dt.datetime
    event_type: Literal["impression", "click", "conversion"]
    slot: int = Field(ge=1)
    cost: float = Field(ge=0)
    propensity: float | None = Field(default=None, gt=0, le=1)


class EventBatch(BaseModel):
    behavior_events: list[BehaviorEvent] = []
    ad_events: list[AdEvent] = []


def _naive_utc(ts: pd.Series) -> pd.Series:
    ts = pd.to_datetime(ts)
    return ts.dt.tz_convert("UTC").dt.tz_localize(None) if ts.dt.tz is not None else ts


def contract_frame(events: list[BaseModel]) -> pd.DataFrame:
    frame = pd.DataFrame([event.model_dump() for event in events])
    frame["ts"] = _naive_utc(frame["ts"])
    return frame


def stream_rows(batch: EventBatch, salt: str, ad_catalog: pd.DataFrame) -> pd.DataFrame:
    """Rows in user_event_stream's shape: behavior events, and ad clicks as 'ad_click' events carrying
    the ad's category and brand (`ad_catalog`: ad_id, category_id, brand_id)."""
    parts = []
    if batch.behavior_events:
        behavior = contract_frame(batch.behavior_events).assign(ad_id=pd.NA)
        parts.append(behavior)
    clicks = [event for event in batch.ad_events if event.event_type == "click"]
    if clicks:
        ad_clicks = contract_frame(clicks).assign(event_type="ad_click", item_id=pd.NA)
        ad_clicks = ad_clicks.merge(ad_catalog.drop_duplicates("ad_id"), on="ad_id", how="left")
        parts.append(ad_clicks)
    if not parts:
        return pd.DataFrame(columns=["user_key", "ts", "event_date", "event_type", "item_id", "category_id",
                                     "brand_id", "ad_id", "event_id"])
    rows = pd.concat(parts, ignore_index=True)
    rows["user_key"] = [pseudonymize(int(user_id), salt) for user_id in rows["user_id"]]
    rows["event_date"] = rows["ts"].dt.normalize()
    return rows[["user_key", "ts", "event_date", "event_type", "item_id", "category_id", "brand_id", "ad_id",
                 "event_id"]]


def write_landing_files(settings: Settings, batch: EventBatch) -> list[Path]:
    """One Parquet file per table and event day, in the contract's columns and types, written to a
    hidden temporary name and renamed, so the landing sensor never sees half a file."""
    written = []
    for table, events in (("behavior_events", batch.behavior_events), ("ad_events", batch.ad_events)):
        if not events:
            continue
        contract = get_contract(table)
        schema = pa.schema([(column.name, ARROW_TYPES[column.sql_type]) for column in contract.columns])
        frame = contract_frame(events)
        for day, rows in frame.groupby(frame["ts"].dt.date):
            folder = settings.landing_partition_dir(table, day)
            folder.mkdir(parents=True, exist_ok=True)
            name = f"serving-{uuid.uuid4().hex}.parquet"
            temporary = folder / f".{name}.tmp"  # hidden: ingest skips dot files
            pq.write_table(pa.Table.from_pandas(rows[schema.names], schema=schema, preserve_index=False), temporary)
            os.replace(temporary, folder / name)
            written.append(folder / name)
    return written
