"""What the service holds in memory: the latest schedule, its candidates' features, the event
stream and the champion models, read once and then released.

DuckDB allows one writing process per file and a reader blocks writers from other processes, so
the service opens the warehouse read-only only while loading and never keeps it open: the daily
Dagster run can write while the service answers.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ml.registry import configure_mlflow
from ml.scoring import ChampionScorer, read_level_factors
from ml.settings import Settings
from ml.warehouse import connect

log = logging.getLogger(__name__)


def latest_schedule_path(settings: Settings) -> Path:
    paths = sorted((settings.data_root / "schedules").glob("date=*/schedule.parquet"))
    if not paths:
        raise FileNotFoundError(f"No schedule under {settings.data_root / 'schedules'}: run `make demo` first.")
    return paths[-1]


@dataclass
class Snapshot:
    schedule_date: dt.date
    schedule: pd.DataFrame  # the allocator's rows: user_key, hour, slot, ad_id, bid, bid_type, pctr, ...
    features: pd.DataFrame  # ranker input columns for every scheduled (user_key, ad_id)
    event_stream: pd.DataFrame  # user_event_stream as loaded, plus events posted since
    scorer: ChampionScorer
    loaded_at: pd.Timestamp

    @classmethod
    def load(cls, settings: Settings) -> "Snapshot":
        path = latest_schedule_path(settings)
        schedule = pd.read_parquet(path)
        schedule_date = dt.date.fromisoformat(path.parent.name.removeprefix("date="))
        with connect(settings.warehouse_path, read_only=True) as conn:
            features = conn.execute(
                "select * exclude (pctr, pcvr) from ml.scored_candidates where schedule_date = ?",
                [schedule_date]).df()
            event_stream = conn.sql("select * from main.user_event_stream").df()
            factors = read_level_factors(conn)
        features = features.merge(schedule[["user_key", "ad_id"]].drop_duplicates(), on=["user_key", "ad_id"])
        configure_mlflow(settings)
        scorer = ChampionScorer.load(factors)
        log.info("serving %s: %d scheduled rows, %d events", schedule_date, len(schedule), len(event_stream))
        return cls(schedule_date, schedule, features, event_stream, scorer, pd.Timestamp.now())

    def user_events(self, user_key: str) -> pd.DataFrame:
        return self.event_stream[self.event_stream["user_key"] == user_key]

    def add_events(self, rows: pd.DataFrame) -> None:
        """Events posted since loading join the stream the re-ranking reads."""
        if len(rows):
            self.event_stream = pd.concat([self.event_stream, rows[self.event_stream.columns]], ignore_index=True)

    def model_versions(self) -> dict[str, str]:
        return {ranker.name: str(ranker.version) for ranker in self.scorer.rankers.values()}
