"""A content hash of a schedule: two runs agree on the schedule exactly when their hashes agree.

The hash covers every column a consumer reads (who, when, which ad, the scores and the reason) in key
order, with floats written to full precision, so it does not depend on how the rows were read and it
changes when any score moves. It is a fingerprint for auditing runs, not a security feature.
"""
from __future__ import annotations

import hashlib

import pandas as pd

from ml.allocation.allocator import SCHEDULE_COLUMNS
from ml.ordering import in_key_order

SCHEDULE_ROW_KEYS = ["user_key", "schedule_date", "hour", "slot", "ad_id"]
HASH_CHARS = 16


def schedule_hash(schedule: pd.DataFrame) -> str:
    """First 16 hex digits of the SHA-256 of the schedule's CSV (SCHEDULE_COLUMNS, rows in key order)."""
    missing = [column for column in SCHEDULE_COLUMNS if column not in schedule.columns]
    if missing:
        raise ValueError(f"schedule is missing columns {missing}")
    rows = in_key_order(schedule[SCHEDULE_COLUMNS], SCHEDULE_ROW_KEYS)
    rows = rows.assign(schedule_date=pd.to_datetime(rows["schedule_date"]).dt.strftime("%Y-%m-%d"))
    text = rows.to_csv(index=False, float_format="%.17g", lineterminator="\n")
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_CHARS]
