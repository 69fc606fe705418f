"""Check, from what is actually stored, that every file of a day balances: in = accepted + quarantined."""
from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from ml.ingest.contract import CONTRACT_TABLES
from ml.ingest.readers import sql_literal
from ml.ingest.schema import ensure_raw_schema


def reconcile_partition(conn: duckdb.DuckDBPyConnection, day: dt.date) -> pd.DataFrame:
    """One row per file recorded for `day`: the ledger's counts next to the rows really in raw.*.

    `balanced` holds when rows_in = rows_accepted + rows_quarantined and both counts match the
    rows stored in raw.<table> and raw.quarantine (a failed file must have stored nothing).
    """
    ensure_raw_schema(conn)
    stored_rows = " union all ".join(
        f"select {sql_literal(table)} as table_name, _source_file as source_file, count(*) as stored "
        f"from raw.{table} where _partition_date = $day group by _source_file"
        for table in CONTRACT_TABLES
    )
    return conn.execute(
        f"""
        with stored_accepted as ({stored_rows}),
        stored_quarantined as (
            select table_name, source_file, count(*) as stored
            from raw.quarantine where partition_date = $day group by table_name, source_file
        )
        select files.table_name, files.source_file, files.status, files.rows_in, files.rows_accepted,
               files.rows_quarantined,
               coalesce(accepted.stored, 0) as stored_accepted,
               coalesce(quarantined.stored, 0) as stored_quarantined,
               case when files.status = 'failed'
                    then coalesce(accepted.stored, 0) = 0 and coalesce(quarantined.stored, 0) = 0
                    else files.rows_in = files.rows_accepted + files.rows_quarantined
                         and files.rows_accepted = coalesce(accepted.stored, 0)
                         and files.rows_quarantined = coalesce(quarantined.stored, 0)
               end as balanced
        from raw.ingest_files files
        left join stored_accepted accepted using (table_name, source_file)
        left join stored_quarantined quarantined using (table_name, source_file)
        where files.partition_date = $day
        order by files.table_name, files.source_file
        """,
        {"day": day},
    ).df()
