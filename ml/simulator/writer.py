"""Landing files in the raw data contract: one file per table and day, Parquet or CSV."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ml.settings import CONTRACT_TABLES

# The raw data contract of ARCHITECTURE.md, column for column.
CONTRACT_SCHEMAS: dict[str, pa.Schema] = {
    "users": pa.schema([
        ("user_id", pa.int64()), ("gender", pa.string()), ("age_band", pa.string()),
        ("city_tier", pa.int32()), ("occupation", pa.string()), ("first_seen", pa.date32()),
    ]),
    "campaigns": pa.schema([
        ("campaign_id", pa.int64()), ("advertiser_id", pa.int64()), ("objective", pa.string()),
        ("bid_type", pa.string()), ("bid", pa.float64()), ("daily_budget", pa.float64()),
        ("start_date", pa.date32()), ("end_date", pa.date32()), ("restricted", pa.bool_()),
    ]),
    "ads": pa.schema([
        ("ad_id", pa.int64()), ("campaign_id", pa.int64()), ("category_id", pa.int64()),
        ("brand_id", pa.int64()), ("price", pa.float64()), ("title", pa.string()),
    ]),
    # Optional: title variants of an ad, for dynamic creative selection.
    "creatives": pa.schema([("creative_id", pa.int64()), ("ad_id", pa.int64()), ("title", pa.string())]),
    "behavior_events": pa.schema([
        ("event_id", pa.int64()), ("user_id", pa.int64()), ("ts", pa.timestamp("us")),
        ("event_type", pa.string()), ("category_id", pa.int64()), ("brand_id", pa.int64()),
        ("item_id", pa.int64()),
    ]),
    "ad_events": pa.schema([
        ("event_id", pa.int64()), ("impression_id", pa.int64()), ("user_id", pa.int64()),
        ("ad_id", pa.int64()), ("ts", pa.timestamp("us")), ("event_type", pa.string()),
        ("slot", pa.int32()), ("cost", pa.float64()), ("propensity", pa.float64()),
        ("creative_id", pa.int64()), ("creative_propensity", pa.float64()),
    ]),
}
assert tuple(CONTRACT_SCHEMAS) == CONTRACT_TABLES


def _as_arrow(values: object, arrow_type: pa.DataType) -> pa.Array:
    if isinstance(values, pa.Array):
        return values.cast(arrow_type)
    return pa.array(values, type=arrow_type)


def labels(names: list[str] | tuple[str, ...], codes: object) -> pa.Array:
    """String column from integer codes without building a Python string per row."""
    return pa.array(list(names), type=pa.string()).take(pa.array(codes, type=pa.int32()))


def partition_dir(landing_dir: Path, table: str, day: dt.date) -> Path:
    return landing_dir / table / f"date={day.isoformat()}"


def clear_landing(landing_dir: Path) -> None:
    """Remove earlier contract partitions so a rerun replaces, never mixes with, old files."""
    for table in CONTRACT_TABLES:
        shutil.rmtree(landing_dir / table, ignore_errors=True)


def contract_table(table: str, columns: dict[str, object]) -> pa.Table:
    """Columns cast to the table's contract schema (a mismatch raises here)."""
    schema = CONTRACT_SCHEMAS[table]
    missing = set(schema.names) - set(columns)
    extra = set(columns) - set(schema.names)
    if missing or extra:
        raise ValueError(f"{table} rows do not match the contract: missing {sorted(missing)}, unexpected {sorted(extra)}")
    return pa.Table.from_arrays([_as_arrow(columns[field.name], field.type) for field in schema], schema=schema)


def write_partition(landing_dir: Path, table: str, day: dt.date, columns: dict[str, object] | pa.Table,
                    file_format: str) -> Path:
    """Write one table-day as part-0.<format>, cast to the contract schema (a mismatch raises here)."""
    if isinstance(columns, pa.Table):
        columns = {name: columns.column(name).combine_chunks() for name in columns.column_names}
    table_data = contract_table(table, columns)
    directory = partition_dir(landing_dir, table, day)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"part-0.{file_format}"
    if file_format == "parquet":
        pq.write_table(table_data, path, compression="zstd")
    elif file_format == "csv":
        pa_csv.write_csv(table_data, path)
    else:
        raise ValueError(f"unknown file format {file_format!r}; use 'parquet' or 'csv'")
    return path
