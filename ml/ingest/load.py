"""Load one table-partition (or one whole day) of landing files into raw.*, idempotently.

Each file is checked on its own (pass 1; a file that cannot be read is marked failed and the
rest still load). Then, in one transaction, the partition's previous rows in raw.<table>,
raw.quarantine and raw.ingest_files are deleted, cross-row rules run over the whole day, and
each file's accepted rows are written (pass 2) next to its quarantine rows and ledger row.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import replace
from collections import defaultdict
from pathlib import Path
from typing import Iterable

import duckdb

from ml.ingest.contract import CONTRACT_TABLES, TableContract, get_contract
from ml.ingest.readers import (
    CSV_REJECTS_SCAN,
    CSV_REJECTS_TABLE,
    FileProblem,
    LandingFile,
    ReadableSource,
    describe_source,
    list_landing_files,
    partition_dir,
)
from ml.ingest.report import FileIngestReport, TableIngestReport
from ml.ingest.schema import ensure_raw_schema
from ml.ingest.validate import (
    CHECKED_TABLE,
    FAILURES_TABLE,
    FILES_TABLE,
    REJECTS_TABLE,
    accepted_insert_sql,
    check_insert_sql,
    create_work_tables_sql,
    cross_row_failure_sql,
    drop_work_tables_sql,
    fill_original_rows_sql,
    key_profile,
)


class ParentPartitionNotLoaded(RuntimeError):
    """A child table would be checked against parents that have landed but are not ingested yet."""


def ingest_day(
    conn: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    day: dt.date,
    tables: Iterable[str] = CONTRACT_TABLES,
) -> list[TableIngestReport]:
    """Ingest every requested table for `day`, parents first (campaigns before ads before ad_events)."""
    requested = list(tables)
    for table in requested:
        get_contract(table)
    ordered = [table for table in CONTRACT_TABLES if table in requested]
    return [ingest_table_partition(conn, landing_dir, table, day) for table in ordered]


def ingest_table_partition(
    conn: duckdb.DuckDBPyConnection, landing_dir: Path, table: str, day: dt.date
) -> TableIngestReport:
    """Replace raw.<table>'s partition `day` with the files in <landing_dir>/<table>/date=<day>/.

    Bad rows go to raw.quarantine with their first broken rule; unreadable files are recorded as
    failed in raw.ingest_files and skipped; a missing folder loads zero files. Quarantine
    `row_number` is the 1-based record position in the file (Parquet row; CSV parsed record), except
    for CSV lines the parser rejected (malformed_line, bad_encoding), where it is the physical line
    number (header = line 1). Raises ParentPartitionNotLoaded if a referenced table's files for
    `day` have landed but are not ingested yet.
    """
    started = time.perf_counter()
    contract = get_contract(table)
    ensure_raw_schema(conn)
    _require_parents_ingested(conn, Path(landing_dir), contract, day)
    files, skipped = list_landing_files(Path(landing_dir), table, day)

    for statement in create_work_tables_sql(contract):
        conn.execute(statement)
    try:
        file_errors: dict[str, str] = {}
        sources: dict[int, ReadableSource] = {}
        for file_index, landing_file in enumerate(files):
            conn.execute(f"insert into {FILES_TABLE} values (?, ?)", [file_index, landing_file.source_file])
            try:
                sources[file_index] = _check_file(conn, contract, landing_file, file_index, day)
            except FileProblem as problem:
                file_errors[landing_file.source_file] = str(problem)
            except duckdb.Error as error:
                file_errors[landing_file.source_file] = f"could not read the file: {error}"
        file_reports = _replace_partition(conn, contract, day, files, sources, file_errors)
    finally:
        for statement in drop_work_tables_sql() + [
            f"drop table if exists _ingest_csv_{file_index}" for file_index in range(len(files))
        ]:
            conn.execute(statement)
    ignored = {source.landing_file.source_file: source.ignored_columns for source in sources.values()}
    file_reports = [replace(r, ignored_columns=ignored.get(r.source_file, ())) for r in file_reports]

    return TableIngestReport(
        table=table,
        partition_date=day,
        files=file_reports,
        landing_folder_found=partition_dir(Path(landing_dir), table, day).is_dir(),
        duration_seconds=time.perf_counter() - started,
        skipped_files=skipped,
    )


def _require_parents_ingested(
    conn: duckdb.DuckDBPyConnection, landing_dir: Path, contract: TableContract, day: dt.date
) -> None:
    for reference in contract.references:
        parent_files, _ = list_landing_files(landing_dir, reference.parent_table, day)
        if not parent_files:
            continue
        (ingested,) = conn.execute(
            "select count(*) from raw.ingest_files where table_name = ? and partition_date = ?",
            [reference.parent_table, day],
        ).fetchone()
        if ingested == 0:
            raise ParentPartitionNotLoaded(
                f"{contract.name} for {day} references {reference.parent_table}, whose {day} landing files "
                f"are not ingested yet; ingest {reference.parent_table} first (ingest_day does this in order)."
            )


def _check_file(
    conn: duckdb.DuckDBPyConnection, contract: TableContract, landing_file: LandingFile, file_index: int, day: dt.date
) -> ReadableSource:
    """Pass 1 for one file. Returns how pass 2 reads the same rows again."""
    source = describe_source(conn, contract, landing_file)
    if source.format == "csv":
        # Parse CSV once: pass 2 reads the parsed text, and malformed lines are counted once.
        conn.execute(f"drop table if exists {CSV_REJECTS_TABLE}")
        conn.execute(f"drop table if exists {CSV_REJECTS_SCAN}")
        parsed_table = f"_ingest_csv_{file_index}"
        conn.execute(f"create or replace temp table {parsed_table} as {source.sql}")
        source = replace(source, sql=f"select * from {parsed_table}")
    try:
        conn.execute(check_insert_sql(contract, source, file_index, day))
        if source.format == "csv":
            _collect_csv_rejects(conn, file_index)
    except Exception:
        # Keep pass 1 all-or-nothing per file.
        conn.execute(f"delete from {CHECKED_TABLE} where _file_index = ?", [file_index])
        conn.execute(f"delete from {REJECTS_TABLE} where _file_index = ?", [file_index])
        raise
    return source


def _collect_csv_rejects(conn: duckdb.DuckDBPyConnection, file_index: int) -> None:
    """Lines the CSV parser could not split into the header's columns become quarantine rows."""
    (exists,) = conn.execute(
        "select count(*) from duckdb_tables() where table_name = ?", [CSV_REJECTS_TABLE]
    ).fetchone()
    if not exists:
        return
    # One line can break several parser checks; it is one row, quarantined once. Its row_number
    # is the physical line number in the file (header = line 1).
    conn.execute(f"""
        insert into {REJECTS_TABLE}
        select {file_index}, line,
               case when bool_or(error_type = 'INVALID ENCODING') then 'bad_encoding' else 'malformed_line' end,
               'line ' || line || ': ' || string_agg(distinct error_message, '; ')
               || case when bool_or(error_type = 'INVALID ENCODING')
                       then ' (the contract requires UTF-8; bytes that are not UTF-8 show as ?)' else '' end,
               to_json(struct_pack(raw_line := any_value(csv_line)))::varchar
        from {CSV_REJECTS_TABLE}
        group by line
    """)


def _replace_partition(
    conn: duckdb.DuckDBPyConnection,
    contract: TableContract,
    day: dt.date,
    files: list[LandingFile],
    sources: dict[int, ReadableSource],
    file_errors: dict[str, str],
) -> list[FileIngestReport]:
    table, partition = contract.name, [contract.name, day]
    conn.execute("begin transaction")
    try:
        (loaded_at,) = conn.execute("select current_localtimestamp()::timestamp").fetchone()
        conn.execute(f"delete from raw.{table} where _partition_date = ?", [day])
        conn.execute("delete from raw.quarantine where table_name = ? and partition_date = ?", partition)
        conn.execute("delete from raw.ingest_files where table_name = ? and partition_date = ?", partition)
        if sources:
            low, high, keys_may_repeat = key_profile(conn, contract)
            for statement in cross_row_failure_sql(contract, day, (low, high), keys_may_repeat):
                conn.execute(statement)
        failures_per_file = _count_by_file(conn, FAILURES_TABLE)
        for file_index, source in sources.items():
            if failures_per_file.get(file_index):
                conn.execute(fill_original_rows_sql(contract, source, file_index))
            conn.execute(
                accepted_insert_sql(contract, source, file_index, exclude_failures=bool(failures_per_file.get(file_index))),
                [day, loaded_at],
            )
        conn.execute(
            f"""insert into raw.quarantine
                select ?, ?, names.source_file, q._row_number, q.rule, q.reason, q.original_row, ?
                from (select * from {FAILURES_TABLE} union all select * from {REJECTS_TABLE}) q
                join {FILES_TABLE} names using (_file_index)
                order by q._file_index, q._row_number""",
            [table, day, loaded_at],
        )
        file_reports = _file_reports(conn, contract, day, files, file_errors, failures_per_file)
        for r in file_reports:
            conn.execute(
                "insert into raw.ingest_files values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [table, day, r.source_file, r.rows_in, r.rows_accepted, r.rows_quarantined, r.status, r.error, loaded_at],
            )
        conn.execute("commit")
    except Exception:
        conn.execute("rollback")
        raise
    return file_reports


def _count_by_file(conn: duckdb.DuckDBPyConnection, work_table: str) -> dict[int, int]:
    return dict(conn.execute(f"select _file_index, count(*) from {work_table} group by _file_index").fetchall())


def _file_reports(
    conn: duckdb.DuckDBPyConnection,
    contract: TableContract,
    day: dt.date,
    files: list[LandingFile],
    file_errors: dict[str, str],
    failures_per_file: dict[int, int],
) -> list[FileIngestReport]:
    checked = _count_by_file(conn, CHECKED_TABLE)
    rejected = _count_by_file(conn, REJECTS_TABLE)
    by_rule: dict[str, dict[str, int]] = defaultdict(dict)
    for source_file, rule, count in conn.execute(
        "select source_file, rule, count(*) from raw.quarantine where table_name = ? and partition_date = ? "
        "group by source_file, rule order by source_file, rule",
        [contract.name, day],
    ).fetchall():
        by_rule[source_file][rule] = count

    reports = []
    for file_index, landing_file in enumerate(files):
        name = landing_file.source_file
        if name in file_errors:
            reports.append(FileIngestReport(name, "failed", None, 0, 0, {}, file_errors[name]))
            continue
        rows, failures, rejects = checked.get(file_index, 0), failures_per_file.get(file_index, 0), rejected.get(file_index, 0)
        reports.append(FileIngestReport(
            source_file=name,
            status="loaded",
            rows_in=rows + rejects,
            rows_accepted=rows - failures,
            rows_quarantined=failures + rejects,
            quarantined_by_rule=by_rule.get(name, {}),
        ))
    return reports
