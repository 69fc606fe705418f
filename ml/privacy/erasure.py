"""Right to erasure: forget users everywhere adflow keeps data, and keep them out of later files.

`forget_users` removes every row of the users (by raw user_id or by pseudonym) from
  - every Parquet and CSV file under the data root with a user_id or user_key column: landing
    files, schedules, A/B logs, reports, the simulator's ground truth, MLflow artifacts;
  - every warehouse table with a user_id or user_key column (raw, staging, marts, ml.*), and
    raw.quarantine rows whose original row names them;
then rewrites the warehouse into a fresh file, so deleted rows do not linger in freed blocks. It
records the request in privacy.erasure_audit (pseudonym, times and row counts: never the raw id)
and adds the pseudonym to privacy.suppressed_users, which `suppress_in_landing` applies to files
that land later (before ingest). A running service keeps what it loaded until POST /reload.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.privacy.pseudonyms import pseudonymize, register_pseudonym_function
from ml.settings import Settings
from ml.warehouse import connect, table_exists

log = logging.getLogger(__name__)

SUPPRESSED_TABLE, AUDIT_TABLE = "privacy.suppressed_users", "privacy.erasure_audit"
USER_COLUMNS = ("user_id", "user_key")
USER_TABLES = ("users", "behavior_events", "ad_events")  # contract tables that carry user_id


@dataclass
class ErasureReport:
    users: int
    file_rows: dict[str, int] = field(default_factory=dict)  # file (relative to the data root) -> rows removed
    table_rows: dict[str, int] = field(default_factory=dict)  # table -> rows removed

    @property
    def rows_removed(self) -> int:
        return sum(self.file_rows.values()) + sum(self.table_rows.values())


def forget_users(settings: Settings, user_ids: list[int], now: dt.datetime | None = None) -> ErasureReport:
    """Remove every trace of `user_ids` under the data root and suppress them from later landings."""
    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    ids = sorted({int(user_id) for user_id in user_ids})
    keys = sorted({pseudonymize(user_id, settings.pseudonym_key) for user_id in ids})
    report = ErasureReport(users=len(ids))
    if settings.warehouse_path.exists():
        with connect(settings.warehouse_path) as conn:
            report.table_rows = erase_from_warehouse(conn, ids, keys)
            _record(conn, keys, now, report.table_rows)
        rewrite_database(settings.warehouse_path)
    warehouse_files = {settings.warehouse_path, settings.warehouse_path.with_name(settings.warehouse_path.name + ".wal")}
    for path in sorted(settings.data_root.rglob("*")):
        if path.suffix in (".parquet", ".csv") and path.is_file() and path not in warehouse_files:
            removed = erase_from_file(path, set(ids), set(keys))
            if removed:
                report.file_rows[str(path.relative_to(settings.data_root))] = removed
    log.info("forgot %d users: %d rows from %d tables and %d files", len(ids), report.rows_removed,
             sum(1 for n in report.table_rows.values() if n), len(report.file_rows))
    return report


def erase_from_warehouse(conn: duckdb.DuckDBPyConnection, ids: list[int], keys: list[str]) -> dict[str, int]:
    """Delete the users' rows from every base table outside the privacy schema; table -> rows deleted."""
    removed: dict[str, int] = {}
    columns = conn.execute(
        "select c.table_schema, c.table_name, c.column_name from information_schema.columns c "
        "join information_schema.tables t using (table_catalog, table_schema, table_name) "
        "where t.table_type = 'BASE TABLE' and c.table_schema <> 'privacy' and c.column_name in ('user_id', 'user_key') "
        "and c.table_catalog = current_database()").fetchall()
    for schema, table, column in columns:
        values = ids if column == "user_id" else keys
        (count,) = conn.execute(f'delete from "{schema}"."{table}" where "{column}" in (select unnest($values))',
                                {"values": values}).fetchall()[0]
        removed[f"{schema}.{table}"] = removed.get(f"{schema}.{table}", 0) + int(count)
    if table_exists(conn, "raw.quarantine"):  # a rejected row keeps its original text: it names the user too
        (count,) = conn.execute(
            "delete from raw.quarantine where table_name in (select unnest($tables)) "
            "and try_cast(json_extract_string(original_row, '$.user_id') as bigint) in (select unnest($ids))",
            {"tables": list(USER_TABLES), "ids": ids}).fetchall()[0]
        removed["raw.quarantine"] = int(count)
    return removed


def _record(conn: duckdb.DuckDBPyConnection, keys: list[str], now: dt.datetime, removed: dict[str, int]) -> None:
    ensure_privacy_tables(conn)
    rows = sum(removed.values())
    for key in keys:
        conn.execute(f"insert into {AUDIT_TABLE} values (?, ?, ?)", [key, now, rows])
        conn.execute(f"insert into {SUPPRESSED_TABLE} select ?, ? where ? not in (select pseudonym from {SUPPRESSED_TABLE})",
                     [key, now, key])


def ensure_privacy_tables(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("create schema if not exists privacy")
    conn.execute(f"create table if not exists {SUPPRESSED_TABLE} (pseudonym varchar primary key, suppressed_at timestamp)")
    conn.execute(f"create table if not exists {AUDIT_TABLE} "
                 "(pseudonym varchar not null, requested_at timestamp not null, warehouse_rows_removed bigint)")


def rewrite_database(path: Path) -> None:
    """Copy the database into a fresh file and swap it in: DuckDB reuses freed blocks but does not
    zero them, so deleted rows could otherwise still be read from the file's bytes."""
    fresh = path.with_name(path.stem + ".rewrite.duckdb")
    fresh.unlink(missing_ok=True)
    with duckdb.connect() as conn:
        register_pseudonym_function(conn)  # staging views call it
        conn.execute(f"attach '{path}' as old (read_only)")
        conn.execute(f"attach '{fresh}' as fresh")
        conn.execute("copy from database old to fresh")
        conn.execute("detach old")
        conn.execute("detach fresh")
    os.replace(fresh, path)


def erase_from_file(path: Path, ids: set[int], keys: set[str]) -> int:
    """Rewrite a Parquet or CSV file without the users' rows (atomically); rows removed."""
    if path.suffix == ".parquet":
        names = set(pq.read_schema(path).names) & set(USER_COLUMNS)
        if not names:
            return 0
        table = pq.read_table(path)
        keep = None
        for name in names:
            values = list(ids) if name == "user_id" else list(keys)
            column = table.column(name)
            if name == "user_id":
                column = pc.cast(column, "int64", safe=False)
            hit = pc.fill_null(pc.is_in(column, value_set=pa.array(values, type=column.type)), False)
            keep = pc.invert(hit) if keep is None else pc.and_(keep, pc.invert(hit))
        kept = table.filter(keep)
        removed = table.num_rows - kept.num_rows
        if removed:
            _replace(path, lambda tmp: pq.write_table(kept, tmp))
        return removed
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    names = set(frame.columns) & set(USER_COLUMNS)
    if not names:
        return 0
    hit = pd.Series(False, index=frame.index)
    if "user_id" in names:
        hit |= pd.to_numeric(frame["user_id"], errors="coerce").isin(ids)
    if "user_key" in names:
        hit |= frame["user_key"].isin(keys)
    if hit.any():
        _replace(path, lambda tmp: frame[~hit].to_csv(tmp, index=False))
    return int(hit.sum())


def _replace(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.erasing")
    write(tmp)
    os.replace(tmp, path)


def suppress_in_landing(settings: Settings, day: dt.date) -> dict[str, int]:
    """Before ingest: drop suppressed users' rows from the day's landing files; file -> rows dropped."""
    if not settings.warehouse_path.exists():
        return {}
    with connect(settings.warehouse_path, read_only=True) as conn:
        if not table_exists(conn, SUPPRESSED_TABLE):
            return {}
        keys = {key for (key,) in conn.execute(f"select pseudonym from {SUPPRESSED_TABLE}").fetchall()}
    if not keys:
        return {}
    dropped = {}
    for table in USER_TABLES:
        for path in sorted(settings.landing_partition_dir(table, day).glob("*")):
            if path.suffix not in (".parquet", ".csv"):
                continue
            ids = _ids_in(path)
            suppressed = {user_id for user_id in ids if pseudonymize(user_id, settings.pseudonym_key) in keys}
            if suppressed and (removed := erase_from_file(path, suppressed, set())):
                dropped[str(path.relative_to(settings.data_root))] = removed
    return dropped


def _ids_in(path: Path) -> set[int]:
    """The user ids a landing file holds (none if it cannot be read: ingest reports such a file)."""
    try:
        if path.suffix == ".parquet":
            column = pq.read_table(path, columns=["user_id"]).column("user_id")
            values = pd.to_numeric(pd.Series(pc.unique(column).to_pylist(), dtype=object), errors="coerce")
        else:
            values = pd.to_numeric(pd.read_csv(path, usecols=["user_id"], dtype=str)["user_id"], errors="coerce")
    except (OSError, ValueError, KeyError, pa.ArrowException):
        return set()
    return {int(v) for v in values.dropna().unique()}
