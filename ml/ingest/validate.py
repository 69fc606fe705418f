"""SQL that applies the contract: row rules while staging a file, cross-row rules over the whole day.

Everything is one vectorized DuckDB statement per step. A row's `_rule` is the first rule it
breaks, in this order: null_key, bad_type:<col> (contract column order), null_value:<col>,
unknown_enum:<col>, out_of_range:<col>, ts_outside_partition; then, for rows that pass all row
rules, duplicate_<key> (already loaded in another partition, then repeated within the day: the
first copy by file name and row number is kept) and unknown_<parent> (reference not loaded on or
before the partition day).
"""
from __future__ import annotations

import datetime as dt

from ml.ingest.contract import INTEGER_TYPES, Column, TableContract
from ml.ingest.readers import ReadableSource, quote_identifier, sql_literal

STAGE_TABLE = "_ingest_stage"
CROSS_FAILURES_TABLE = "_ingest_cross_failures"
REJECTS_TABLE = "_ingest_rejects"
REPEATED_KEYS_TABLE = "_ingest_repeated_keys"


def _raw(column: str) -> str:
    return quote_identifier(f"_raw_{column}")


def _typed(column: str) -> str:
    return quote_identifier(column)


def create_work_tables_sql(contract: TableContract) -> list[str]:
    typed_columns = ", ".join(f"{_typed(c.name)} {c.sql_type}" for c in contract.columns)
    return [
        f"create or replace temp table {STAGE_TABLE} (_source_file varchar, _row_number bigint, "
        f"{typed_columns}, _rule varchar, _reason varchar, _original_row varchar)",
        f"create or replace temp table {CROSS_FAILURES_TABLE} "
        f"(_source_file varchar, _row_number bigint, rule varchar, reason varchar)",
        f"create or replace temp table {REJECTS_TABLE} "
        f"(_source_file varchar, _row_number bigint, rule varchar, reason varchar, original_row varchar)",
    ]


def drop_work_tables_sql() -> list[str]:
    return [f"drop table if exists {name}" for name in (STAGE_TABLE, CROSS_FAILURES_TABLE, REJECTS_TABLE, REPEATED_KEYS_TABLE)]


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


def stage_insert_sql(contract: TableContract, source: ReadableSource, day: dt.date) -> str:
    """One pass over a file: relaxed read, TRY_CAST to contract types, first broken row rule."""
    read_columns = []
    for column in contract.columns:
        file_name, raw_type = source.present_columns.get(column.name, (None, "VARCHAR"))
        raw_expression = quote_identifier(file_name) if file_name else "null::varchar"
        read_columns.append(f"{raw_expression} as {_raw(column.name)}")
        # A column already in the contract type is passed through: a no-op cast still costs a copy.
        typed_expression = raw_expression if raw_type.upper() == column.sql_type else (
            f"try_cast({raw_expression} as {column.sql_type})"
        )
        read_columns.append(f"{typed_expression} as {_typed(column.name)}")
    rules = row_rules(contract, source, day)
    rule_case = "case " + " ".join(f"when {condition} then {sql_literal(name)}" for name, condition, _ in rules) + " end"
    reason_case = (
        "case when _rule is null then null "
        + " ".join(f"when _rule = {sql_literal(name)} then {reason}" for name, _, reason in rules)
        + " end"
    )
    # Values as read (text), so the quarantine shows what the file held, not what the cast made of it.
    original_row = "to_json(struct_pack(" + ", ".join(
        f"{quote_identifier(c.name)} := {_raw(c.name)}::varchar" for c in contract.columns
    ) + "))::varchar"
    typed_list = ", ".join(_typed(c.name) for c in contract.columns)
    return f"""
        insert into {STAGE_TABLE}
        select _source_file, _row_number, {typed_list}, _rule, {reason_case} as _reason,
               case when _rule is null then null else {original_row} end as _original_row
        from (
            select *, {rule_case} as _rule
            from (
                select {sql_literal(source.landing_file.source_file)} as _source_file, _row_number,
                       {', '.join(read_columns)}
                from ({source.sql})
            )
        )
    """


def cross_row_failure_sql(contract: TableContract, day: dt.date) -> list[str]:
    """Statements filling CROSS_FAILURES_TABLE; each only considers rows no earlier rule caught."""
    key = _typed(contract.key_column)
    day_literal = f"date '{day.isoformat()}'"
    still_valid = (
        f"from {STAGE_TABLE} s anti join {CROSS_FAILURES_TABLE} f "
        f"on s._source_file = f._source_file and s._row_number = f._row_number where s._rule is null"
    )
    statements = []
    if contract.is_event_table:
        statements.append(f"""
            insert into {CROSS_FAILURES_TABLE}
            select s._source_file, s._row_number, {sql_literal(contract.duplicate_rule)},
                   '{contract.key_column}=' || s.{key} || ' was already loaded in partition '
                   || min(loaded._partition_date) || '; {contract.key_column} must be unique across days'
            from {STAGE_TABLE} s join raw.{contract.name} loaded
              on loaded.{key} = s.{key} and loaded._partition_date <> {day_literal}
            where s._rule is null
            group by s._source_file, s._row_number, s.{key}
        """)
    # One aggregate over the day finds repeated keys (usually none); only their rows get ranked.
    # Rows that failed the cross-partition check share their key with it, so they are excluded after.
    statements.append(f"""
        create or replace temp table {REPEATED_KEYS_TABLE} as
        select {key} from {STAGE_TABLE} where _rule is null group by {key} having count(*) > 1
    """)
    statements.append(f"""
        insert into {CROSS_FAILURES_TABLE}
        select _source_file, _row_number, {sql_literal(contract.duplicate_rule)},
               '{contract.key_column}=' || {key} || ' repeats within this day''s files; kept the first copy at '
               || kept_file || ' row ' || kept_row
        from (
            select s._source_file, s._row_number, s.{key},
                   row_number() over by_position as copy_number,
                   first_value(s._source_file) over by_position as kept_file,
                   first_value(s._row_number) over by_position as kept_row
            from {REPEATED_KEYS_TABLE} r join {STAGE_TABLE} s on s.{key} = r.{key}
            anti join {CROSS_FAILURES_TABLE} f on s._source_file = f._source_file and s._row_number = f._row_number
            where s._rule is null
            window by_position as (partition by s.{key} order by s._source_file, s._row_number)
        )
        where copy_number > 1
    """)
    for reference in contract.references:
        column = _typed(reference.column)
        statements.append(f"""
            insert into {CROSS_FAILURES_TABLE}
            select s._source_file, s._row_number, {sql_literal(reference.rule)},
                   '{reference.column}=' || s.{column} || ' matches no {reference.parent_table} row loaded on or before '
                   || {day_literal}
            from (select s.* {still_valid}) s
            anti join (
                select distinct {quote_identifier(reference.parent_key)} as parent_key
                from raw.{reference.parent_table} where _partition_date <= {day_literal}
            ) parents on s.{column} = parents.parent_key
        """)
    return statements
