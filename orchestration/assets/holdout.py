"""The one time split every model of a partition shares, so no model learns from its judges' day."""
import datetime as dt

import duckdb

from ml.training_days import HoldoutDays, choose_holdout_days


def final_label_days(conn: duckdb.DuckDBPyConnection) -> list[dt.date]:
    """Impression days whose click AND conversion labels are final (attribution window closed)."""
    rows = conn.execute(
        "select impression_date from main.ctr_training_set group by impression_date "
        "having bool_and(conversion_label_final) order by impression_date"
    ).fetchall()
    return [row[0] for row in rows]


def model_holdout_days(conn: duckdb.DuckDBPyConnection) -> HoldoutDays:
    return choose_holdout_days(final_label_days(conn))
