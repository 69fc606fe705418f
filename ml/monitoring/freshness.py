"""Landing freshness: which contract tables lack a landing folder for which days.

The contract is one folder per table and day (`landing/<table>/date=YYYY-MM-DD/`); a dimension table
with no changes that day lands an empty file, as the simulator does. A day counts as landed for a
table once its folder holds a delivered file: not hidden (a writer's temp file or marker) and not
written by the real-time service (`serving-*` files join a delivery, they do not make one).
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd


def is_delivered_file(name: str) -> bool:
    return not name.startswith((".", "_", "serving-"))


def landed_days(landing_dir: Path, table: str) -> dict[dt.date, dt.datetime]:
    """Day -> when its newest delivered file was written (UTC), for each landed day of `table`."""
    landed = {}
    for folder in (Path(landing_dir) / table).glob("date=*"):
        try:
            day = dt.date.fromisoformat(folder.name.removeprefix("date="))
        except ValueError:
            continue  # not a partition folder
        times = [f.stat().st_mtime for f in folder.iterdir() if f.is_file() and is_delivered_file(f.name)]
        if times:
            landed[day] = dt.datetime.fromtimestamp(max(times), tz=dt.timezone.utc)
    return landed


def missing_landing_days(landing_dir: Path, tables: list[str], start: dt.date, through: dt.date) -> pd.DataFrame:
    """(table, day) for every day from `start` to `through` (inclusive) a table has not landed."""
    expected = pd.date_range(start, through, freq="D").date
    rows = [{"table": table, "day": day}
            for table in tables
            for day in sorted(set(expected) - set(landed_days(landing_dir, table)))]
    return pd.DataFrame(rows, columns=["table", "day"])
