"""Events posted to the service: validated against the landing contract, made into one Arrow table per
contract table (serving/history.py turns them into the users' sequences), and written as landing
files for the next daily run (the feedback loop)."""
from __future__ import annotations

import datetime as dt
import functools
import os
import re
import uuid
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from ml.ingest.contract import get_contract
from ml.settings import Settings

EVENT_TABLES = ("behavior_events", "ad_events")
MAX_EVENTS_PER_TABLE = 10_000  # per request; larger deliveries belong in landing files
ARROW_TYPES = {"BIGINT": pa.int64(), "INTEGER": pa.int32(), "DOUBLE": pa.float64(), "VARCHAR": pa.string(),
               "TIMESTAMP": pa.timestamp("us"), "DATE": pa.date32(), "BOOLEAN": pa.bool_()}


# Strict: a JSON boolean, float or string is not an id, and ids fit the warehouse's BIGINT.
Int64 = Annotated[int, Field(strict=True, ge=-2**63, le=2**63 - 1)]
Slot = Annotated[int, Field(strict=True, ge=1, le=2**31 - 1)]  # contract INTEGER, slots count from 1

# The timestamps the service accepts, in the schema as a pattern (JSON Schema has no date range):
# RFC 3339 date and time, years 2000-2099, an optional UTC offset (none means UTC).
TS_PATTERN = (r"^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
              r"(\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?$")
TS_RANGE = (dt.datetime(2000, 1, 1), dt.datetime(2100, 1, 1))  # naive UTC, end excluded
_TS = re.compile(TS_PATTERN)


def _rfc3339(value):
    """JSON gives a string, which must match TS_PATTERN (pydantic alone would also take unix numbers,
    dates without a time and other spellings); Python callers may pass datetimes."""
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _TS.fullmatch(value):
        raise ValueError("ts must be an RFC 3339 date-time like 2026-11-15T09:00:00 or 2026-11-15T09:00:00+01:00 "
                         "(no offset: UTC), years 2000-2099")
    return value


def _naive_utc_in_range(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    if not TS_RANGE[0] <= value < TS_RANGE[1]:
        raise ValueError(f"ts in UTC must be in [{TS_RANGE[0]:%Y-%m-%d}, {TS_RANGE[1]:%Y-%m-%d})")
    return value


Timestamp = Annotated[dt.datetime, BeforeValidator(_rfc3339), AfterValidator(_naive_utc_in_range), WithJsonSchema(
    {"type": "string", "pattern": TS_PATTERN, "examples": ["2026-11-15T09:00:00"],
     "description": "RFC 3339 date-time, no offset meaning UTC; stored as naive UTC; years 2000-2099"})]
Propensity = Annotated[float, Field(strict=True, gt=0, le=1)]


class BehaviorEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: Int64
    user_id: Int64
    ts: Timestamp
    event_type: Literal["view", "click", "cart", "fav", "buy"]
    category_id: Int64 | None = None
    brand_id: Int64 | None = None
    item_id: Int64


class AdEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: Int64
    impression_id: Int64
    user_id: Int64
    ad_id: Int64
    ts: Timestamp
    event_type: Literal["impression", "click", "conversion"]
    slot: Slot
    cost: Annotated[float, Field(strict=True, ge=0, le=1e12, allow_inf_nan=False)]
    propensity: Propensity | None = Field(default=None, description=(
        "for an impression: the probability the serving policy showed this ad in this slot, as GET "
        "/users/{user}/ads answered it (its ads' `propensity`); lands with the event for off-policy evaluation"))
    creative_id: Int64 | None = Field(default=None, description=(
        "the creative shown (GET /users/{user}/ads: the ad's `creative_id`); empty for the ad's own title"))
    creative_propensity: Propensity | None = Field(default=None, description=(
        "the probability the creative selector picked that creative (the ad's `creative_probability`)"))


class EventBatch(BaseModel):
    """Either list may be empty; each event follows its landing table's contract columns."""
    model_config = ConfigDict(extra="forbid")
    behavior_events: list[BehaviorEvent] = Field(default=[], max_length=MAX_EVENTS_PER_TABLE)
    ad_events: list[AdEvent] = Field(default=[], max_length=MAX_EVENTS_PER_TABLE)


for _model, _table in ((BehaviorEvent, "behavior_events"), (AdEvent, "ad_events")):
    assert tuple(_model.model_fields) == get_contract(_table).column_names, f"{_table} drifted from its contract"


@functools.cache
def contract_schema(table: str) -> pa.Schema:
    return pa.schema([(column.name, ARROW_TYPES[column.sql_type]) for column in get_contract(table).columns])


def contract_tables(*batches: EventBatch) -> dict[str, pa.Table]:
    """One Arrow table per contract table holding the batches' events in order, in the contract's
    columns and types (ts as naive UTC, as validated): what is landed as Parquet, and what the
    users' histories are made of. One table for a whole group of requests, built from the values
    pydantic already checked (a pandas frame cost ten times as much per request)."""
    tables = {}
    for table in EVENT_TABLES:
        events, schema = [event for batch in batches for event in getattr(batch, table)], contract_schema(table)
        tables[table] = pa.table({name: [getattr(event, name) for event in events] for name in schema.names},
                                 schema=schema)
    return tables


def event_days(rows: pa.Table) -> np.ndarray:
    """The day of each event (datetime64[D]): landing files are partitioned by it."""
    return rows.column("ts").to_numpy().astype("datetime64[D]")


def _fsync_directory(folder: Path) -> None:
    """Makes the names in `folder` (a rename, a new subfolder) durable, not only the files' bytes."""
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _make_durable_folder(folder: Path) -> None:
    """mkdir -p, syncing each parent whose entry for a new folder would otherwise be lost in a crash."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        new.mkdir(exist_ok=True)
        _fsync_directory(new.parent)


def write_landing_files(settings: Settings, tables: dict[str, pa.Table]) -> list[Path]:
    """One Parquet file per table and event day, in the contract's columns and types. Written to a
    hidden temporary name, fsynced, renamed, and the folder fsynced: the landing sensor and the ingest
    never see half a file, and once this returns (and the client gets its 200) a crash loses nothing."""
    written = []
    for table, rows in tables.items():
        if not rows.num_rows:
            continue
        days = event_days(rows)
        for day in np.unique(days):
            folder = settings.landing_partition_dir(table, day.item())
            _make_durable_folder(folder)
            name = f"serving-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}.parquet"
            temporary = folder / f".{name}.tmp"  # hidden: the ingest and the sensor skip dot files
            try:
                pq.write_table(rows.filter(pa.array(days == day)), temporary)
                with open(temporary, "rb") as handle:  # its bytes on disk before it becomes visible
                    os.fsync(handle.fileno())
                os.replace(temporary, folder / name)
            finally:
                temporary.unlink(missing_ok=True)  # a failed write (disk full) leaves no debris
            _fsync_directory(folder)  # and the rename itself
            written.append(folder / name)
    return written
