"""Time-based splits: rankers are judged on a later day than they learned from, as in production."""
from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import pandas as pd


class DaySplit(NamedTuple):
    """Rows learned from (before the validation day), early-stopped and calibrated on, and judged on."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame


def split_by_day(
    frame: pd.DataFrame, test_date: dt.date, validation_date: dt.date, date_column: str = "impression_date"
) -> DaySplit:
    """(train: days before validation_date, valid: validation_date, test: test_date)."""
    if validation_date >= test_date:
        raise ValueError(f"validation_date {validation_date} must come before test_date {test_date}")
    days = pd.to_datetime(frame[date_column]).dt.date
    split = DaySplit(train=frame[days < validation_date], valid=frame[days == validation_date],
                     test=frame[days == test_date])
    for split_name, rows in zip(("train", "validation", "test"), split):
        if rows.empty:
            available = sorted(set(days))
            raise ValueError(
                f"{split_name} split is empty for validation_date={validation_date}, test_date={test_date}; "
                f"days present: {available[:3]}..{available[-3:]}"
            )
    return split
