"""Load one table-partition (or one whole day) of landing files into raw.*, idempotently.

Files are staged one by one into a temp table (a file that cannot be read is marked failed and
the rest still load); then, in one transaction, the partition's previous rows in raw.<table>,
raw.quarantine and raw.ingest_files are deleted and replaced.
"""
from __future__ import annotations

import datetime as dt
import time
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
    describe_source,
    list_landing_files,
    partition_dir,
    quote_identifier,
    sql_literal,
)
from ml.ingest.report import FileIngestReport, TableIngestReport
from ml.ingest.schema import ensure_raw_schema
from ml.ingest.validate import (
    CROSS_FAILURES_TABLE,
    REJECTS_TABLE,
    STAGE_TABLE,
    create_work_tables_sql,
    cross_row_failure_sql,
    drop_work_tables_sql,
    stage_insert_sql,
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
    started = time.perf_counter()
    contract = get_contract(table)
    ensure_raw_schema(conn)
    _require_parents_ingested(conn, Path(landing_dir), contract, day)
    files, skipped = list_landing_files(Path(landing_dir), table, day)

    for statement in create_work_tables_sql(contract):
        conn.execute(statement)
    try:
        file_errors: dict[str, str] = {}
        ignored_columns: dict[str, tuple[str, ...]] = {}
        for landing_file in files:
            try:
                ignored_columns[landing_file.source_file] = _stage_file(conn, contract, landing_file, day)
            except FileProblem as problem:
                file_errors[landing_file.source_file] = str(problem)
            except duckdb.Error as error:
                file_errors[landing_file.source_file] = f"could not read the file: {error}"
        file_reports = _replace_partition(conn, contract, day, files, file_errors, ignored_columns)
    finally:
        for statement in drop_work_tables_sql():
            conn.execute(statement)

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


def _stage_file(
    conn: duckdb.DuckDBPyConnection, contract: TableContract, landing_file: LandingFile, day: dt.date
) -> tuple[str, ...]:
    """Append one file's rows to the stage; returns the file's columns outside the contract."""
    source = describe_source(conn, contract, landing_file)
    if source.format == "csv":
        conn.execute(f"drop table if exists {CSV_REJECTS_TABLE}")
        conn.execute(f"drop table if exists {CSV_REJECTS_SCAN}")
    try:
        conn.execute(stage_insert_sql(contract, source, day))
        if source.format == "csv":
            _collect_csv_rejects(conn, landing_file.source_file)
    except Exception:
        # Keep the stage all-or-nothing per file.
        conn.execute(f"delete from {STAGE_TABLE} where _source_file = ?", [landing_file.source_file])
        conn.execute(f"delete from {REJECTS_TABLE} where _source_file = ?", [landing_file.source_file])
        raise
    return source.ignored_columns


def _collect_csv_rejects(conn: duckdb.DuckDBPyConnection, source_file: str) -> None:
    """Lines the CSV parser could not split into the header's columns become quarantine rows."""
    (exists,) = conn.execute(
        "select count(*) from duckdb_tables() where table_name = ?", [CSV_REJECTS_TABLE]
    ).fetchone()
    if not exists:
        return
    # One line can break several parser checks; it is one row, quarantined once.
    conn.execute(f"""
        insert into {REJECTS_TABLE}
        select {sql_literal(source_file)}, line,
               case when bool_or(error_type = 'INVALID ENCODING') then 'bad_encoding' else 'malformed_line' end,
               'line ' || line || ': ' || string_agg(distinct error_message, '; ')
               || case when bool_or(error_type = 'INVALID ENCODING')
                       then ' (the contract requires UTF-8; bytes that are not UTF-8 show as ?)' else '' end,
               to_json(struct_pack(raw_line := any_value(csv_line)))::varchar
        from {CSV_REJECTS_TABLE}
        group by line
        order by line
    """)


def _replace_partition(
    conn: duckdb.DuckDBPyConnection,
    contract: TableContract,
    day: dt.date,
    files: list[LandingFile],
    file_errors: dict[str, str],
    ignored_columns: dict[str, tuple[str, ...]],
) -> list[FileIngestReport]:
    table, columns = contract.name, ", ".join(quote_identifier(c) for c in contract.column_names)
    partition = [table, day]
    conn.execute("begin transaction")
    try:
        (loaded_at,) = conn.execute("select current_localtimestamp()::timestamp").fetchone()
        conn.execute(f"delete from raw.{table} where _partition_date = ?", [day])
        conn.execute("delete from raw.quarantine where table_name = ? and partition_date = ?", partition)
        conn.execute("delete from raw.ingest_files where table_name = ? and partition_date = ?", partition)
        for statement in cross_row_failure_sql(contract, day):
            conn.execute(statement)
        (cross_failure_count,) = conn.execute(f"select count(*) from {CROSS_FAILURES_TABLE}").fetchone()
        # The anti join is skipped on clean days: it costs a hash probe per accepted row.
        skip_cross_failures = (
            f"anti join {CROSS_FAILURES_TABLE} f on s._source_file = f._source_file and s._row_number = f._row_number"
            if cross_failure_count else ""
        )
        conn.execute(
            f"""insert into raw.{table}
                select {', '.join('s.' + quote_identifier(c) for c in contract.column_names)}, ?, s._source_file, ?
                from {STAGE_TABLE} s {skip_cross_failures}
                where s._rule is null""",
            [day, loaded_at],
        )
        typed_as_json = "to_json(struct_pack(" + ", ".join(
            f"{quote_identifier(c)} := s.{quote_identifier(c)}::varchar" for c in contract.column_names
        ) + "))::varchar"
        conn.execute(
            f"""insert into raw.quarantine
                select ?, ?, _source_file, _row_number, rule, reason, original_row, ? from (
                    select _source_file, _row_number, _rule as rule, _reason as reason, _original_row as original_row
                    from {STAGE_TABLE} where _rule is not null
                    union all
                    select f._source_file, f._row_number, f.rule, f.reason, {typed_as_json}
                    from {CROSS_FAILURES_TABLE} f join {STAGE_TABLE} s
                      on s._source_file = f._source_file and s._row_number = f._row_number
                    union all
                    select _source_file, _row_number, rule, reason, original_row from {REJECTS_TABLE}
                ) order by _source_file, _row_number""",
            [table, day, loaded_at],
        )
        file_reports = _file_reports(conn, contract, day, files, file_errors, ignored_columns)
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


def _file_reports(
    conn: duckdb.DuckDBPyConnection,
    contract: TableContract,
    day: dt.date,
    files: list[LandingFile],
    file_errors: dict[str, str],
    ignored_columns: dict[str, tuple[str, ...]],
) -> list[FileIngestReport]:
    staged = {
        source_file: (rows, row_rule_failures)
        for source_file, rows, row_rule_failures in conn.execute(
            f"select _source_file, count(*), count(_rule) from {STAGE_TABLE} group by _source_file"
        ).fetchall()
    }
    cross_failures = dict(
        conn.execute(f"select _source_file, count(*) from {CROSS_FAILURES_TABLE} group by _source_file").fetchall()
    )
    rejected = dict(conn.execute(f"select _source_file, count(*) from {REJECTS_TABLE} group by _source_file").fetchall())
    by_rule: dict[str, dict[str, int]] = defaultdict(dict)
    for source_file, rule, count in conn.execute(
        "select source_file, rule, count(*) from raw.quarantine where table_name = ? and partition_date = ? "
        "group by source_file, rule order by source_file, rule",
        [contract.name, day],
    ).fetchall():
        by_rule[source_file][rule] = count

    reports = []
    for landing_file in files:
        name = landing_file.source_file
        if name in file_errors:
            reports.append(FileIngestReport(name, "failed", None, 0, 0, {}, file_errors[name]))
            continue
        rows, row_rule_failures = staged.get(name, (0, 0))
        quarantined = row_rule_failures + cross_failures.get(name, 0) + rejected.get(name, 0)
        reports.append(FileIngestReport(
            source_file=name,
            status="loaded",
            rows_in=rows + rejected.get(name, 0),
            rows_accepted=rows - row_rule_failures - cross_failures.get(name, 0),
            rows_quarantined=quarantined,
            quarantined_by_rule=by_rule.get(name, {}),
            ignored_columns=ignored_columns.get(name, ()),
        ))
    return reports
