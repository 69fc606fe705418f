"""The HTTP service: health, a user's ads re-ranked now, events in (and on to landing), reload."""
from __future__ import annotations

import asyncio
import gc
import time

import numpy as np
import pyarrow as pa
from fastapi import Depends, FastAPI, HTTPException, Path, Query
from fastapi.responses import ORJSONResponse

from ml.settings import Settings
from serving.api_schema import (EventsAccepted, Health, UserAds, error_responses, install_error_handlers,
                                install_exact_openapi, problem)
from serving.auth import token_from_env, write_guard
from serving.body_limit import MAX_BODY_BYTES, BodySizeLimit
from serving.events import EVENT_TABLES, EventBatch, contract_tables, event_days, write_landing_files
from serving.group_commit import GroupCommit
from serving.live import LiveEvents
from serving.rerank import rerank
from serving.snapshot import USER_KEY_PATTERN, Snapshot, WarehouseBusy

# A user_id (int64, as in the landing files) or its pseudonym, the warehouse's user_key.
USER_PATTERN = r"^(-?[0-9]{1,19}|[0-9a-f]{32})$"


def exempt_from_gc() -> None:
    """The snapshot's millions of objects live until the next reload: without this, each full garbage
    collection walked them all and stalled requests for 100-200 ms (measured: p99 114 ms, p95 3 ms).
    Unfrozen first, so a reload's collection can free the previous snapshot's cycles."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def create_app(settings: Settings, token: str | None = None) -> FastAPI:
    """`token` guards the writes (POST /events, /reload); None: read from ADFLOW_SERVING_TOKEN, and
    if that is unset too the service is read-only."""
    token = token or token_from_env()
    app = FastAPI(title="adflow serving", description="Re-ranks the daily schedule from fresh events; events "
                  "posted here land as files for the next daily run. Writes need the bearer token.")
    app.add_middleware(BodySizeLimit, max_body_size=MAX_BODY_BYTES)
    install_error_handlers(app)
    install_exact_openapi(app)
    authorised = [Depends(write_guard(token))]
    # One reference to swap: a request sees a snapshot with the live events that go with it.
    state = {"current": (Snapshot.load(settings), LiveEvents(settings.pseudonym_key))}
    exempt_from_gc()

    def health() -> dict:
        current, live = state["current"]
        return {"status": "ok", "schedule_date": current.schedule_date.isoformat(),
                "models": current.model_versions(), "level_factors": current.scorer.level_factors,
                "scheduled_users": len(current.schedule_rows), "scheduled_rows": len(current.schedule),
                "users_with_events": len(current.histories.rows), "events_loaded": current.histories.n_events,
                "events_posted_since_load": live.counts(), "loaded_at": current.loaded_at.isoformat()}

    app.get("/health", summary="Loaded schedule date, champion versions, users and events in memory",
            response_model=Health)(health)

    @app.get("/users/{user}/ads", summary="The user's scheduled ads, re-ranked with the events seen up to now",
             response_model=UserAds, responses=error_responses(404, 422))
    async def user_ads(user: str = Path(pattern=USER_PATTERN, description="a user_id (int64) or a user_key (32 hex)"),
                 hour: int | None = Query(None, ge=0, le=23, description="only ads planned for this hour"),
                 k: int = Query(4, ge=1, le=100, description="at most this many ads"),
                 rescore: bool = Query(False, description="score with the champions even if nothing changed "
                                       "since the schedule (the numbers are the same, only slower)")) -> ORJSONResponse:
        # Scoring one user is about a millisecond of CPU: done on the event loop, no thread hand-off.
        started = time.perf_counter()
        current, live = state["current"]
        if not (USER_KEY_PATTERN.match(user) or -2**63 <= int(user) < 2**63):
            raise HTTPException(422, [problem(["path", "user"], "user_id out of the int64 range", "int64_range")])
        user_key = current.user_key_of(user, settings.pseudonym_key)
        if not current.knows(user_key) and user_key not in live.histories:
            raise HTTPException(404, f"unknown user {user}: no events and no schedule for "
                                     f"{current.schedule_date} (user_key {user_key})")
        history, fresh = live.user_history(current, user_key)
        ranking = rerank(current, user_key, history, fresh, live.delivered(user_key, current.schedule_date), hour, k,
                         rescore)
        reason = None
        if not ranking.ads:
            when = f" at hour {hour}" if hour is not None else ""
            reason = (f"every ad planned{when} was already delivered: {ranking.used_up}" if ranking.used_up else
                      f"no ads scheduled for this user{when} on {current.schedule_date}")
        # Returned as a response, so FastAPI does not validate it again against UserAds (the tests
        # and the schemathesis run check that it matches).
        return ORJSONResponse({"user": user, "user_key": user_key, "schedule_date": current.schedule_date.isoformat(),
                "hour": hour, "models": current.model_versions(), "fresh_events": ranking.fresh_events,
                "rescored": ranking.rescored,
                "sequence_as_of": ranking.as_of.isoformat(), "delivered_ads": ranking.used_up, "reason": reason,
                "ads": ranking.ads, "latency_ms": round(1000 * (time.perf_counter() - started), 1)})

    @app.post("/events", summary="Behavior and ad events (landing contract columns): used for re-ranking "
              "at once, and landed as files for the next daily run", dependencies=authorised,
              response_model=EventsAccepted, responses=error_responses(400, 401, 413, 422))
    async def post_events(batch: EventBatch) -> dict:
        catalog = state["current"][0].ad_catalog.index
        unknown_ads = sorted({event.ad_id for event in batch.ad_events if event.ad_id not in catalog})
        if unknown_ads:  # the ingest would quarantine them (unknown_ad): refuse them here instead
            raise HTTPException(422, [problem(["body", "ad_events", "ad_id"],
                                              f"ad_id not in the ads table: {unknown_ads[:20]}", "unknown_ad")])
        return await landing.submit(batch)

    async def land(batches: list[EventBatch]) -> list[dict]:
        """One landing write for a group of POSTs (serving/group_commit.py), then their events join
        the users' histories: the per-event work done once per group, on one table per contract table. Ids
        are remembered only once written: a failed write is retried whole. The bookkeeping runs on
        the event loop, like the requests that read it, so nothing needs a lock; only the write
        itself (Parquet and fsync, which release the GIL) runs in a thread."""
        current, live = state["current"]
        tables = contract_tables(*batches)
        duplicate = live.duplicates(tables, current)
        group = {table: rows.filter(pa.array(~duplicate[table])) for table, rows in tables.items()}
        files = await asyncio.to_thread(write_landing_files, settings, group)
        current, live = state["current"]  # a reload may have swapped them meanwhile: add to the new ones
        live.add(group, current)
        request_of_row = {table: np.repeat(np.arange(len(batches)), [len(getattr(batch, table)) for batch in batches])
                          for table in EVENT_TABLES}
        answers = []
        for number in range(len(batches)):
            accepted, duplicates, folders = {}, {}, set()
            for table, rows in tables.items():
                mine = request_of_row[table] == number
                new = mine & ~duplicate[table]
                accepted[table] = int(new.sum())
                duplicates[table] = rows.column("event_id").to_numpy()[mine & duplicate[table]].tolist()
                folders |= {settings.landing_partition_dir(table, day) for day in set(event_days(rows)[new].tolist())}
            answers.append({"accepted": accepted, "duplicates_ignored": duplicates,
                            "landing_files": [str(path.relative_to(settings.landing_dir)) for path in files
                                              if path.parent in folders]})
        return answers

    landing = GroupCommit(land)

    @app.post("/reload", summary="Load the latest schedule, champions and event stream again",
              dependencies=authorised, response_model=Health, responses=error_responses(401, 413, 422, 503))
    async def reload(wait_seconds: float = Query(10.0, ge=0, le=600, description="how long to wait for a "
                                                  "writer (the daily run) to release the warehouse")) -> dict:
        try:  # in a thread: requests keep being answered from the current snapshot meanwhile
            fresh = await asyncio.to_thread(Snapshot.load, settings, wait_seconds=wait_seconds)
        except WarehouseBusy as error:
            raise HTTPException(503, f"{error}; still serving the snapshot loaded at "
                                     f"{state['current'][0].loaded_at.isoformat()}, retry later") from error
        # On the event loop: no event is added between rebasing and the swap.
        state["current"] = (fresh, state["current"][1].rebased(fresh))
        exempt_from_gc()
        return health()

    return app
