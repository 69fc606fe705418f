"""Events posted since the snapshot was loaded: what re-ranking adds to each user's sequence, and
the impressions already delivered against the schedule. Not yet in the warehouse (the next daily
run ingests their landing files); on reload, the ones the new snapshot already holds are dropped.

event_id is the idempotency key: an event already received (since load, or already ingested) is
acknowledged and not stored or landed again, so a client may safely retry a POST.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from ml.settings import pseudonymize
from serving.events import EVENT_TABLES, STREAM_COLUMNS, empty_contract_frame, stream_rows
from serving.snapshot import Snapshot


class LiveEvents:
    def __init__(self, salt: str):
        self.salt = salt
        self.frames: dict[str, pd.DataFrame] = {table: empty_contract_frame(table) for table in EVENT_TABLES}
        self.ids: dict[str, set[int]] = {table: set() for table in EVENT_TABLES}
        self.stream_by_user: dict[str, pd.DataFrame] = {}
        self.impressions: dict[str, Counter] = {}  # user_key -> (ad_id, date) -> impressions delivered

    def split_new(self, frames: dict[str, pd.DataFrame], snapshot: Snapshot) -> tuple[dict, dict]:
        """(new events per table, ids of duplicates per table): repeated in the batch, posted
        before, or already ingested."""
        new, duplicates = {}, {}
        for table, frame in frames.items():
            ids = frame["event_id"].to_numpy(dtype=np.int64)
            posted = np.array([int(i) in self.ids[table] for i in ids], dtype=bool)
            seen = frame["event_id"].duplicated().to_numpy() | posted | snapshot.already_ingested(table, ids)
            new[table], duplicates[table] = frame[~seen], [int(i) for i in ids[seen]]
        return new, duplicates

    def add(self, frames: dict[str, pd.DataFrame], snapshot: Snapshot) -> None:
        """One writer at a time (the app holds its lock), after split_new; readers only see whole
        frames swapped in."""
        for table, frame in frames.items():
            if len(frame):
                self.frames[table] = pd.concat([self.frames[table], frame], ignore_index=True) \
                    if len(self.frames[table]) else frame.reset_index(drop=True)
                self.ids[table].update(int(i) for i in frame["event_id"])
        rows = stream_rows(frames, self.salt, snapshot.ad_catalog)
        for user_key, user_rows in rows.groupby("user_key"):
            before = self.stream_by_user.get(user_key)
            self.stream_by_user[user_key] = user_rows if before is None else pd.concat([before, user_rows],
                                                                                       ignore_index=True)
        shown = frames["ad_events"][frames["ad_events"]["event_type"] == "impression"]
        for user_id, ad_id, ts in zip(shown["user_id"], shown["ad_id"], shown["ts"]):
            user_key = pseudonymize(int(user_id), self.salt)
            self.impressions.setdefault(user_key, Counter())[(int(ad_id), ts.date())] += 1

    def rebased(self, snapshot: Snapshot) -> "LiveEvents":
        """What a newly loaded snapshot still needs from the events posted so far: the ones its event
        stream does not hold yet (ingested is not enough: dbt builds the stream) and the impressions
        of its schedule date. Ids stay remembered, so a retry is still recognised as a duplicate."""
        fresh = LiveEvents(self.salt)
        keep = {}
        for table, frame in self.frames.items():
            missing = ~snapshot.in_stream(table, frame["event_id"].to_numpy(dtype=np.int64))
            if table == "ad_events":
                feeds_sequences = (frame["event_type"] == "click").to_numpy()
                counts_today = (frame["ts"].dt.date == snapshot.schedule_date).to_numpy()
                missing = np.where(feeds_sequences, missing, counts_today)
            keep[table] = frame[missing]
        fresh.add(keep, snapshot)
        fresh.ids = {table: set(ids) for table, ids in self.ids.items()}
        return fresh

    def user_stream(self, snapshot: Snapshot, user_key: str) -> tuple[pd.DataFrame, int]:
        """The user's loaded events plus those posted since, and how many were posted since."""
        loaded, posted = snapshot.user_events(user_key), self.stream_by_user.get(user_key)
        if posted is None or posted.empty:
            return loaded, 0
        return pd.concat([loaded, posted[STREAM_COLUMNS]], ignore_index=True), len(posted)

    def delivered(self, user_key: str, day) -> dict[int, int]:
        """Impressions of each ad delivered to the user on `day` (posted since load)."""
        return {ad_id: n for (ad_id, date), n in list(self.impressions.get(user_key, {}).items()) if date == day}

    def counts(self) -> dict[str, int]:
        return {table: len(frame) for table, frame in self.frames.items()}
