"""The time splits every model of a partition shares, so no model learns from its judges' day."""
import datetime as dt

import duckdb

from ml.training_days import RankerDays, choose_ranker_days


def _final_days(conn: duckdb.DuckDBPyConnection, condition: str) -> list[dt.date]:
    rows = conn.execute(
        f"select impression_date from main.ctr_training_set group by impression_date having {condition} "
        "order by impression_date"
    ).fetchall()
    return [row[0] for row in rows]


def model_holdout_days(conn: duckdb.DuckDBPyConnection) -> RankerDays:
    """CTR: impression days whose click labels are final (every row of ctr_training_set). Conversion:
    days whose conversion labels are final too (the attribution window has closed)."""
    return choose_ranker_days(_final_days(conn, "true"), _final_days(conn, "bool_and(conversion_label_final)"))
