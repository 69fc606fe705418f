"""The service as something safe to expose, on a really materialized pipeline with real processes:
writes need the token, bodies are bounded, the contract is strict and documented, an acknowledged
event survives kill -9 into the next ingest, and served ads carry the policy's propensity."""
from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter

import pandas as pd
import pyarrow.parquet as pq
import pytest
from pipeline_fixture import materialized_pipeline
from serving.process import REPO, TOKEN_ENV, call, running_service

pytestmark = pytest.mark.integration

TOKEN = "sec-test-token-4f9d2c7e1b0a"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    yield from materialized_pipeline(tmp_path_factory)


@pytest.fixture(scope="module")
def service(pipeline, tmp_path_factory):
    settings, *_ = pipeline
    with running_service(tmp_path_factory.mktemp("serving") / "service.log", TOKEN) as running:
        yield settings, running


@pytest.fixture(scope="module")
def scheduled_user(service):
    """(user_id, its ads answer) for the scheduled user with the most planned rows."""
    settings, running = service
    from ml.privacy.pseudonyms import pseudonymize
    from ml.simulator.world import World

    schedule = pd.read_parquet(sorted((settings.data_root / "schedules").glob("date=*/schedule.parquet"))[-1])
    by_key = {pseudonymize(int(World.ids("user", i)), settings.pseudonym_key): int(World.ids("user", i))
              for i in range(1000)}  # the fixture world's users
    user_id = by_key[schedule["user_key"].value_counts().index[0]]
    status, answer = call(f"{running.base}/users/{user_id}/ads?k=50")
    assert status == 200 and answer["ads"], answer
    return user_id, answer


def _event(event_id: int, **overrides) -> dict:
    """A valid behavior event, with `overrides`."""
    return {"event_id": event_id, "user_id": 1, "ts": "2026-11-10T10:00:00", "event_type": "view", "item_id": 1,
            **overrides}


def test_writes_need_the_bearer_token_and_reads_do_not(service):
    _, running = service
    base, batch = running.base, {"behavior_events": [_event(8_800_001)]}
    for token in (None, "wrong-token-of-some-length", TOKEN[:-1], TOKEN + "x"):
        for path, body in (("/events", batch), ("/reload", None)):
            status, error = call(f"{base}{path}", body, method="POST", token=token)
            assert status == 401 and "bearer token" in error["detail"], (path, token, error)
    # Another scheme with the right secret is not a bearer token either.
    assert call(f"{base}/events", batch, headers={"authorization": f"Basic {TOKEN}"})[0] == 401
    # The challenge header tells a client what to send.
    try:
        urllib.request.urlopen(urllib.request.Request(f"{base}/reload", method="POST"), timeout=30)
        raise AssertionError("reload without a token succeeded")
    except urllib.error.HTTPError as error:
        assert error.code == 401 and error.headers["WWW-Authenticate"] == "Bearer"

    status, accepted = call(f"{base}/events", batch, token=TOKEN)
    assert status == 200 and accepted["accepted"]["behavior_events"] == 1
    assert call(f"{base}/reload", method="POST", token=TOKEN)[0] == 200
    assert call(f"{base}/health")[0] == 200  # reads stay open

    schema = call(f"{base}/openapi.json")[1]
    scheme = schema["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer" and TOKEN_ENV in scheme["description"]
    assert schema["paths"]["/events"]["post"]["security"] == [{"bearer": []}]
    assert schema["paths"]["/reload"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in schema["paths"]["/users/{user}/ads"]["get"]


def test_the_token_never_reaches_the_log(service):
    _, running = service
    call(f"{running.base}/events", {"behavior_events": [_event(8_800_002)]}, token=TOKEN)
    call(f"{running.base}/events", {"behavior_events": [_event(8_800_003)]}, token="a-wrong-guess-0123456789")
    log = running.log()
    assert "POST /events" in log  # the access log is there, and it is the one being checked
    assert TOKEN not in log and "a-wrong-guess-0123456789" not in log


def test_no_token_means_loopback_only_and_read_only(pipeline, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != TOKEN_ENV}
    for host, token in (("0.0.0.0", None), ("192.0.2.10", None), ("::", None), ("0.0.0.0", "short")):
        run_env = {**env, TOKEN_ENV: token} if token else env
        refused = subprocess.run([sys.executable, "-m", "serving", "--host", host, "--port", "1"], cwd=REPO,
                                 env=run_env, capture_output=True, text=True, timeout=120)
        assert refused.returncode != 0 and TOKEN_ENV in refused.stderr, (host, refused.stderr[-2000:])
        assert "Traceback" not in refused.stderr  # a message, not a crash
    with running_service(tmp_path / "read-only.log", None, env=env) as read_only:
        status, error = call(f"{read_only.base}/events", {"behavior_events": [_event(8_800_004)]}, token=TOKEN)
        assert status == 401 and "started without" in error["detail"]
        assert call(f"{read_only.base}/health")[0] == 200


def test_loopback_addresses():
    from serving.auth import InsecureBind, check_bind, is_loopback

    assert all(map(is_loopback, ["127.0.0.1", "127.5.0.1", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.1", "example.org", ""]))
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", TOKEN)
    with pytest.raises(InsecureBind, match=TOKEN_ENV):
        check_bind("0.0.0.0", None)


def _raw_post(base: str, head: bytes, body: bytes = b"") -> tuple[int, dict]:
    """A request written byte by byte on a socket, its answer read back (status, JSON body)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(head + b"\r\n" + body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read())


def test_bodies_over_the_limit_get_a_413_in_the_error_shape(service):
    _, running = service
    from serving.body_limit import MAX_BODY_BYTES

    # Declared too large: refused from the headers alone, before a byte of the body is read.
    head = (f"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer {TOKEN}"
            f"\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\nConnection: close\r\n").encode()
    status, error = _raw_post(running.base, head)
    assert status == 413 and "larger than" in error["detail"]
    # Streamed without a length (chunked): counted as it arrives.
    body = b'{"behavior_events": [' + b" " * (MAX_BODY_BYTES - 20) + b"]}"
    chunked = b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n"
                       for part in (body[i:i + 2**20] for i in range(0, len(body), 2**20))) + b"0\r\n\r\n"
    status, error = _raw_post(running.base, head.replace(f"Content-Length: {MAX_BODY_BYTES + 1}".encode(),
                                                         b"Transfer-Encoding: chunked"), chunked)
    assert status == 413 and isinstance(error["detail"], str)
    # Just under the limit it is read (JSON with nothing in it: accepted, nothing landed).
    status, accepted = call(f"{running.base}/events", raw=body[:MAX_BODY_BYTES - 100] + b"]}", token=TOKEN)
    assert status == 200 and accepted["landing_files"] == [], accepted
    # The 10,000 events per table still apply (422).
    status, error = call(f"{running.base}/events", {"behavior_events": [_event(1)] * 10_001}, token=TOKEN)
    assert status == 422 and "10000" in error["detail"][0]["msg"]


@pytest.mark.parametrize("field, value", [
    ("event_id", True), ("event_id", 1.0), ("event_id", "1"), ("event_id", 2**63), ("user_id", -2**63 - 1),
    ("item_id", 10**30), ("ts", 1_700_000_000), ("ts", "2026-11-10"), ("ts", "2026-11-10 10:00:00"),
    ("ts", "1999-12-31T23:59:59"), ("ts", "2026-11-10T10:00:00+0100"), ("category_id", False),
])
def test_integers_are_integers_and_timestamps_rfc3339_in_range(service, field, value):
    _, running = service
    status, error = call(f"{running.base}/events", {"behavior_events": [{**_event(8_800_100), field: value}]},
                         token=TOKEN)
    assert status == 422, error
    assert [problem["loc"][-1] for problem in error["detail"]] == [field]
    assert set(error["detail"][0]) == {"loc", "msg", "type"}  # the documented Problem, nothing echoed


def test_the_extremes_the_schema_allows_are_accepted(service):
    _, running = service
    edge = _event(2**63 - 1, user_id=-2**63, item_id=2**63 - 1, ts="2099-12-31T23:59:59.999999", brand_id=None)
    status, accepted = call(f"{running.base}/events", {"behavior_events": [edge]}, token=TOKEN)
    assert status == 200 and accepted["accepted"]["behavior_events"] == 1, accepted
    status, accepted = call(f"{running.base}/events", {"behavior_events": [
        _event(8_800_200, ts="2026-11-10T10:00:00+01:00")]}, token=TOKEN)
    assert status == 200 and accepted["landing_files"][0].startswith("behavior_events/date=2026-11-10/")


def test_unreadable_bodies_get_documented_errors(service):
    _, running = service
    status, error = call(f"{running.base}/events", raw=b'{"behavior_events": [', token=TOKEN)
    assert status == 422 and error["detail"][0]["type"] == "json_invalid"
    # Python refuses to parse integers of more than 4300 digits: a 400, not a crash.
    status, error = call(f"{running.base}/events", raw=b'{"behavior_events": [{"event_id": ' + b"9" * 5000 + b"}]}",
                         token=TOKEN)
    assert status == 400 and isinstance(error["detail"], str)
    status, error = call(f"{running.base}/users/99999999999999999999/ads")  # 20 digits: not the path pattern
    assert status == 422
    status, error = call(f"{running.base}/users/9999999999999999999/ads")  # 19 digits, beyond int64
    assert status == 422 and error["detail"][0]["loc"] == ["path", "user"]


def test_the_schema_documents_every_status_and_the_bounds(service):
    _, running = service
    schema = call(f"{running.base}/openapi.json")[1]
    statuses = {(path, method): set(operation["responses"]) for path, item in schema["paths"].items()
                for method, operation in item.items()}
    assert statuses == {("/health", "get"): {"200"}, ("/users/{user}/ads", "get"): {"200", "404", "422"},
                        ("/events", "post"): {"200", "400", "401", "413", "422"},
                        ("/reload", "post"): {"200", "401", "413", "422", "503"}}
    for (path, method), codes in statuses.items():
        for code in codes - {"200"}:
            content = schema["paths"][path][method]["responses"][code]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    event = schema["components"]["schemas"]["AdEvent"]["properties"]
    assert event["event_id"]["minimum"] == -2**63 and event["event_id"]["maximum"] == 2**63 - 1
    assert event["ts"]["pattern"].startswith("^20[0-9]{2}-") and event["slot"]["minimum"] == 1


def test_served_ads_carry_the_policys_propensity(scheduled_user):
    _, answer = scheduled_user
    assert [ad["propensity"] for ad in answer["ads"]] == [1.0] * len(answer["ads"])  # a deterministic ranking


def test_an_acknowledged_event_survives_kill_9_into_the_next_ingest(service, scheduled_user, tmp_path):
    """POST answered 200, then SIGKILL at once: the landing files are whole (no temp debris) and the
    daily ingest loads every event, the impression with the propensity the service served it with."""
    settings, _ = service
    from ml.ingest import ingest_day
    from ml.warehouse import connect

    user_id, answer = scheduled_user
    shown = answer["ads"][0]
    day = dt.date.fromisoformat(answer["schedule_date"])
    impression = {"event_id": 8_900_001, "impression_id": 8_900_001, "user_id": user_id, "ad_id": shown["ad_id"],
                  "ts": f"{day}T{shown['hour']:02d}:05:00", "event_type": "impression", "slot": shown["slot"],
                  "cost": 0.0, "propensity": shown["propensity"]}
    views = [_event(8_900_100 + i, user_id=user_id, ts=f"{day}T{shown['hour']:02d}:0{i}:00") for i in range(5)]
    with running_service(tmp_path / "doomed.log", TOKEN) as doomed:
        status, accepted = call(f"{doomed.base}/events", {"behavior_events": views, "ad_events": [impression]},
                                token=TOKEN)
        doomed.kill()  # right after the answer
    assert status == 200 and accepted["accepted"] == {"behavior_events": 5, "ad_events": 1}
    landed = [settings.landing_dir / name for name in accepted["landing_files"]]
    for table in ("behavior_events", "ad_events"):
        folder = settings.landing_partition_dir(table, day)
        assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]  # no temp file left behind
    assert sum(pq.ParquetFile(path).metadata.num_rows for path in landed) == 6  # whole, readable files

    with connect(settings.warehouse_path) as conn:
        ingest_day(conn, settings.landing_dir, day, tables=["behavior_events", "ad_events"])
        ingested = conn.execute("select event_id, propensity from raw.ad_events where event_id = 8900001").fetchall()
        views_in = conn.execute("select count(*) from raw.behavior_events where event_id between 8900100 and 8900104"
                                ).fetchall()[0][0]
    assert ingested == [(8_900_001, 1.0)] and views_in == 5


def _copy_of_data_root(settings, destination):
    """The warehouse, schedules and MLflow store of `settings`' data root, without its landing folder:
    what the fuzzer posts lands in this throwaway root, never in one other tests read."""
    shutil.copytree(settings.data_root, destination,
                    ignore=shutil.ignore_patterns("landing", "dagster_home", "ground_truth"))
    return destination


# (operation, examples per mode, fixed path parameters): random users are mostly unknown (404), so a
# scheduled user's ads are fuzzed too (its query), which checks the documented 200 answer.
FUZZ_PLAN = [("GET /health", 5, None), ("GET /users/{user}/ads", 200, None),
             ("GET /users/{user}/ads", 100, "scheduled user"), ("POST /events", 400, None), ("POST /reload", 5, None)]
# Where the service rightly refuses some schema-valid requests, schemathesis' "valid data is accepted"
# check cannot hold: JSON Schema counts 1.0 as an integer (the service refuses floats for ids, on
# purpose), and it cannot say "an ad_id the ads table knows", "a real calendar day" or "a user_id
# within int64" (the path pattern allows 19 digits). Every other check runs everywhere.
SEMANTIC_RULES = {"GET /users/{user}/ads", "POST /events"}


def test_schemathesis_finds_no_server_error_no_schema_violation_and_no_accepted_invalid_request(
        service, scheduled_user, tmp_path):
    """Schemathesis generates requests from /openapi.json, valid and invalid (negative mode), with the
    token so the writes are exercised, and runs its checks on every answer: no 5xx, status codes,
    content types, headers and bodies as documented, invalid requests rejected, valid ones not
    rejected, writes refused without the token."""
    import schemathesis.checks
    from hypothesis import HealthCheck, Phase, given, settings as hypothesis_settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.generation import GenerationMode

    settings, _ = service
    root = _copy_of_data_root(settings, tmp_path / "fuzz-root")
    env = {**os.environ, "AD_DATA_ROOT": str(root)}
    env.pop("AD_WAREHOUSE_PATH", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with running_service(tmp_path / "fuzz.log", TOKEN, env=env) as target:
        schema = schemathesis.openapi.from_url(f"{target.base}/openapi.json")
        cases, statuses, failures = Counter(), Counter(), []
        started = time.monotonic()
        for label, examples, fixed in FUZZ_PLAN:
            method, path = label.split(" ")
            operation = schema.include(method=method, path=path)
            path_parameters = {"user": str(scheduled_user[0])} if fixed else None
            label = f"{label} ({fixed})" if fixed else label
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
                @hypothesis_settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                                     phases=[Phase.explicit, Phase.generate],
                                     suppress_health_check=list(HealthCheck))
                def fuzz(case):
                    cases[label, mode.value] += 1
                    try:
                        response = case.call_and_validate(base_url=target.base, headers=auth, excluded_checks=[
                            schemathesis.checks.positive_data_acceptance] if label in SEMANTIC_RULES else [])
                        statuses[label, response.status_code] += 1
                    except (Exception, BaseExceptionGroup) as error:  # collected: one run reports them all
                        failures.append(f"{label} ({mode.value}): {str(error)[:1500]}")

                try:
                    fuzz()
                except Unsatisfiable:  # nothing to make invalid: GET /health takes no input
                    assert label == "GET /health" and mode == GenerationMode.NEGATIVE
        elapsed = time.monotonic() - started
        print(f"schemathesis: {sum(cases.values())} cases in {elapsed:.0f} s; {dict(cases)}; statuses {dict(statuses)}")
        landing = sum(p.stat().st_size for p in (root / "landing").rglob("*") if p.is_file())
    assert not failures, f"{len(failures)} failures:\n" + "\n\n".join(failures[:10])
    assert sum(cases.values()) >= 500 and elapsed < 180
    assert statuses["POST /events", 200] and statuses["POST /events", 422]  # accepted and refused writes both ran
    assert statuses["GET /users/{user}/ads (scheduled user)", 200]  # ads answers were checked against UserAds
    assert landing < 50 * 2**20  # what the fuzzer could land stays small, and only in its own root
