"""DDL for the raw schema: one table per contract table plus the quarantine and the file ledger."""
from __future__ import annotations

import duckdb

from ml.ingest.contract import CONTRACT_TABLES, CONTRACTS, TableContract

LOAD_COLUMNS = (("_partition_date", "DATE"), ("_source_file", "VARCHAR"), ("_loaded_at", "TIMESTAMP"))

QUARANTINE_DDL = """
create table if not exists raw.quarantine (
    table_name varchar not null,
    partition_date date not null,
    source_file varchar not null,
    row_number bigint,
    rule varchar not null,
    reason varchar not null,
    original_row varchar,
    quarantined_at timestamp not null
)"""

INGEST_FILES_DDL = """
create table if not exists raw.ingest_files (
    table_name varchar not null,
    partition_date date not null,
    source_file varchar not null,
    rows_in bigint,
    rows_accepted bigint not null,
    rows_quarantined bigint not null,
    status varchar not null,
    error varchar,
    loaded_at timestamp not null
)"""


def raw_table_columns(contract: TableContract) -> list[tuple[str, str]]:
    return [(column.name, column.sql_type) for column in contract.columns] + list(LOAD_COLUMNS)


def ensure_raw_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create raw.* if missing and add optional contract columns that arrived after the table was made
    (older files read them as NULL); fail loudly if an existing raw table otherwise differs from the contract."""
    conn.execute("create schema if not exists raw")
    expected = {table: raw_table_columns(CONTRACTS[table]) for table in CONTRACT_TABLES}
    for table, columns in expected.items():
        column_sql = ", ".join(f'"{name}" {sql_type}' for name, sql_type in columns)
        conn.execute(f"create table if not exists raw.{table} ({column_sql})")
    existing = _raw_columns(conn)
    for table, columns in expected.items():
        for column in CONTRACTS[table].columns:
            if not column.required and column.name not in existing.get(table, {}):
                conn.execute(f'alter table raw.{table} add column "{column.name}" {column.sql_type}')
    existing = _raw_columns(conn)
    for table, columns in expected.items():
        if existing.get(table) != dict(columns):
            raise RuntimeError(
                f"raw.{table} has columns {existing.get(table)} but the contract expects {dict(columns)}; "
                f"migrate or drop raw.{table} and re-ingest its partitions."
            )
    conn.execute(QUARANTINE_DDL)
    conn.execute(INGEST_FILES_DDL)


def _raw_columns(conn: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """raw table -> column name -> type (inserts name their columns, so the order does not matter)."""
    existing: dict[str, dict[str, str]] = {}
    for table, name, sql_type in conn.execute(
        "select table_name, column_name, data_type from information_schema.columns where table_schema = 'raw'"
    ).fetchall():
        existing.setdefault(table, {})[name] = sql_type
    return existing
