"""The HTTP service: health, a user's ads re-ranked now, events in (and on to landing), reload."""
from __future__ import annotations

import threading

from fastapi import FastAPI, HTTPException

from ml.settings import Settings, pseudonymize
from serving.events import EventBatch, stream_rows, write_landing_files
from serving.rerank import rerank
from serving.snapshot import Snapshot


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="adflow serving", description="Re-ranks the daily schedule from fresh events.")
    lock = threading.Lock()  # one snapshot swap or event append at a time
    state = {"snapshot": Snapshot.load(settings)}

    def snapshot() -> Snapshot:
        return state["snapshot"]

    @app.get("/health")
    def health() -> dict:
        current = snapshot()
        return {"status": "ok", "schedule_date": current.schedule_date.isoformat(),
                "models": current.model_versions(), "level_factors": current.scorer.level_factors,
                "scheduled_users": int(current.schedule["user_key"].nunique()),
                "events_loaded": len(current.event_stream), "loaded_at": current.loaded_at.isoformat()}

    @app.get("/users/{user_id}/ads")
    def user_ads(user_id: int, hour: int | None = None) -> dict:
        if hour is not None and not 0 <= hour <= 23:
            raise HTTPException(422, f"hour must be in 0..23, got {hour}")
        current = snapshot()
        user_key = pseudonymize(user_id, settings.pseudonym_salt)
        known = (current.event_stream["user_key"] == user_key).any() or (current.schedule["user_key"] == user_key).any()
        if not known:
            raise HTTPException(404, f"user {user_id} has no events and no schedule for {current.schedule_date}")
        ads = rerank(current, user_key, hour)
        reason = None if len(ads) else "no ads scheduled for this user" + (f" at hour {hour}" if hour is not None else "")
        return {"user_id": user_id, "schedule_date": current.schedule_date.isoformat(), "hour": hour,
                "models": current.model_versions(), "reason": reason,
                "ads": ads.astype(object).where(ads.notna(), None).to_dict(orient="records")}

    @app.post("/events")
    def post_events(batch: EventBatch) -> dict:
        current = snapshot()
        catalog = current.features[["ad_id", "category_id", "brand_id"]]
        rows = stream_rows(batch, settings.pseudonym_salt, catalog)
        with lock:
            files = write_landing_files(settings, batch)
            current.add_events(rows)
        return {"accepted": {"behavior_events": len(batch.behavior_events), "ad_events": len(batch.ad_events)},
                "landing_files": [str(path.relative_to(settings.landing_dir)) for path in files]}

    @app.post("/reload")
    def reload() -> dict:
        fresh = Snapshot.load(settings)
        with lock:
            state["snapshot"] = fresh
        return health()

    return app
