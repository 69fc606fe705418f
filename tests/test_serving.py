"""Real-time serving on a really materialized pipeline: a real uvicorn process over real HTTP,
re-ranking from posted events, and the feedback loop into landing files the ingest accepts."""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pandas as pd
import pytest
from pipeline_fixture import materialized_pipeline

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    yield from materialized_pipeline(tmp_path_factory)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _call(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def server(pipeline):
    settings, *_ = pipeline
    port = _free_port()
    # Own session and process group, default signal handling: stopped by killing the group.
    process = subprocess.Popen([sys.executable, "-m", "serving", "--port", str(port)], env=dict(os.environ),
                               start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if _call(f"{base}/health")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serving did not start:\n{process.stdout.read().decode()[-3000:]}")
            time.sleep(0.5)
        yield settings, base
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _scheduled_user(settings) -> tuple[int, str, pd.DataFrame]:
    """A simulated user_id with a schedule, its pseudonym and its scheduled rows."""
    from ml.settings import pseudonymize
    from ml.simulator.world import World

    schedule = pd.read_parquet(sorted((settings.data_root / "schedules").glob("date=*/schedule.parquet"))[-1])
    by_key = {pseudonymize(int(World.ids("user", i)), settings.pseudonym_salt): int(World.ids("user", i))
              for i in range(150)}
    user_key = schedule["user_key"].value_counts().index[0]
    return by_key[user_key], user_key, schedule[schedule["user_key"] == user_key]


def test_health_reports_the_champions(server):
    settings, base = server
    from mlflow import MlflowClient

    from ml.registry import configure_mlflow

    configure_mlflow(settings)
    status, health = _call(f"{base}/health")
    assert status == 200
    for name in ("ctr_ranker", "cvr_ranker"):
        assert health["models"][name] == str(MlflowClient().get_model_version_by_alias(name, "champion").version)


def test_fresh_events_rerank_only_scheduled_ads_and_land_for_the_next_run(server):
    settings, base = server
    user_id, user_key, planned = _scheduled_user(settings)
    status, before = _call(f"{base}/users/{user_id}/ads")
    assert status == 200
    assert {ad["ad_id"] for ad in before["ads"]} == set(planned["ad_id"])
    for ad in before["ads"]:  # nothing new since the schedule: the service agrees with it
        assert ad["value"] == pytest.approx(ad["planned_value"], rel=1e-6)

    schedule_day = dt.date.fromisoformat(before["schedule_date"])
    ads = pd.DataFrame(before["ads"])
    start = pd.Timestamp(schedule_day) + pd.Timedelta(hours=8)
    behavior = [{"event_id": 9_000_000 + i, "user_id": user_id, "ts": (start + pd.Timedelta(minutes=i)).isoformat(),
                 "event_type": "view", "category_id": 1, "brand_id": 1, "item_id": 1 + i} for i in range(12)]
    impression = {"event_id": 9_100_000, "impression_id": 9_100_000, "user_id": user_id,
                  "ad_id": int(ads["ad_id"].iloc[0]), "ts": (start + pd.Timedelta(minutes=30)).isoformat(),
                  "event_type": "impression", "slot": 1, "cost": 0.0, "propensity": 0.2}
    status, accepted = _call(f"{base}/events", {"behavior_events": behavior, "ad_events": [impression]})
    assert status == 200 and accepted["accepted"] == {"behavior_events": 12, "ad_events": 1}

    _, after = _call(f"{base}/users/{user_id}/ads")
    assert {ad["ad_id"] for ad in after["ads"]} == set(planned["ad_id"])
    changed = [a["pctr"] != b["pctr"] for a, b in zip(sorted(before["ads"], key=lambda a: a["ad_id"]),
                                                      sorted(after["ads"], key=lambda a: a["ad_id"]))]
    assert any(changed), "fresh events did not change any score"

    # The feedback loop: the posted events are landing files the daily ingest accepts, and the
    # service does not hold the warehouse (a writer opens it while the service runs).
    from ml.ingest import ingest_day
    from ml.warehouse import connect

    with connect(settings.warehouse_path) as conn:
        reports = ingest_day(conn, settings.landing_dir, schedule_day, tables=["behavior_events", "ad_events"])
        loaded = {r.table: sum(f.rows_accepted for f in r.files) for r in reports}
        quarantined = conn.execute("select count(*) from raw.quarantine where partition_date = ?",
                                   [schedule_day]).fetchall()[0][0]
    assert loaded == {"behavior_events": 12, "ad_events": 1} and quarantined == 0


def test_bad_input_gets_a_reason_and_unknown_users_a_404(server):
    _, base = server
    status, error = _call(f"{base}/events", {"behavior_events": [
        {"event_id": 1, "user_id": 1, "ts": "yesterday-ish", "event_type": "teleport", "item_id": 1}]})
    assert status == 422
    problems = {tuple(item["loc"][-1:]) for item in error["detail"]}
    assert {("ts",), ("event_type",)} <= problems
    assert _call(f"{base}/users/1/ads")[0] == 404
    assert _call(f"{base}/users/1/ads?hour=30")[0] == 422
