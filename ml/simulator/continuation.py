"""Where the simulated calendar stands: the next day to serve, the next event id, and the ad events
(late clicks and conversions) already drawn that land on a later day.

`simulate` saves it after the last day; a served A/B day (ml.simulator.ab_test) continues from it and,
when the closed loop lands that day, replaces it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ml.simulator.events import AdEventBatch

PENDING_FILE = "pending_ad_events.parquet"
STATE_FILE = "continuation.json"


@dataclass
class Continuation:
    next_day_index: int
    next_event_id: int
    pending: dict[int, list[AdEventBatch]] = field(default_factory=dict)  # by the day index they land on

    def due(self, day_index: int) -> list[AdEventBatch]:
        """The pending events that land on day_index (removed from pending)."""
        return self.pending.pop(day_index, [])

    def add(self, batch: AdEventBatch, landing_day: np.ndarray) -> None:
        for day in np.unique(landing_day):
            self.pending.setdefault(int(day), []).append(batch.take(np.flatnonzero(landing_day == day)))

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        frames = []
        for day, batches in sorted(self.pending.items()):
            for batch in batches:
                columns = {name: getattr(batch, name) for name in AdEventBatch.__dataclass_fields__}
                frames.append(pd.DataFrame(columns).assign(landing_day=day))
        empty = pd.DataFrame({name: pd.Series(dtype="float64" if name in _FLOATS else "int64")
                              for name in [*AdEventBatch.__dataclass_fields__, "landing_day"]})
        pd.concat([empty, *frames], ignore_index=True).to_parquet(directory / PENDING_FILE, index=False)
        (directory / STATE_FILE).write_text(json.dumps({"next_day_index": self.next_day_index,
                                                        "next_event_id": self.next_event_id}, indent=2))

    @classmethod
    def load(cls, directory: Path) -> "Continuation":
        directory = Path(directory)
        if not (directory / STATE_FILE).exists():
            raise FileNotFoundError(f"{directory / STATE_FILE} is missing: simulate again (this ground truth predates "
                                    "served days, or was not written by the simulator)")
        state = json.loads((directory / STATE_FILE).read_text())
        frame = pd.read_parquet(directory / PENDING_FILE)
        pending = {}
        for day, rows in frame.groupby("landing_day", sort=True):
            pending[int(day)] = [AdEventBatch(**{name: rows[name].to_numpy(dtype=_DTYPES.get(name))
                                                 for name in AdEventBatch.__dataclass_fields__})]
        return cls(int(state["next_day_index"]), int(state["next_event_id"]), pending)


_FLOATS = ("cost", "propensity", "creative_propensity")
_DTYPES = {"event_type": np.int8, "slot": np.int32, "creative_idx": np.int64, **{name: np.float64 for name in _FLOATS}}
