"""Events posted since the snapshot was loaded: what re-ranking adds to each user's sequence, and
the impressions already delivered against the schedule. Not yet in the warehouse (the next daily
run ingests their landing files); on reload, the ones the new snapshot already holds are dropped.

event_id is the idempotency key: an event already received (since load, or already ingested) is
acknowledged and not stored or landed again, so a client may safely retry a POST.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa

from ml.privacy.pseudonyms import pseudonymize
from serving.events import EVENT_TABLES, contract_tables, event_days
from serving.history import UserHistory, posted_histories
from serving.snapshot import Snapshot


class LiveEvents:
    def __init__(self, key: str):
        self.key = key  # the pseudonym key
        self.posted: dict[str, list[pa.Table]] = {table: [] for table in EVENT_TABLES}  # in arrival order
        self.ids: dict[str, set[int]] = {table: set() for table in EVENT_TABLES}
        self.histories: dict[str, UserHistory] = {}  # user_key -> events posted for the user
        self.impressions: dict[str, Counter] = {}  # user_key -> (ad_id, date) -> impressions delivered

    def duplicates(self, tables: dict[str, pa.Table], snapshot: Snapshot) -> dict[str, np.ndarray]:
        """Per table, per row: is the event a duplicate? Repeated earlier in the tables (which hold
        requests in arrival order), posted before, or already ingested."""
        duplicate = {}
        for table, rows in tables.items():
            ids = rows.column("event_id").to_numpy()
            posted = np.fromiter((i in self.ids[table] for i in ids.tolist()), dtype=bool, count=len(ids))
            repeated = np.ones(len(ids), dtype=bool)
            repeated[np.unique(ids, return_index=True)[1]] = False  # each id's first row is not a repeat
            duplicate[table] = repeated | posted | snapshot.already_ingested(table, ids)
        return duplicate

    def add(self, tables: dict[str, pa.Table], snapshot: Snapshot) -> None:
        """New events (see `duplicates`), one writer at a time (the app's group commit); readers only
        see whole tables swapped in."""
        for table, rows in tables.items():
            if rows.num_rows:
                self.posted[table].append(rows)
                self.ids[table].update(rows.column("event_id").to_pylist())
        user_keys = {user_id: self.user_key(user_id) for rows in tables.values()
                     for user_id in set(rows.column("user_id").to_pylist())}
        # The sequence tokens and feature arrays made once, here, not per request.
        for user_key, posted in posted_histories(tables, user_keys, snapshot.ad_catalog,
                                                 snapshot.scorer.encoders).items():
            before = self.histories.get(user_key)
            self.histories[user_key] = posted if before is None else before.merged(posted)
        ad_events = tables["ad_events"]
        if ad_events.num_rows:
            shown = (ad_events.column("event_type").to_numpy() == "impression")
            days = event_days(ad_events)[shown].tolist()
            for user_id, ad_id, day in zip(ad_events.column("user_id").to_numpy()[shown].tolist(),
                                           ad_events.column("ad_id").to_numpy()[shown].tolist(), days):
                self.impressions.setdefault(user_keys[user_id], Counter())[(ad_id, day)] += 1

    def user_key(self, user_id: int) -> str:
        return pseudonymize(int(user_id), self.key)

    def rebased(self, snapshot: Snapshot) -> "LiveEvents":
        """What a newly loaded snapshot still needs from the events posted so far: the ones its event
        stream does not hold yet (ingested is not enough: dbt builds the stream) and the impressions
        of its schedule date. Ids stay remembered, so a retry is still recognised as a duplicate."""
        fresh = LiveEvents(self.key)
        keep = {}
        for table, rows in self.tables().items():
            missing = ~snapshot.in_stream(table, rows.column("event_id").to_numpy())
            if table == "ad_events":
                feeds_sequences = rows.column("event_type").to_numpy() == "click"
                counts_today = event_days(rows) == np.datetime64(snapshot.schedule_date, "D")
                missing = np.where(feeds_sequences, missing, counts_today)
            keep[table] = rows.filter(pa.array(missing))
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

    def tables(self) -> dict[str, pa.Table]:
        """Every event posted since load, per table."""
        return {table: pa.concat_tables(parts) if parts else contract_tables()[table]
                for table, parts in self.posted.items()}

    def counts(self) -> dict[str, int]:
        return {table: sum(part.num_rows for part in parts) for table, parts in self.posted.items()}
