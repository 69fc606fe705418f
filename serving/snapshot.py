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
import tempfile
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
from ml.privacy.pseudonyms import pseudonymize
from ml.settings import Settings
from ml.warehouse import connect, table_exists
from ml.creatives.assign import CREATIVE_COLUMNS
from serving.candidates import CandidateScorer
from serving.history import StreamHistories

log = logging.getLogger(__name__)

LOAD_MEMORY_LIMIT = "1GB"
USER_KEY_PATTERN = re.compile(r"^[0-9a-f]{32}$")  # ml.privacy.pseudonyms.pseudonymize: 32 hex digits


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


def _as_array(column: pd.Series) -> np.ndarray:
    """A column as numpy; nullable ones (creative_id is Int64, titles are strings) as Python objects
    with None for missing, since their own to_numpy() turns an Int64 with gaps into floats."""
    if isinstance(column.dtype, pd.api.extensions.ExtensionDtype):
        return column.to_numpy(dtype=object, na_value=None)
    return column.to_numpy()


def index_by_user(frame: pd.DataFrame, order: list[str]) -> tuple[pd.DataFrame, dict[str, slice]]:
    """`frame` sorted by `order` (user_key first) and each user's rows, so a request slices instead of scanning."""
    frame = frame.sort_values(order, kind="stable", ignore_index=True)
    keys, starts, counts = np.unique(frame["user_key"].to_numpy(dtype=str), return_index=True, return_counts=True)
    return frame, {key: slice(int(start), int(start + count)) for key, start, count in zip(keys, starts, counts)}


@dataclass
class ScheduledCandidates:
    """The candidate rows of the scheduled (user, ad) pairs, sorted by (user_key, ad_id)."""
    scorer: CandidateScorer  # their features encoded once, to score a user now
    rows: dict[str, slice]  # user_key -> the user's rows
    top_feature_names: np.ndarray  # distinct "first, second" SHAP feature pairs
    top_feature_codes: np.ndarray  # per row, its pair in top_feature_names
    scored_by_current: bool  # were the schedule's scores made by the loaded champions and level factors?

    @classmethod
    def read(cls, conn, schedule_path: Path, schedule_date: dt.date, scorer: ChampionScorer,
             vectors_per_batch: int = 256) -> "ScheduledCandidates":
        """ml.scored_candidates' rows the schedule holds, read in batches of 2048 x `vectors_per_batch`
        rows (the same frames DuckDB's .df() makes) and encoded as they come."""
        scheduled = ("ml.scored_candidates as candidates semi join read_parquet($path) as planned "
                     "on candidates.user_key = planned.user_key and candidates.ad_id = planned.ad_id "
                     "where candidates.schedule_date = $date")
        params = {"path": str(schedule_path), "date": schedule_date}
        # Per user in one pass: how many rows, and how many the loaded champions did not score.
        stale = " + ".join([f"count(*) filter (where cast(candidates.{task}_ranker_version as varchar) "
                            f"is distinct from ${task}_version or candidates.{task}_level_factor "
                            f"is distinct from ${task}_factor)" for task in scorer.rankers] or ["0"])
        champions = {**{f"{task}_version": str(ranker.version) for task, ranker in scorer.rankers.items()},
                     **{f"{task}_factor": float(scorer.level_factors[task]) for task in scorer.rankers}}
        per_user = conn.execute(f"select candidates.user_key, count(*), {stale} from {scheduled} "
                                f"group by all order by 1", {**params, **champions}).fetchall()
        ends = np.cumsum([count for _, count, _ in per_user])
        rows = {key: slice(int(end - count), int(end)) for (key, count, _), end in zip(per_user, ends)}
        scored_by_current = sum(stale_rows for *_, stale_rows in per_user) == 0

        stored = {name for name, *_ in conn.execute("describe ml.scored_candidates").fetchall()}
        # The encoder's outputs are not stored: CandidateScorer computes them per request.
        columns = ", ".join(f'candidates."{column}"' for column in CandidateScorer.columns_read(scorer)
                            if column in stored)
        top_pair = ("coalesce(cast(candidates.top1_feature as varchar), 'None') || ', ' || "
                    "coalesce(cast(candidates.top2_feature as varchar), 'None') as top_features")
        result = conn.execute(f"select {columns}, {top_pair} from {scheduled} "
                              f"order by candidates.user_key, candidates.ad_id", params)
        pair_code: dict[str, int] = {}
        codes: list[np.ndarray] = []

        def batches():
            while not (frame := result.fetch_df_chunk(vectors_per_batch)).empty:
                batch_codes, pairs = pd.factorize(frame.pop("top_features"))
                codes.append(np.array([pair_code.setdefault(pair, len(pair_code)) for pair in pairs],
                                      dtype=np.int32)[batch_codes])
                yield frame

        candidate_scorer = CandidateScorer.from_batches(scorer, batches(), int(ends[-1]) if len(ends) else 0)
        return cls(candidate_scorer, rows, np.array(list(pair_code), dtype=object),
                   np.concatenate(codes) if codes else np.zeros(0, dtype=np.int32), scored_by_current)

    def top_features(self, rows: slice) -> np.ndarray:
        """The CTR champion's top two SHAP features of `rows` when the schedule scored them."""
        return self.top_feature_names[self.top_feature_codes[rows]]


@dataclass
class Snapshot:
    schedule_date: dt.date
    schedule: pd.DataFrame  # the allocator's rows by (user_key, hour, slot, ad_id): ad_id, bid, bid_type, pctr, ...
    schedule_rows: dict[str, slice]  # user_key -> the user's schedule rows
    candidates: ScheduledCandidates  # every scheduled (user, ad) pair's features, encoded
    histories: StreamHistories  # user_event_stream as loaded, per user
    stream_event_ids: dict[str, np.ndarray]  # contract table -> sorted event ids the loaded stream holds
    ad_catalog: pd.DataFrame  # ad_id -> category_id, brand_id (latest version of every ingested ad)
    known_event_ids: dict[str, np.ndarray]  # contract table -> sorted event ids already ingested
    scorer: ChampionScorer
    encoder_versions: dict[str, str]  # encoder run id -> registered interest_encoder version
    loaded_at: pd.Timestamp

    @classmethod
    def load(cls, settings: Settings, wait_seconds: float = 300.0) -> "Snapshot":
        """Everything in memory; the warehouse is open read-only only inside this call."""
        path = latest_schedule_path(settings)
        schedule = pd.read_parquet(path)
        schedule_date = dt.date.fromisoformat(path.parent.name.removeprefix("date="))
        configure_mlflow(settings)
        with open_read_only(settings.warehouse_path, wait_seconds) as conn, tempfile.TemporaryDirectory() as spill:
            # DuckDB's buffers count against the service's memory while it loads: cap them (the
            # stream's sort spills beyond this) so the load peaks near what the service then holds.
            conn.execute(f"set memory_limit = '{LOAD_MEMORY_LIMIT}'")
            conn.execute(f"set temp_directory = '{spill}'")
            scorer = ChampionScorer.load(read_level_factors(conn))
            candidates = ScheduledCandidates.read(conn, path, schedule_date, scorer)
            histories = StreamHistories.read(conn, scorer.encoders)
            ad_catalog = conn.sql(
                "select ad_id, category_id, brand_id from main.stg_raw__ads "
                "qualify row_number() over (partition by ad_id order by version_date desc) = 1").df()
            known_event_ids = {table: _sorted_ids(conn, table) for table in ("behavior_events", "ad_events")}
        # The connection is closed here: nothing below touches the warehouse.
        encoder_versions = {run: _encoder_version(run) for run in set(scorer.encoder_run_by_task.values())}
        log.info("serving %s: %d scheduled rows, %d events", schedule_date, len(schedule), histories.n_events)
        from_ads = ~histories.events.is_behavior  # ad clicks: the stream's only ad events
        snapshot = cls(schedule_date, *index_by_user(schedule, ["user_key", "hour", "slot", "ad_id"]), candidates,
                       histories, {"ad_events": np.sort(histories.event_id[from_ads]),
                                   "behavior_events": np.sort(histories.event_id[~from_ads])},
                       ad_catalog.set_index("ad_id"), known_event_ids, scorer, encoder_versions, pd.Timestamp.now())
        log.info("schedule scored by the loaded champions: %s", candidates.scored_by_current)
        snapshot.plan_columns  # built now, not by the first request
        return snapshot

    @cached_property
    def plan_columns(self) -> dict[str, np.ndarray]:
        """The schedule's columns a request reads, as arrays (slicing a frame per request costs more
        than the request's scoring)."""
        columns = ["ad_id", "campaign_id", "hour", "slot", "bid", "bid_type", "pctr", "pcvr", "expected_value", "reason",
                   "why", *CREATIVE_COLUMNS]  # missing from older schedules (before words, before creatives): None
        return {column: _as_array(self.schedule[column]) if column in self.schedule
                else np.full(len(self.schedule), None, dtype=object) for column in columns}

    def user_key_of(self, user: str, key: str) -> str:
        """A path's user: a raw user_id (as in the landing files) or its pseudonym, the warehouse user_key."""
        return user if USER_KEY_PATTERN.match(user) else pseudonymize(int(user), key)

    def knows(self, user_key: str) -> bool:
        return user_key in self.histories or user_key in self.schedule_rows

    def user_schedule(self, user_key: str) -> pd.DataFrame:
        return self.schedule.iloc[self.schedule_rows.get(user_key, slice(0, 0))]

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
