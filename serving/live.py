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

from ml.privacy.pseudonyms import pseudonymize
from serving.events import EVENT_TABLES, empty_contract_frame
from serving.history import UserHistory, posted_histories
from serving.snapshot import Snapshot


class LiveEvents:
    def __init__(self, key: str):
        self.key = key  # the pseudonym key
        self.posted: dict[str, list[pd.DataFrame]] = {table: [] for table in EVENT_TABLES}  # in arrival order
        self.ids: dict[str, set[int]] = {table: set() for table in EVENT_TABLES}
        self.histories: dict[str, UserHistory] = {}  # user_key -> events posted for the user
        self.impressions: dict[str, Counter] = {}  # user_key -> (ad_id, date) -> impressions delivered

    def split_new(self, frames: dict[str, pd.DataFrame], snapshot: Snapshot,
                  pending: dict[str, set[int]] | None = None) -> tuple[dict, dict]:
        """(new events per table, ids of duplicates per table): repeated in the batch, posted
        before (or `pending`: in an earlier request of the same landing write), or already ingested."""
        new, duplicates = {}, {}
        for table, frame in frames.items():
            ids = frame["event_id"].to_numpy(dtype=np.int64)
            earlier = (pending or {}).get(table, set())
            posted = np.array([int(i) in self.ids[table] or int(i) in earlier for i in ids], dtype=bool)
            seen = frame["event_id"].duplicated().to_numpy() | posted | snapshot.already_ingested(table, ids)
            new[table], duplicates[table] = frame[~seen], [int(i) for i in ids[seen]]
        return new, duplicates

    def add(self, frames: dict[str, pd.DataFrame], snapshot: Snapshot) -> None:
        """One writer at a time (the app holds its lock), after split_new; readers only see whole
        frames swapped in."""
        for table, frame in frames.items():
            if len(frame):
                self.posted[table].append(frame)
                self.ids[table].update(frame["event_id"].tolist())
        user_keys = {user_id: self.user_key(user_id) for frame in frames.values() for user_id in
                     set(frame["user_id"].tolist())}
        # The sequence tokens and feature arrays made once, here, not per request.
        for user_key, posted in posted_histories(frames, user_keys, snapshot.ad_catalog,
                                                 snapshot.scorer.encoders).items():
            before = self.histories.get(user_key)
            self.histories[user_key] = posted if before is None else before.merged(posted)
        shown = frames["ad_events"][frames["ad_events"]["event_type"] == "impression"]
        for user_id, ad_id, ts in zip(shown["user_id"].tolist(), shown["ad_id"].tolist(), shown["ts"]):
            self.impressions.setdefault(user_keys[user_id], Counter())[(int(ad_id), ts.date())] += 1

    def user_key(self, user_id: int) -> str:
        return pseudonymize(int(user_id), self.key)

    def rebased(self, snapshot: Snapshot) -> "LiveEvents":
        """What a newly loaded snapshot still needs from the events posted so far: the ones its event
        stream does not hold yet (ingested is not enough: dbt builds the stream) and the impressions
        of its schedule date. Ids stay remembered, so a retry is still recognised as a duplicate."""
        fresh = LiveEvents(self.key)
        keep = {}
        for table, frame in self.frames().items():
            missing = ~snapshot.in_stream(table, frame["event_id"].to_numpy(dtype=np.int64))
            if table == "ad_events":
                feeds_sequences = (frame["event_type"] == "click").to_numpy()
                counts_today = (frame["ts"].dt.date == snapshot.schedule_date).to_numpy()
                missing = np.where(feeds_sequences, missing, counts_today)
            keep[table] = frame[missing]
        fresh.add(keep, snapshot)
        fresh.ids = {table: set(ids) for table, ids in self.ids.items()}
        return fresh

    def user_history(self, snapshot: Snapshot, user_key: str) -> tuple[UserHistory, int]:
        """The user's loaded events plus those posted since, and how many were posted since."""
        loaded, posted = snapshot.histories.of(user_key), self.histories.get(user_key)
        if posted is None:
            return loaded, 0
        return loaded.merged(posted), len(posted)

    def delivered(self, user_key: str, day) -> dict[int, int]:
        """Impressions of each ad delivered to the user on `day` (posted since load)."""
        return {ad_id: n for (ad_id, date), n in list(self.impressions.get(user_key, {}).items()) if date == day}

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every event posted since load, per table."""
        return {table: pd.concat(parts, ignore_index=True) if parts else empty_contract_frame(table)
                for table, parts in self.posted.items()}

    def counts(self) -> dict[str, int]:
        return {table: sum(len(part) for part in parts) for table, parts in self.posted.items()}
