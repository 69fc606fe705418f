"""Find a partition's landing files and describe how to read each one with relaxed types.

A file that cannot be opened, is empty, or lacks a required contract column comes back as
`FileProblem`, so the caller marks that one file failed and keeps loading the others.
"""
from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ml.ingest.contract import TableContract

SUPPORTED_SUFFIXES = (".parquet", ".csv")
CSV_REJECTS_TABLE = "_ingest_csv_rejects"
CSV_REJECTS_SCAN = "_ingest_csv_scans"
_MAX_HEADER_BYTES = 1 << 20


class FileProblem(Exception):
    """The whole file is unusable; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class LandingFile:
    path: Path
    source_file: str  # relative to the landing root, stable across machines


@dataclass(frozen=True)
class ReadableSource:
    """How to select one file's rows: `sql` yields `_row_number` plus the file's columns."""

    landing_file: LandingFile
    format: str
    sql: str
    # contract column -> (column name as in the file, DuckDB type as read); absent optional columns omitted
    present_columns: dict[str, tuple[str, str]]
    ignored_columns: tuple[str, ...]


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def partition_dir(landing_dir: Path, table: str, day: dt.date) -> Path:
    return Path(landing_dir) / table / f"date={day.isoformat()}"


def list_landing_files(landing_dir: Path, table: str, day: dt.date) -> tuple[list[LandingFile], list[str]]:
    """(files to ingest, hidden files skipped). Hidden (`.x`, `_x`) files are writer markers like _SUCCESS."""
    folder = partition_dir(landing_dir, table, day)
    if not folder.is_dir():
        return [], []
    files, skipped = [], []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        relative = path.relative_to(Path(landing_dir)).as_posix()
        if path.name.startswith((".", "_")):
            skipped.append(relative)
        else:
            files.append(LandingFile(path=path, source_file=relative))
    return files, skipped


def describe_source(conn: duckdb.DuckDBPyConnection, contract: TableContract, landing_file: LandingFile) -> ReadableSource:
    suffix = landing_file.path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise FileProblem(f"unsupported file type {suffix or '(none)'!r}; landing files must be .parquet or .csv")
    if landing_file.path.stat().st_size == 0:
        raise FileProblem("file is empty (0 bytes); re-export it or remove it from the landing folder")
    if suffix == ".parquet":
        return _describe_parquet(conn, contract, landing_file)
    return _describe_csv(contract, landing_file)


def _match_columns(
    contract: TableContract, file_columns: dict[str, str]
) -> tuple[dict[str, tuple[str, str]], tuple[str, ...]]:
    """Match contract columns case-insensitively; missing required columns make the file unusable."""
    by_lower = {name.lower(): (name, sql_type) for name, sql_type in file_columns.items()}
    missing = [c.name for c in contract.columns if c.required and c.name not in by_lower]
    if missing:
        raise FileProblem(
            f"missing_column:{missing[0]}: file lacks required column(s) {', '.join(missing)}; "
            f"the {contract.name} contract needs {', '.join(contract.column_names)}"
        )
    present = {c.name: by_lower[c.name] for c in contract.columns if c.name in by_lower}
    ignored = tuple(name for name in file_columns if name.lower() not in contract.column_names)
    return present, ignored


def _describe_parquet(conn: duckdb.DuckDBPyConnection, contract: TableContract, landing_file: LandingFile) -> ReadableSource:
    reader = f"read_parquet({sql_literal(str(landing_file.path))}, file_row_number = true)"
    try:
        schema = conn.execute(f"describe select * from {reader}").fetchall()
    except duckdb.Error as error:
        raise FileProblem(f"not a readable Parquet file ({error}); re-export it") from None
    file_columns = {name: sql_type for name, sql_type, *_ in schema if name != "file_row_number"}
    present, ignored = _match_columns(contract, file_columns)
    return ReadableSource(
        landing_file=landing_file,
        format="parquet",
        sql=f"select file_row_number + 1 as _row_number, * exclude (file_row_number) from {reader}",
        present_columns=present,
        ignored_columns=ignored,
    )


def _read_csv_header(path: Path) -> list[str]:
    with path.open("rb") as handle:
        first_line = handle.readline(_MAX_HEADER_BYTES)
    try:
        text = first_line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileProblem("CSV header row is not valid UTF-8; the contract requires UTF-8 files") from None
    header = next(csv.reader([text.rstrip("\r\n")]), [])
    names = [name.strip() for name in header]
    if not names or names == [""]:
        raise FileProblem("CSV has no header row; the first line must name the columns")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise FileProblem(f"CSV header repeats column(s) {', '.join(duplicates)}")
    return names


def _describe_csv(contract: TableContract, landing_file: LandingFile) -> ReadableSource:
    header = _read_csv_header(landing_file.path)
    present, ignored = _match_columns(contract, {name: "VARCHAR" for name in header})
    # Every column as VARCHAR with sniffing off: typing is the validator's job, and a sniffer guess
    # on a hostile file (wrong delimiter, header) would turn data problems into silent misreads.
    columns = "{" + ", ".join(f"{sql_literal(name)}: 'VARCHAR'" for name in header) + "}"
    reader = (
        f"read_csv({sql_literal(str(landing_file.path))}, columns = {columns}, header = true, "
        f"auto_detect = false, delim = ',', quote = '\"', escape = '\"', "
        f"store_rejects = true, rejects_table = '{CSV_REJECTS_TABLE}', rejects_scan = '{CSV_REJECTS_SCAN}')"
    )
    return ReadableSource(
        landing_file=landing_file,
        format="csv",
        # CSV has no file_row_number; a window over the single-file scan numbers rows in file order.
        sql=f"select row_number() over () as _row_number, * from {reader}",
        present_columns=present,
        ignored_columns=ignored,
    )
