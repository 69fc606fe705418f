"""The time splits every model of a partition shares, so no model learns from its judges' day, and
whether each label is enough to learn from (ml/label_sufficiency.py)."""
import duckdb

from ml.label_sufficiency import LabelPlan

# Per impression day: CTR counts on every row (click labels are final on all of ctr_training_set);
# CVR counts on the clicks of days whose conversion labels are all final (the CVR ranker's rows).
_DAILY_LABEL_COUNTS = """
select impression_date as day,
    count(*) as click_rows, sum(label_click::int) as click_positives,
    bool_and(conversion_label_final) as conversion_final,
    count(*) filter (where label_click) as conversion_rows,
    coalesce(sum(label_conversion::int) filter (where label_click), 0) as conversion_positives
from main.ctr_training_set group by impression_date order by impression_date
"""


def model_label_plan(conn: duckdb.DuckDBPyConnection) -> LabelPlan:
    """Clicks: impression days (click labels are final on every row of ctr_training_set). Conversions:
    days whose conversion labels are final too (the attribution window has closed)."""
    counts = conn.sql(_DAILY_LABEL_COUNTS).df()
    clicks = counts.rename(columns={"click_rows": "rows", "click_positives": "positives"})
    conversions = counts[counts["conversion_final"].astype(bool)].rename(
        columns={"conversion_rows": "rows", "conversion_positives": "positives"})
    return LabelPlan.from_counts(clicks[["day", "rows", "positives"]], conversions[["day", "rows", "positives"]])
