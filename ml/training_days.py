"""Which days train, validate and test a model, from the days whose labels are final."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class HoldoutDays:
    validation_date: dt.date
    test_date: dt.date
    train_dates: tuple[dt.date, ...]

    def as_metadata(self) -> dict[str, str]:
        return {
            "train_days": f"{self.train_dates[0]}..{self.train_dates[-1]} ({len(self.train_dates)})",
            "validation_day": self.validation_date.isoformat(),
            "test_day": self.test_date.isoformat(),
        }


def choose_holdout_days(days_with_final_labels: Iterable[dt.date], min_train_days: int = 1) -> HoldoutDays:
    """Last final day tests, the one before validates, everything earlier trains (time-based split)."""
    days = sorted(set(days_with_final_labels))
    if len(days) < min_train_days + 2:
        raise ValueError(
            f"Need at least {min_train_days + 2} days with final labels for train/validation/test, "
            f"found {len(days)}: {[d.isoformat() for d in days]}. Ingest more days first."
        )
    return HoldoutDays(validation_date=days[-2], test_date=days[-1], train_dates=tuple(days[:-2]))
