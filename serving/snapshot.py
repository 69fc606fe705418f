"""What the service holds in memory: the latest schedule, its candidates' features, the event
stream, the ad catalog and the champion models, read once and then released.

DuckDB allows one writing process per file and a reader blocks writers from other processes, so
the service opens the warehouse read-only only while loading and never keeps it open: the daily
Dagster run can write while the service answers.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import duckdb
import mlflow
import numpy as np
import pandas as pd

from ml.registry import configure_mlflow
from ml.scoring import ChampionScorer, read_level_factors
from ml.settings import Settings, pseudonymize
from ml.warehouse import connect, table_exists
from serving.candidates import CandidateScorer
from serving.history import StreamHistories

log = logging.getLogger(__name__)

USER_KEY_PATTERN = re.compile(r"^[0-9a-f]{32}$")  # ml.settings.pseudonymize: an md5 hex digest


def latest_schedule_path(settings: Settings) -> Path:
    paths = sorted((settings.data_root / "schedules").glob("date=*/schedule.parquet"))
    if not paths:
        raise FileNotFoundError(f"No schedule under {settings.data_root / 'schedules'}: run `make demo` first.")
    return paths[-1]


class WarehouseBusy(RuntimeError):
    """Another process (the daily run) holds the warehouse's write lock."""


def open_read_only(path: Path, wait_seconds: float):
    """A read-only connection, waiting up to `wait_seconds` for a writer to let go of the file."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return connect(path, read_only=True)
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            if time.monotonic() >= deadline:
                raise WarehouseBusy(f"{path} is locked by another process (a daily run writing?); "
                                    f"waited {wait_seconds:.0f} s") from error
            time.sleep(0.5)


def is_in_sorted(known: np.ndarray, ids: np.ndarray) -> np.ndarray:
    if not len(known):
        return np.zeros(len(ids), dtype=bool)
    return known[np.searchsorted(known, ids).clip(max=len(known) - 1)] == ids


def _sorted_ids(conn, table: str) -> np.ndarray:
    """Event ids already in raw.<table> (sorted), so a re-sent event is recognised as a duplicate."""
    if not table_exists(conn, f"raw.{table}"):
        return np.zeros(0, dtype=np.int64)
    return np.sort(conn.sql(f"select event_id from raw.{table}").fetchnumpy()["event_id"].astype(np.int64))


def _encoder_version(run_id: str) -> str:
    """The registered interest_encoder version logged by `run_id` (the run id if none was registered)."""
    found = mlflow.search_model_versions(filter_string=f"name = 'interest_encoder' and run_id = '{run_id}'")
    return str(found[0].version) if found else run_id


def index_by_user(frame: pd.DataFrame, order: list[str]) -> tuple[pd.DataFrame, dict[str, slice]]:
    """`frame` sorted by `order` (user_key first) and each user's rows, so a request slices instead of scanning."""
    frame = frame.sort_values(order, kind="stable", ignore_index=True)
    keys, starts, counts = np.unique(frame["user_key"].to_numpy(dtype=str), return_index=True, return_counts=True)
    return frame, {key: slice(int(start), int(start + count)) for key, start, count in zip(keys, starts, counts)}


@dataclass
class Snapshot:
    schedule_date: dt.date
    # Each frame sorted by user_key, with each user's rows beside it.
    schedule: pd.DataFrame  # the allocator's rows by (user_key, hour, slot, ad_id): ad_id, bid, bid_type, pctr, ...
    schedule_rows: dict[str, slice]
    features: pd.DataFrame  # ranker input columns for every scheduled (user_key, ad_id), by (user_key, ad_id)
    feature_rows: dict[str, slice]
    histories: StreamHistories  # user_event_stream as loaded, per user
    stream_event_ids: dict[str, np.ndarray]  # contract table -> sorted event ids the loaded stream holds
    ad_catalog: pd.DataFrame  # ad_id -> category_id, brand_id (latest version of every ingested ad)
    known_event_ids: dict[str, np.ndarray]  # contract table -> sorted event ids already ingested
    scorer: ChampionScorer
    candidates: CandidateScorer  # the features encoded once, to score a user now
    encoder_versions: dict[str, str]  # encoder run id -> registered interest_encoder version
    loaded_at: pd.Timestamp

    @classmethod
    def load(cls, settings: Settings, wait_seconds: float = 300.0) -> "Snapshot":
        """Everything in memory; the warehouse is open read-only only inside this call."""
        path = latest_schedule_path(settings)
        schedule = pd.read_parquet(path)
        schedule_date = dt.date.fromisoformat(path.parent.name.removeprefix("date="))
        with open_read_only(settings.warehouse_path, wait_seconds) as conn:
            features = conn.execute(
                "select * exclude (pctr, pcvr) from ml.scored_candidates where schedule_date = ?",
                [schedule_date]).df()
            event_stream = conn.sql("select * exclude (event_date) from main.user_event_stream").df()
            ad_catalog = conn.sql(
                "select ad_id, category_id, brand_id from main.stg_raw__ads "
                "qualify row_number() over (partition by ad_id order by version_date desc) = 1").df()
            known_event_ids = {table: _sorted_ids(conn, table) for table in ("behavior_events", "ad_events")}
            factors = read_level_factors(conn)
        # The connection is closed here: nothing below touches the warehouse.
        features = features.merge(schedule[["user_key", "ad_id"]].drop_duplicates(), on=["user_key", "ad_id"])
        configure_mlflow(settings)
        scorer = ChampionScorer.load(factors)
        encoder_versions = {run: _encoder_version(run) for run in set(scorer.encoder_run_by_task.values())}
        log.info("serving %s: %d scheduled rows, %d events", schedule_date, len(schedule), len(event_stream))
        features, feature_rows = index_by_user(features, ["user_key", "ad_id"])
        from_ads = (event_stream["event_type"] == "ad_click").to_numpy()  # ad clicks: the stream's only ad events
        ids = event_stream["event_id"].to_numpy(dtype=np.int64)
        snapshot = cls(schedule_date, *index_by_user(schedule, ["user_key", "hour", "slot", "ad_id"]),
                       features, feature_rows, StreamHistories(event_stream, scorer.encoders),
                       {"ad_events": np.sort(ids[from_ads]), "behavior_events": np.sort(ids[~from_ads])},
                       ad_catalog.set_index("ad_id"), known_event_ids, scorer, CandidateScorer(scorer, features),
                       encoder_versions, pd.Timestamp.now())
        log.info("schedule scored by the loaded champions: %s", snapshot.planned_scores_current)
        snapshot.plan_columns, snapshot.candidate_columns  # built now, not by the first request
        return snapshot

    @cached_property
    def plan_columns(self) -> dict[str, np.ndarray]:
        """The schedule's columns a request reads, as arrays (slicing a frame per request costs more
        than the request's scoring)."""
        columns = ["ad_id", "campaign_id", "hour", "slot", "bid", "bid_type", "pctr", "pcvr", "expected_value", "reason"]
        return {column: self.schedule[column].to_numpy() for column in columns}

    @cached_property
    def candidate_columns(self) -> dict[str, np.ndarray]:
        """Each candidate row's ad and the CTR champion's top two SHAP features when the schedule scored it."""
        return {"ad_id": self.features["ad_id"].to_numpy(dtype=np.int64),
                "top_features": (self.features["top1_feature"].astype(str) + ", "
                                 + self.features["top2_feature"].astype(str)).to_numpy(dtype=object)}

    @cached_property
    def planned_scores_current(self) -> bool:
        """Were the schedule's scores made by the champions and level factors loaded now?"""
        return all(
            (self.features[f"{task}_ranker_version"].astype(str) == str(ranker.version)).all()
            and (self.features[f"{task}_level_factor"] == self.scorer.level_factors[task]).all()
            for task, ranker in self.scorer.rankers.items()
        )

    def user_key_of(self, user: str, salt: str) -> str:
        """A path's user: a raw user_id (as in the landing files) or its pseudonym, the warehouse user_key."""
        return user if USER_KEY_PATTERN.match(user) else pseudonymize(int(user), salt)

    def knows(self, user_key: str) -> bool:
        return user_key in self.histories or user_key in self.schedule_rows

    def user_schedule(self, user_key: str) -> pd.DataFrame:
        return self.schedule.iloc[self.schedule_rows.get(user_key, slice(0, 0))]

    def user_features(self, user_key: str) -> pd.DataFrame:
        return self.features.iloc[self.feature_rows.get(user_key, slice(0, 0))]

    def already_ingested(self, table: str, event_ids: np.ndarray) -> np.ndarray:
        """Per id: is it already in raw.<table> (then the daily ingest would quarantine it as a duplicate)."""
        return is_in_sorted(self.known_event_ids[table], event_ids)

    def in_stream(self, table: str, event_ids: np.ndarray) -> np.ndarray:
        """Per id: does the loaded event stream hold it (ingested and built by dbt)?"""
        return is_in_sorted(self.stream_event_ids[table], event_ids)

    def model_versions(self) -> dict[str, str]:
        """Champion ranker versions, and the encoder version each was trained with (its features)."""
        versions = {ranker.name: str(ranker.version) for ranker in self.scorer.rankers.values()}
        for task, run in self.scorer.encoder_run_by_task.items():
            versions[f"{self.scorer.rankers[task].name}_encoder"] = self.encoder_versions[run]
        return versions
