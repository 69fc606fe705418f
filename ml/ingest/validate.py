"""SQL that applies the contract, in two cheap passes per file and a few set operations per day.

Pass 1 (check) reads a file once with relaxed types and keeps a narrow row per record: its key,
its references and the first row rule it breaks. Cross-row rules then run over those narrow rows
for the whole day. Pass 2 (load) reads the file again and writes the rows no rule caught straight
into raw.<table>, so the wide rows are written once, as in a bare copy.

A row's rule is the first it breaks, in this order: null_key, bad_type:<col> (contract column
order), null_value:<col>, unknown_enum:<col>, out_of_range:<col>, ts_outside_partition; then, for
rows that pass all row rules, duplicate_<key> (already loaded in another partition, then repeated
within the day: the first copy by file name and row number is kept) and unknown_<parent>
(reference not loaded on or before the partition day).
"""
from __future__ import annotations

import datetime as dt

import duckdb

from ml.ingest.contract import INTEGER_TYPES, Column, TableContract
from ml.ingest.readers import ReadableSource, quote_identifier, sql_literal
from ml.ingest.schema import raw_table_columns

CHECKED_TABLE = "_ingest_checked"
FAILURES_TABLE = "_ingest_failures"
REJECTS_TABLE = "_ingest_rejects"
REPEATED_KEYS_TABLE = "_ingest_repeated_keys"
FILES_TABLE = "_ingest_file_names"
WORK_TABLES = (CHECKED_TABLE, FAILURES_TABLE, REJECTS_TABLE, REPEATED_KEYS_TABLE, FILES_TABLE)


def _raw(column: str) -> str:
    return quote_identifier(f"_raw_{column}")


def _typed(column: str) -> str:
    return quote_identifier(column)


def _checked_columns(contract: TableContract) -> list[Column]:
    """Columns the cross-row rules need: the key and every reference."""
    names = [contract.key_column] + [reference.column for reference in contract.references]
    return [contract.column(name) for name in names]


def create_work_tables_sql(contract: TableContract) -> list[str]:
    checked = ", ".join(f"{_typed(c.name)} {c.sql_type}" for c in _checked_columns(contract))
    failure_columns = "(_file_index integer, _row_number bigint, rule varchar, reason varchar, original_row varchar)"
    return [
        f"create or replace temp table {CHECKED_TABLE} (_file_index integer, _row_number bigint, {checked}, "
        f"_rule varchar, _reason varchar, _original_row varchar)",
        f"create or replace temp table {FAILURES_TABLE} {failure_columns}",
        f"create or replace temp table {REJECTS_TABLE} {failure_columns}",
        f"create or replace temp table {FILES_TABLE} (_file_index integer, source_file varchar)",
    ]


def drop_work_tables_sql() -> list[str]:
    return [f"drop table if exists {name}" for name in WORK_TABLES]


def _type_failure(column: Column, raw_type: str) -> tuple[str, str] | None:
    """(SQL condition, what was expected) for a present value that does not fit the contract type.

    None when the file already stores the contract type and no value of it can break the type.
    """
    raw, typed = _raw(column.name), _typed(column.name)
    already_typed = raw_type.upper() == column.sql_type
    condition = f"{typed} is null"
    expected = f"a valid {column.sql_type}"
    if column.sql_type in INTEGER_TYPES:
        expected = f"a whole number that fits {column.sql_type}"
        if raw_type.upper() not in INTEGER_TYPES:
            # TRY_CAST rounds '1.5' to 2; an id must not change value on the way in.
            condition += f" or try_cast({raw} as double) <> {typed}"
    elif column.sql_type == "DOUBLE":
        expected = "a finite number"
        if already_typed:
            return f"not isfinite({typed})", expected
        condition += f" or not isfinite({typed})"
    elif column.sql_type in ("DATE", "TIMESTAMP"):
        example = "2026-11-01" + (" 13:45:00" if column.sql_type == "TIMESTAMP" else "")
        expected = f"a valid {column.sql_type} (ISO 8601, e.g. {example})"
    if already_typed:
        return None
    return f"{raw} is not null and ({condition})", expected


def row_rules(contract: TableContract, source: ReadableSource, day: dt.date) -> list[tuple[str, str, str]]:
    """(rule name, SQL condition that breaks it, SQL expression for the human-readable reason), in order."""
    key = contract.key_column
    rules = [(
        "null_key",
        f"{_raw(key)} is null",
        sql_literal(f"{key} is empty; every {contract.name} row needs its key"),
    )]
    for column in contract.columns:
        if column.name not in source.present_columns:
            continue
        type_failure = _type_failure(column, source.present_columns[column.name][1])
        if type_failure is None:
            continue
        condition, expected = type_failure
        reason = f"'{column.name}=' || to_json({_raw(column.name)}::varchar)::varchar || {sql_literal(' is not ' + expected)}"
        rules.append((f"bad_type:{column.name}", condition, reason))
    for column in contract.columns:
        if column.not_null and column.name != key:
            rules.append((
                f"null_value:{column.name}",
                f"{_raw(column.name)} is null",
                sql_literal(f"{column.name} is empty but the {contract.name} contract requires it"),
            ))
    for column in contract.columns:
        if column.allowed_values:
            allowed = ", ".join(sql_literal(value) for value in column.allowed_values)
            rules.append((
                f"unknown_enum:{column.name}",
                f"{_typed(column.name)} not in ({allowed})",
                f"'{column.name}=' || to_json({_typed(column.name)})::varchar || "
                + sql_literal(f" is not one of {', '.join(column.allowed_values)}"),
            ))
    for range_rule in contract.range_rules:
        rules.append((
            range_rule.rule,
            f"not coalesce(({range_rule.condition}), true)",
            f"'{range_rule.column}=' || {_typed(range_rule.column)}::varchar || "
            + sql_literal(f" breaks the rule {range_rule.explanation}"),
        ))
    if contract.event_ts:
        ts = _typed(contract.event_ts)
        start, end = day.isoformat(), (day + dt.timedelta(days=1)).isoformat()
        rules.append((
            "ts_outside_partition",
            f"{ts} < timestamp '{start}' or {ts} >= timestamp '{end}'",
            f"'{contract.event_ts}=' || {ts}::varchar || "
            + sql_literal(f" is outside the partition day {start}; events belong in the folder of the day they happened"),
        ))
    return rules


def _typed_rows_sql(contract: TableContract, source: ReadableSource) -> str:
    """The file's rows with each contract column as read (`_raw_<col>`) and as the contract type."""
    read_columns = []
    for column in contract.columns:
        file_name, raw_type = source.present_columns.get(column.name, (None, "VARCHAR"))
        raw_expression = quote_identifier(file_name) if file_name else "null::varchar"
        read_columns.append(f"{raw_expression} as {_raw(column.name)}")
        # A column already in the contract type is passed through: a no-op cast still costs a copy.
        typed_expression = raw_expression if raw_type.upper() == column.sql_type else (
            f"try_cast({raw_expression} as {column.sql_type})"
        )
        if column.sql_type == "TIMESTAMP" and raw_type.upper() == "TIMESTAMP WITH TIME ZONE":
            # Contract timestamps are naive UTC; a plain cast would use the session's time zone.
            typed_expression = f"timezone('UTC', {raw_expression})"
        read_columns.append(f"{typed_expression} as {_typed(column.name)}")
    return f"select _row_number, {', '.join(read_columns)} from ({source.sql})"


def _original_row_json(contract: TableContract) -> str:
    # Values as read (text), so the quarantine shows what the file held, not what the cast made of it.
    return "to_json(struct_pack(" + ", ".join(
        f"{quote_identifier(c.name)} := {_raw(c.name)}::varchar" for c in contract.columns
    ) + "))::varchar"


def check_insert_sql(contract: TableContract, source: ReadableSource, file_index: int, day: dt.date) -> str:
    """Pass 1: one narrow row per record with its first broken row rule (reason and text only if broken)."""
    rules = row_rules(contract, source, day)
    rule_case = "case " + " ".join(f"when {condition} then {sql_literal(name)}" for name, condition, _ in rules) + " end"
    reason_case = (
        "case when _rule is null then null "
        + " ".join(f"when _rule = {sql_literal(name)} then {reason}" for name, _, reason in rules)
        + " end"
    )
    checked = ", ".join(_typed(c.name) for c in _checked_columns(contract))
    return f"""
        insert into {CHECKED_TABLE}
        select {file_index}, _row_number, {checked}, _rule, {reason_case},
               case when _rule is null then null else {_original_row_json(contract)} end
        from (select *, {rule_case} as _rule from ({_typed_rows_sql(contract, source)}))
    """


def fill_original_rows_sql(contract: TableContract, source: ReadableSource, file_index: int) -> str:
    """Cross-row failures only know a row's position; fetch its text from the file (rarely needed)."""
    return f"""
        update {FAILURES_TABLE} set original_row = rows.original_row
        from (
            select _row_number, {_original_row_json(contract)} as original_row
            from ({_typed_rows_sql(contract, source)})
            semi join (select _row_number from {FAILURES_TABLE}
                       where _file_index = {file_index} and original_row is null) wanted using (_row_number)
        ) rows
        where {FAILURES_TABLE}._file_index = {file_index} and {FAILURES_TABLE}._row_number = rows._row_number
    """


def accepted_insert_sql(
    contract: TableContract, source: ReadableSource, file_index: int, exclude_failures: bool
) -> str:
    """Pass 2: rows no rule caught, typed, into raw.<table>; parameters are (partition_date, loaded_at)."""
    typed = ", ".join(f"s.{_typed(c)}" for c in contract.column_names)
    # The anti join is skipped for clean files: it costs a hash probe per accepted row.
    failures = (
        f"anti join (select _row_number from {FAILURES_TABLE} where _file_index = {file_index}) f "
        f"on s._row_number = f._row_number"
        if exclude_failures else ""
    )
    names = ", ".join(f'"{name}"' for name, _ in raw_table_columns(contract))
    return f"""
        insert into raw.{contract.name} ({names})
        select {typed}, ?, {sql_literal(source.landing_file.source_file)}, ?
        from ({_typed_rows_sql(contract, source)}) s {failures}
    """


# A bitmap over the day's key range counts distinct keys in one cheap pass; beyond this many
# bits (32 MiB per thread) the hash aggregate is the better tool.
MAX_KEY_BITMAP_BITS = 1 << 28


def key_profile(conn: duckdb.DuckDBPyConnection, contract: TableContract) -> tuple[int | None, int | None, bool]:
    """(min key, max key, whether any key may repeat) over rows that passed the row rules.

    Proving "no repeats" with a bitmap skips the costly hash aggregate on clean days (5 s -> 0.2 s
    for 10M keys); when repeats exist or the key range is too wide, the aggregate finds them.
    """
    key = _typed(contract.key_column)
    low, high, rows = conn.execute(
        f"select min({key}), max({key}), count({key}) from {CHECKED_TABLE} where _rule is null"
    ).fetchone()
    if rows <= 1:
        return low, high, False
    if high - low + 1 > MAX_KEY_BITMAP_BITS:
        return low, high, True
    (distinct_keys,) = conn.execute(
        f"select bit_count(bitstring_agg({key}, {low}, {high})) from {CHECKED_TABLE} where _rule is null"
    ).fetchone()
    return low, high, distinct_keys != rows


def cross_row_failure_sql(
    contract: TableContract, day: dt.date, key_bounds: tuple[int | None, int | None], keys_may_repeat: bool
) -> list[str]:
    """Statements moving every broken row into FAILURES_TABLE, first broken rule first.

    `key_bounds` and `keys_may_repeat` come from key_profile.
    """
    key = _typed(contract.key_column)
    day_literal = f"date '{day.isoformat()}'"
    still_valid = (
        f"from {CHECKED_TABLE} s anti join {FAILURES_TABLE} f "
        f"on s._file_index = f._file_index and s._row_number = f._row_number where s._rule is null"
    )
    statements = [f"""
        insert into {FAILURES_TABLE}
        select _file_index, _row_number, _rule, _reason, _original_row from {CHECKED_TABLE} where _rule is not null
    """]
    if contract.is_event_table and key_bounds[0] is not None:
        statements.append(f"""
            insert into {FAILURES_TABLE}
            select s._file_index, s._row_number, {sql_literal(contract.duplicate_rule)},
                   '{contract.key_column}=' || s.{key} || ' was already loaded in partition '
                   || min(loaded._partition_date) || '; {contract.key_column} must be unique across days', null
            from {CHECKED_TABLE} s join (
                -- Literal bounds let DuckDB skip row groups of other days by their min/max statistics.
                select {key}, _partition_date from raw.{contract.name}
                where _partition_date <> {day_literal} and {key} between {key_bounds[0]} and {key_bounds[1]}
            ) loaded on loaded.{key} = s.{key}
            where s._rule is null
            group by s._file_index, s._row_number, s.{key}
        """)
    if keys_may_repeat:
        # One aggregate over the day finds repeated keys (usually none); only their rows get ranked.
        statements.append(f"""
            create or replace temp table {REPEATED_KEYS_TABLE} as
            select {key} from {CHECKED_TABLE} where _rule is null group by {key} having count(*) > 1
        """)
        # File index follows file name order, so "first copy" means first by file name, then row.
        statements.append(f"""
            insert into {FAILURES_TABLE}
            select copies._file_index, _row_number, {sql_literal(contract.duplicate_rule)},
                   '{contract.key_column}=' || {key} || ' repeats within this day''s files; kept the first copy at '
                   || kept.source_file || ' row ' || kept_row, null
            from (
                select s._file_index, s._row_number, s.{key},
                       row_number() over by_position as copy_number,
                       first_value(s._file_index) over by_position as kept_file,
                       first_value(s._row_number) over by_position as kept_row
                from {REPEATED_KEYS_TABLE} r join {CHECKED_TABLE} s on s.{key} = r.{key}
                anti join {FAILURES_TABLE} f on s._file_index = f._file_index and s._row_number = f._row_number
                where s._rule is null
                window by_position as (partition by s.{key} order by s._file_index, s._row_number)
            ) copies join {FILES_TABLE} kept on kept._file_index = copies.kept_file
            where copy_number > 1
        """)
    for reference in contract.references:
        column = _typed(reference.column)
        statements.append(f"""
            insert into {FAILURES_TABLE}
            select s._file_index, s._row_number, {sql_literal(reference.rule)},
                   '{reference.column}=' || s.{column} || ' matches no {reference.parent_table} row loaded on or before '
                   || {day_literal}, null
            from (select s.* {still_valid}) s
            anti join (
                select distinct {quote_identifier(reference.parent_key)} as parent_key
                from raw.{reference.parent_table} where _partition_date <= {day_literal}
            ) parents on s.{column} = parents.parent_key
            where s.{column} is not null  -- an optional reference left empty refers to nothing
        """)
    return statements
