"""Real-time serving on a really materialized pipeline: a real uvicorn process over real HTTP,
re-ranking from posted events, and the feedback loop into landing files the ingest accepts."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pipeline_fixture import materialized_pipeline
from serving.process import call, running_service

pytestmark = pytest.mark.integration

NEW_USER_ID = 77_000_001  # posts events but has no schedule


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    yield from materialized_pipeline(tmp_path_factory)


TOKEN = "test-serving-token-0123456789"


def _call(url: str, body: dict | None = None, method: str | None = None) -> tuple[int, dict]:
    """Every call carries the write token: these tests are about what an authorised client gets."""
    return call(url, body, method, token=TOKEN)


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory):
    settings, *_ = pipeline
    with running_service(tmp_path_factory.mktemp("serving") / "service.log", TOKEN) as service:
        yield settings, service.base


@pytest.fixture(scope="module")
def scheduled(server):
    """The schedule, the ads table, and simulated user ids of scheduled users (most rows first)."""
    settings, _ = server
    from ml.privacy.pseudonyms import pseudonymize
    from ml.simulator.world import World

    schedule = pd.read_parquet(sorted((settings.data_root / "schedules").glob("date=*/schedule.parquet"))[-1])
    ads = pd.concat(pd.read_parquet(p) for p in (settings.landing_dir / "ads").glob("date=*/*.parquet"))
    by_key = {pseudonymize(int(World.ids("user", i)), settings.pseudonym_key): int(World.ids("user", i))
              for i in range(1000)}  # the fixture world's users
    users = [(by_key[key], key) for key in schedule["user_key"].value_counts().index]
    return schedule, ads.drop_duplicates("ad_id", keep="last").set_index("ad_id"), users


def _ads(base: str, user, **query) -> dict:
    url = f"{base}/users/{user}/ads" + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    status, body = _call(url)
    assert status == 200, body
    return body


def _by_ad(response: dict) -> dict[int, dict]:
    return {ad["ad_id"]: ad for ad in response["ads"]}


def test_health_reports_the_champions(server):
    settings, base = server
    from mlflow import MlflowClient

    from ml.registry import configure_mlflow

    configure_mlflow(settings)
    status, health = _call(f"{base}/health")
    assert status == 200
    name = "ctr_ranker"  # the fixture's only champion ranker (its first CVR ranker was refused)
    assert health["models"][name] == str(MlflowClient().get_model_version_by_alias(name, "champion").version)
    assert health["models"][f"{name}_encoder"]  # the encoder version whose features it was trained on
    assert "cvr_ranker" not in health["models"]
    schedules = sorted((settings.data_root / "schedules").glob("date=*/schedule.parquet"))
    assert health["schedule_date"] == schedules[-1].parent.name.removeprefix("date=")
    assert health["scheduled_users"] > 0 and health["events_loaded"] > 0


def test_a_users_ads_are_their_schedule_reranked(server, scheduled):
    _, base = server
    schedule, _, users = scheduled
    user_id, user_key = users[0]
    planned = schedule[schedule["user_key"] == user_key]
    by_id = _ads(base, user_id, k=50)
    assert set(_by_ad(by_id)) == set(planned["ad_id"])
    assert _ads(base, user_key, k=50)["ads"] == by_id["ads"]  # the warehouse's user_key works as well
    values = [ad["value"] for ad in by_id["ads"]]
    assert values == sorted(values, reverse=True) and [ad["rank"] for ad in by_id["ads"]] == list(
        range(1, len(values) + 1))
    assert by_id["models"]["ctr_ranker"] and by_id["fresh_events"] == 0
    # Nothing new since the schedule: its scores stand, and scoring again with the champions agrees.
    rescored = _ads(base, user_id, k=50, rescore="true")
    assert not by_id["rescored"] and rescored["rescored"]
    for ad in by_id["ads"]:
        again = _by_ad(rescored)[ad["ad_id"]]
        assert ad["value"] == pytest.approx(ad["planned_value"], rel=1e-9)
        assert again["value"] == pytest.approx(ad["planned_value"], rel=1e-6)
        assert again["top_features"] == ad["top_features"]
        assert ad["reason"] and "no fresh events" in ad["reason"]
        # Why, in words: the schedule's, and the same words when the champions score it again.
        assert ad["why"] and ad["why"] in set(planned.loc[planned["ad_id"] == ad["ad_id"], "why"])
        assert again["why"] == ad["why"]
        # The creative the schedule drew for this ad (ml/creatives), or none for an ad without creatives.
        row = planned[(planned["ad_id"] == ad["ad_id"]) & (planned["hour"] == ad["hour"]) & (planned["slot"] == ad["slot"])]
        if pd.isna(row["creative_id"].iloc[0]):
            assert ad["creative_id"] is None and ad["creative_probability"] is None
        else:
            assert ad["creative_id"] == int(row["creative_id"].iloc[0]) and ad["creative_title"]
            assert ad["creative_probability"] == pytest.approx(float(row["creative_probability"].iloc[0]))
    assert any(ad["creative_id"] is not None for user_id_, _ in users[:30] for ad in _ads(base, user_id_, k=50)["ads"])

    hour = int(planned["hour"].iloc[0])
    in_hour = _ads(base, user_id, hour=hour, k=1)
    assert len(in_hour["ads"]) == 1 and in_hour["ads"][0]["hour"] == hour
    assert in_hour["ads"][0]["ad_id"] in set(planned.loc[planned["hour"] == hour, "ad_id"])
    free_hour = next(h for h in range(24) if h not in set(planned["hour"]))
    empty = _ads(base, user_id, hour=free_hour)
    assert empty["ads"] == [] and "no ads scheduled" in empty["reason"]


def _views(user_id: int, start: pd.Timestamp, category_id: int, brand_id: int, first_id: int, n: int = 15):
    kinds = ["view", "view", "click", "cart", "fav"]
    return [{"event_id": first_id + i, "user_id": user_id, "ts": (start + pd.Timedelta(minutes=i)).isoformat(),
             "event_type": kinds[i % len(kinds)], "category_id": category_id, "brand_id": brand_id,
             "item_id": 500 + i} for i in range(n)]


def test_fresh_events_in_the_ads_category_change_the_users_scores(server, scheduled):
    _, base = server
    _, ads, users = scheduled
    posted_for, untouched = users[1:4], users[4]
    before = {user_id: _ads(base, user_id, k=50) for user_id, _ in [*posted_for, untouched]}
    changed = []
    for n, (user_id, _) in enumerate(posted_for):
        top = before[user_id]["ads"][0]
        start = pd.Timestamp(before[user_id]["schedule_date"]) + pd.Timedelta(hours=7)
        events = _views(user_id, start, int(ads.loc[top["ad_id"], "category_id"]),
                        int(ads.loc[top["ad_id"], "brand_id"]), first_id=9_000_000 + 100 * n)
        status, accepted = _call(f"{base}/events", {"behavior_events": events})
        assert status == 200 and accepted["accepted"] == {"behavior_events": 15, "ad_events": 0}, accepted
        after = _ads(base, user_id, k=50)
        assert after["fresh_events"] == 15 and after["sequence_as_of"] > before[user_id]["sequence_as_of"]
        assert after["rescored"]
        assert set(_by_ad(after)) == set(_by_ad(before[user_id]))  # still only the planned ads
        changed.append(any(after_ad["pctr"] != _by_ad(before[user_id])[ad_id]["pctr"]
                           for ad_id, after_ad in _by_ad(after).items()))
        assert all("15 fresh events" in ad["reason"] and ad["why"] for ad in after["ads"])
    assert any(changed), "fresh events in the ads' categories changed no score"
    assert _ads(base, untouched[0], k=50)["ads"] == before[untouched[0]]["ads"]  # others are not affected


def test_a_delivered_impression_uses_up_its_planned_slot(server, scheduled):
    _, base = server
    _, _, users = scheduled
    user_id, _ = users[0]
    before = _ads(base, user_id, k=50)
    shown = before["ads"][0]
    impression = {"event_id": 9_100_000, "impression_id": 9_100_000, "user_id": user_id, "ad_id": shown["ad_id"],
                  "ts": f"{before['schedule_date']}T{shown['hour']:02d}:05:00+00:00", "event_type": "impression",
                  "slot": shown["slot"], "cost": 0.0, "propensity": 0.2,
                  "creative_id": shown["creative_id"], "creative_propensity": shown["creative_probability"]}
    click = {**impression, "creative_propensity": None, "event_id": 9_100_001, "event_type": "click", "cost": 0.3,
             "ts": f"{before['schedule_date']}T{shown['hour']:02d}:06:00"}
    status, accepted = _call(f"{base}/events", {"ad_events": [impression, click]})
    assert status == 200 and accepted["accepted"]["ad_events"] == 2
    after = _ads(base, user_id, k=50)
    assert shown["ad_id"] not in _by_ad(after) and after["delivered_ads"] == [shown["ad_id"]]
    assert set(_by_ad(after)) == set(_by_ad(before)) - {shown["ad_id"]}
    assert after["fresh_events"] == 1  # the click joined the sequence (as an ad_click), the impression did not

    # A retry of the same POST is acknowledged and neither stored nor landed again.
    status, again = _call(f"{base}/events", {"ad_events": [impression, click]})
    assert status == 200 and again["accepted"]["ad_events"] == 0 and again["landing_files"] == []
    assert sorted(again["duplicates_ignored"]["ad_events"]) == [9_100_000, 9_100_001]


def test_bad_input_gets_a_422_with_a_reason_and_unknown_users_a_404(server, scheduled):
    _, base = server
    _, _, users = scheduled
    status, error = _call(f"{base}/events", {"behavior_events": [
        {"event_id": 1, "user_id": 1, "ts": "yesterday-ish", "event_type": "teleport", "item_id": 1, "color": "red"}]})
    assert status == 422
    problems = {item["loc"][-1]: item["msg"] for item in error["detail"]}
    assert {"ts", "event_type", "color"} <= set(problems) and "view" in problems["event_type"]
    status, error = _call(f"{base}/events", {"ad_events": [
        {"event_id": 2, "impression_id": 2, "user_id": 1, "ad_id": 1, "ts": "2026-11-10T10:00:00",
         "event_type": "click", "slot": 0, "cost": -1}]})
    assert status == 422 and {item["loc"][-1] for item in error["detail"]} == {"slot", "cost"}
    status, error = _call(f"{base}/events", {"ad_events": [
        {"event_id": 3, "impression_id": 3, "user_id": 1, "ad_id": 424242, "ts": "2026-11-10T10:00:00",
         "event_type": "click", "slot": 1, "cost": 0.1}]})
    assert status == 422 and "424242" in error["detail"][0]["msg"]  # the ingest would quarantine it

    one = {"event_id": 4, "user_id": 1, "ts": "2026-11-10T10:00:00", "event_type": "view", "item_id": 1}
    status, error = _call(f"{base}/events", {"behavior_events": [one] * 10_001})
    assert status == 422 and "10000" in error["detail"][0]["msg"]  # large deliveries go to landing files

    status, error = _call(f"{base}/users/1/ads")
    assert status == 404 and "unknown user 1" in error["detail"]
    assert _call(f"{base}/users/not-a-user/ads")[0] == 422
    assert _call(f"{base}/users/{users[0][0]}/ads?hour=30")[0] == 422
    assert _call(f"{base}/users/{users[0][0]}/ads?k=0")[0] == 422


def test_a_user_without_a_schedule_gets_an_empty_list_with_a_reason(server):
    _, base = server
    status, health = _call(f"{base}/health")
    start = pd.Timestamp(health["schedule_date"]) + pd.Timedelta(hours=9)
    status, _ = _call(f"{base}/events", {"behavior_events": _views(NEW_USER_ID, start, 1, 1, 9_200_000, n=2)})
    assert status == 200
    response = _ads(base, NEW_USER_ID)
    assert response["ads"] == [] and "no ads scheduled" in response["reason"] and response["fresh_events"] == 2


def _landed(settings, table: str, day: dt.date) -> pd.DataFrame:
    # Nullable ints stay ints (creative_id is empty on most rows): a float id is not a contract id.
    frame = pd.concat(pd.read_parquet(p, dtype_backend="numpy_nullable")
                      for p in settings.landing_partition_dir(table, day).glob("part-*.parquet"))
    frame = frame[[c for c in frame.columns if c != "date"]]
    return frame.astype(object).where(frame.notna(), None)


def _event_stream(settings) -> pd.DataFrame:
    from ml.warehouse import connect

    with connect(settings.warehouse_path, read_only=True) as conn:
        return conn.sql("select * from main.user_event_stream").df()


def test_the_stream_read_in_batches_holds_the_encoders_tokens_in_their_order(pipeline):
    """The service reads user_event_stream in small batches straight into token arrays; they must be
    what the encoder's own EventIndex makes of the whole frame (same order, same tokens)."""
    settings, *_ = pipeline
    from dataclasses import fields

    from ml.encoder.sequences import EventIndex
    from ml.scoring import ChampionScorer, read_level_factors
    from ml.warehouse import connect
    from serving.history import StreamHistories

    stream = _event_stream(settings)
    with connect(settings.warehouse_path, read_only=True) as conn:
        scorer = ChampionScorer.load(read_level_factors(conn))
        histories = StreamHistories.read(conn, scorer.encoders, batch_rows=1000)  # many batches
    assert scorer.encoders and histories.n_events == len(stream) > 3000
    for run, encoder in scorer.encoders.items():
        index = EventIndex.from_event_stream(stream, encoder.config)
        assert histories.users() == list(index.user_keys)
        for field in fields(histories.tokens[run]):
            np.testing.assert_array_equal(getattr(histories.tokens[run], field.name), getattr(index, field.name),
                                          err_msg=field.name)
        assert all(histories.rows[key] == index.user_rows(key) for key in index.user_keys[:50])
    np.testing.assert_array_equal(histories.events.ts_ns, index.ts_ns)
    assert histories.events.is_behavior.sum() == (stream["event_type"] != "ad_click").sum()
    assert histories.events.is_buy.sum() == (stream["event_type"] == "buy").sum()


def _scheduled_candidates(settings, schedule_date: dt.date) -> pd.DataFrame:
    """dbt's candidate rows for the schedule date, by (user_key, ad_id)."""
    from ml.warehouse import connect

    with connect(settings.warehouse_path, read_only=True) as conn:
        return conn.execute("select * from ml.scored_candidates where schedule_date = ? order by user_key, ad_id",
                            [schedule_date]).df()


def test_behavior_features_recomputed_at_the_day_start_equal_dbts(pipeline):
    """Serving recomputes the behavior features as of now; at the schedule day's start they must be
    exactly what dbt computed as of that day (same definitions, no train/serve skew)."""
    settings, *_ = pipeline
    import yaml

    from ml.rankers.live_features import FEATURE_WINDOW_DAYS, LIVE_FEATURE_COLUMNS, behavior_features
    from serving.snapshot import Snapshot

    dbt_vars = yaml.safe_load((Path(__file__).parents[1] / "dbt_project" / "dbt_project.yml").read_text())["vars"]
    assert dbt_vars["feature_window_days"] == FEATURE_WINDOW_DAYS
    snapshot = Snapshot.load(settings)
    day_start = pd.Timestamp(snapshot.schedule_date)
    candidates = _scheduled_candidates(settings, snapshot.schedule_date)
    candidates_of = dict(iter(candidates.groupby("user_key")))

    def user_features(user_key: str) -> pd.DataFrame:
        return candidates_of[user_key].reset_index(drop=True)

    def live_features(user_key: str, as_of: pd.Timestamp) -> pd.DataFrame:
        rows = user_features(user_key)
        candidates = {key: rows[key].to_numpy(dtype=float) for key in ("category_id", "brand_id")}
        return pd.DataFrame(behavior_features(snapshot.histories.of(user_key).events, candidates, as_of.value))

    users = snapshot.schedule["user_key"].unique()
    with_history = []  # users whose ads' categories they had events in: the comparison is not all zeros
    for user_key in users:
        dbt_rows = user_features(user_key)
        pd.testing.assert_frame_equal(live_features(user_key, day_start)[LIVE_FEATURE_COLUMNS].astype(float),
                                      dbt_rows[LIVE_FEATURE_COLUMNS].astype(float),
                                      check_exact=False, rtol=1e-9, obj=f"user {user_key}")
        if (dbt_rows["user_category_events_7d"] > 0).any():
            with_history.append(user_key)
    assert len(users) > 20 and len(with_history) > 10
    # Later in the day the same events are further back: hours since grow by the time passed.
    user_key = with_history[0]
    dbt_rows = user_features(user_key)
    later = live_features(user_key, day_start + pd.Timedelta(hours=3))
    seen = dbt_rows["hours_since_user_category_event"].notna()
    assert seen.any()
    np.testing.assert_allclose(later.loc[seen, "hours_since_user_category_event"],
                               dbt_rows.loc[seen, "hours_since_user_category_event"] + 3)


def _before(history, ts_ns: int):
    """The history's events strictly before ts_ns, in the same order."""
    from dataclasses import fields, replace

    def cut(arrays):
        keep = arrays.ts_ns < ts_ns
        return replace(arrays, **{f.name: getattr(arrays, f.name)[keep] for f in fields(arrays)})

    return replace(history, tokens={run: cut(tokens) for run, tokens in history.tokens.items()}, events=cut(history.events))


def test_a_posted_event_scores_exactly_like_the_same_event_from_the_warehouse(pipeline):
    """Live path vs dbt path: the last day's behavior events and ad clicks, posted as contract rows,
    give the same sequences (tokens, order) and features, hence the same scores, as the event stream
    dbt built from them."""
    settings, *_ = pipeline
    from ml.privacy.pseudonyms import pseudonymize
    from serving.events import EventBatch, contract_tables
    from serving.history import posted_histories
    from serving.rerank import rerank
    from serving.snapshot import Snapshot

    snapshot = Snapshot.load(settings)
    stream = _event_stream(settings)
    last_day = snapshot.schedule_date - dt.timedelta(days=1)
    behavior, ad_events = _landed(settings, "behavior_events", last_day), _landed(settings, "ad_events", last_day)
    compared = 0
    for user_key in snapshot.schedule["user_key"].unique():
        events = stream[stream["user_key"] == user_key]
        recent = events[events["ts"] >= pd.Timestamp(last_day)]
        clicks = recent[recent["event_type"] == "ad_click"]
        if clicks.empty:
            continue
        batch = EventBatch(
            behavior_events=behavior[behavior["event_id"].isin(recent["event_id"])
                                     & ~behavior["event_id"].isin(clicks["event_id"])].to_dict("records"),
            ad_events=ad_events[ad_events["event_id"].isin(clicks["event_id"])].to_dict("records"))
        frames = contract_tables(batch)
        user_id = [*frames["behavior_events"].column("user_id").to_pylist(), *frames["ad_events"].column("user_id").to_pylist()][0]
        assert pseudonymize(user_id, settings.pseudonym_key) == user_key
        posted = posted_histories(frames, {user_id: user_key}, snapshot.ad_catalog, snapshot.scorer.encoders)[user_key]
        assert len(posted) == len(recent)
        from_warehouse = snapshot.histories.of(user_key)
        live = _before(from_warehouse, pd.Timestamp(last_day).value).merged(posted)
        for run, tokens in from_warehouse.tokens.items():
            for name in ("ts_ns", "item", "category", "brand", "event_type", "event_id"):
                np.testing.assert_array_equal(getattr(live.tokens[run], name), getattr(tokens, name), err_msg=name)
        ranked = [rerank(snapshot, user_key, history, 0, {}, k=50, rescore=True).ads
                  for history in (from_warehouse, live)]
        served = [[(ad["ad_id"], ad["pctr"], ad["pcvr"], ad["value"]) for ad in ads] for ads in ranked]
        assert served[0] == served[1] and served[0]
        compared += 1
        if compared == 5:
            break
    assert compared > 0, "no user clicked an ad on the last day"


def test_posted_events_land_in_the_contract_and_the_ingest_takes_them_all(server):
    """The feedback loop, while the service runs: it does not hold the warehouse (a writer opens
    it), and the daily ingest loads every posted event with nothing quarantined."""
    settings, base = server
    import pyarrow.parquet as pq

    from ml.ingest import ingest_day
    from ml.ingest.contract import get_contract
    from ml.warehouse import connect

    _, health = _call(f"{base}/health")
    posted = health["events_posted_since_load"]
    assert posted["behavior_events"] >= 47 and posted["ad_events"] == 2  # by the tests above
    schedule_day = dt.date.fromisoformat(health["schedule_date"])
    for table in ("behavior_events", "ad_events"):
        folder = settings.landing_partition_dir(table, schedule_day)
        files = sorted(folder.iterdir())
        assert files and all(f.name.startswith("serving-") and f.suffix == ".parquet" for f in files)  # no temp left
        for path in files:
            assert pq.read_schema(path).names == list(get_contract(table).column_names)
        assert sum(pq.ParquetFile(path).metadata.num_rows for path in files) == posted[table]

    with connect(settings.warehouse_path) as conn:  # a writer, while the service is up
        reports = ingest_day(conn, settings.landing_dir, schedule_day, tables=["behavior_events", "ad_events"])
        loaded = {r.table: sum(f.rows_accepted for f in r.files) for r in reports}
        quarantined = conn.execute("select count(*) from raw.quarantine where partition_date = ?",
                                   [schedule_day]).fetchall()[0][0]
        # While a writer holds the file, a reload waits briefly, then says so; serving goes on.
        status, busy = _call(f"{base}/reload?wait_seconds=1", {}, method="POST")
        assert status == 503 and "locked" in busy["detail"]
        assert _call(f"{base}/health")[1]["loaded_at"] == health["loaded_at"]
    assert loaded == posted and quarantined == 0

    # Reloading reads the warehouse again (read-only, then closed). The ingested events are not in
    # the dbt-built event stream yet, so the service keeps them for re-ranking.
    status, reloaded = _call(f"{base}/reload", {}, method="POST")
    assert status == 200 and reloaded["loaded_at"] > health["loaded_at"]
    assert reloaded["events_posted_since_load"] == posted
    assert _ads(base, NEW_USER_ID)["fresh_events"] == 2
    with connect(settings.warehouse_path) as conn:
        conn.execute("select 1").fetchall()


def test_delivered_impressions_use_up_the_earliest_planned_rows_of_the_day():
    from serving.rerank import remaining_plan

    plan = pd.DataFrame({"ad_id": [7, 7, 8], "hour": [8, 10, 9], "slot": [1, 1, 2]})
    left = remaining_plan(plan, {7: 1})
    assert sorted(zip(left["ad_id"], left["hour"])) == [(7, 10), (8, 9)]  # ad 7's 08:00 row was used
    assert remaining_plan(plan, {7: 5, 8: 1}).empty
    assert len(remaining_plan(plan, {})) == 3
