"""Events posted to the service: validated against the landing contract, turned into rows of the
stream the re-ranking reads, and written as landing files for the next daily run (the feedback loop)."""
from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from ml.ingest.contract import get_contract
from ml.settings import Settings, pseudonymize

EVENT_TABLES = ("behavior_events", "ad_events")
MAX_EVENTS_PER_TABLE = 10_000  # per request; larger deliveries belong in landing files
ARROW_TYPES = {"BIGINT": pa.int64(), "INTEGER": pa.int32(), "DOUBLE": pa.float64(), "VARCHAR": pa.string(),
               "TIMESTAMP": pa.timestamp("us"), "DATE": pa.date32(), "BOOLEAN": pa.bool_()}
STREAM_COLUMNS = ["user_key", "ts", "event_date", "event_type", "item_id", "category_id", "brand_id", "ad_id",
                  "event_id"]


def bigint(**kwargs):
    """A contract BIGINT (ids). ts is a naive UTC timestamp: an offset in the input is converted to UTC."""
    return Field(ge=-2**63, lt=2**63, **kwargs)


class BehaviorEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: int = bigint()
    user_id: int = bigint()
    ts: dt.datetime
    event_type: Literal["view", "click", "cart", "fav", "buy"]
    category_id: int | None = bigint(default=None)
    brand_id: int | None = bigint(default=None)
    item_id: int = bigint()


class AdEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: int = bigint()
    impression_id: int = bigint()
    user_id: int = bigint()
    ad_id: int = bigint()
    ts: dt.datetime
    event_type: Literal["impression", "click", "conversion"]
    slot: int = Field(ge=1, lt=2**31)
    cost: float = Field(ge=0, allow_inf_nan=False)
    propensity: float | None = Field(default=None, gt=0, le=1)


class EventBatch(BaseModel):
    """Either list may be empty; each event follows its landing table's contract columns."""
    model_config = ConfigDict(extra="forbid")
    behavior_events: list[BehaviorEvent] = Field(default=[], max_length=MAX_EVENTS_PER_TABLE)
    ad_events: list[AdEvent] = Field(default=[], max_length=MAX_EVENTS_PER_TABLE)


for _model, _table in ((BehaviorEvent, "behavior_events"), (AdEvent, "ad_events")):
    assert tuple(_model.model_fields) == get_contract(_table).column_names, f"{_table} drifted from its contract"


def empty_contract_frame(table: str) -> pd.DataFrame:
    return contract_frames(EventBatch())[table]


def contract_frames(batch: EventBatch) -> dict[str, pd.DataFrame]:
    """One frame per table in the contract's column order, ts as naive UTC."""
    frames = {}
    for table in EVENT_TABLES:
        contract = get_contract(table)
        frame = pd.DataFrame([event.model_dump() for event in getattr(batch, table)],
                             columns=list(contract.column_names))
        ts = pd.to_datetime(frame["ts"], utc=True) if len(frame) else pd.Series([], dtype="datetime64[us, UTC]")
        frame["ts"] = ts.dt.tz_localize(None).astype("datetime64[us]")
        frames[table] = frame
    return frames


def stream_rows(frames: dict[str, pd.DataFrame], salt: str, ad_catalog: pd.DataFrame) -> pd.DataFrame:
    """Rows in user_event_stream's shape (see its dbt model): behavior events, and ad clicks as
    'ad_click' events carrying the ad's category and brand (`ad_catalog` indexed by ad_id)."""
    behavior = frames["behavior_events"].assign(ad_id=pd.NA)
    clicks = frames["ad_events"][frames["ad_events"]["event_type"] == "click"]
    clicks = clicks.assign(event_type="ad_click", item_id=pd.NA).join(ad_catalog, on="ad_id")
    parts = [part for part in (behavior, clicks) if len(part)]
    if not parts:
        return pd.DataFrame(columns=STREAM_COLUMNS)
    rows = pd.concat(parts, ignore_index=True)
    rows["user_key"] = [pseudonymize(int(user_id), salt) for user_id in rows["user_id"]]
    rows["event_date"] = rows["ts"].dt.normalize()
    for column in ("item_id", "category_id", "brand_id", "ad_id"):
        rows[column] = rows[column].astype("Int64")
    return rows[STREAM_COLUMNS]


def write_landing_files(settings: Settings, frames: dict[str, pd.DataFrame]) -> list[Path]:
    """One Parquet file per table and event day, in the contract's columns and types, written to a
    hidden temporary name and renamed, so the landing sensor and the ingest never see half a file."""
    written = []
    for table, frame in frames.items():
        if frame.empty:
            continue
        contract = get_contract(table)
        schema = pa.schema([(column.name, ARROW_TYPES[column.sql_type]) for column in contract.columns])
        for day, rows in frame.groupby(frame["ts"].dt.date):
            folder = settings.landing_partition_dir(table, day)
            folder.mkdir(parents=True, exist_ok=True)
            name = f"serving-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}.parquet"
            temporary = folder / f".{name}.tmp"  # hidden: the ingest and the sensor skip dot files
            table_rows = pa.Table.from_pandas(rows[schema.names], schema=schema, preserve_index=False)
            pq.write_table(table_rows, temporary)
            with open(temporary, "rb") as handle:  # on disk before it becomes visible
                os.fsync(handle.fileno())
            os.replace(temporary, folder / name)
            written.append(folder / name)
    return written
