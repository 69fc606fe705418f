"""The dbt project on a tiny hand-written raw warehouse (tests/dbt_fixtures.py): real DuckDB files,
real `dbt build` runs. Asserts the stories the fixture rows tell: attribution, sessions,
point-in-time profiles and features, and that later events cannot leak into a training row."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ml.privacy.pseudonyms import pseudonymize
from ml.settings import REPO_ROOT
import dbt_fixtures
from dbt_fixtures import AS_OF_DATE, ts

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DBT_EXECUTABLE = Path(sys.executable).parent / "dbt"
TEST_KEY = "test-pseudonym-key"
SCHEDULE_DATE = AS_OF_DATE + dt.timedelta(days=1)


def user_key(user_id: int) -> str:
    return pseudonymize(user_id, TEST_KEY)


def run_dbt(command: list[str], warehouse: Path, work_dir: Path) -> None:
    """Run dbt as a subprocess against `warehouse`, as Dagster does, keeping target/ and logs out
    of the repo. (In-process dbt-duckdb keeps the file open, which blocks the test's own reads.)"""
    env = {
        **os.environ,
        "AD_WAREHOUSE_PATH": str(warehouse),
        "AD_PSEUDONYM_KEY": TEST_KEY,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    args = [str(DBT_EXECUTABLE), *command,
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(work_dir / "target"),
        "--log-path", str(work_dir / "logs"),
        "--vars", f"{{as_of_date: '{AS_OF_DATE.isoformat()}'}}",
    ]
    completed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, f"dbt {' '.join(command)} failed:\n{completed.stdout[-6000:]}{completed.stderr[-2000:]}"


def candidates() -> list[tuple[str, int, dt.date]]:
    return [
        (user_key(1), 300, SCHEDULE_DATE),
        (user_key(2), 100, SCHEDULE_DATE),
        (pseudonymize(999, TEST_KEY), 200, SCHEDULE_DATE),  # a user with no history at all
    ]


@pytest.fixture(scope="module")
def built_warehouse(tmp_path_factory) -> Path:
    work_dir = tmp_path_factory.mktemp("dbt_build")
    warehouse = dbt_fixtures.create_raw_warehouse(work_dir / "warehouse.duckdb")
    dbt_fixtures.write_candidates(warehouse, candidates())
    run_dbt(["build"], warehouse, work_dir)
    return warehouse


def query(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute(sql, params or []).fetchall()


def query_dicts(warehouse: Path, sql: str, params: list | None = None) -> list[dict]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        cursor = conn.execute(sql, params or [])
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def test_attribution_clicks_and_last_click_conversions(built_warehouse):
    impressions = {
        row["impression_id"]: row
        for row in query_dicts(built_warehouse, "select * from int_attributed_impressions")
    }
    assert set(impressions) == {1, 2, 3, 4, 5, 6, 7, 8}
    # the conversion carried impression 3, but the last click before it was on impression 4
    assert impressions[3]["clicked"] and not impressions[3]["converted"]
    assert impressions[4]["converted"] and impressions[4]["conversion_ts"] == ts("2026-11-03 09:00")
    # a conversion 9 days after the click is outside the 7-day window
    assert impressions[2]["clicked"] and not impressions[2]["converted"]
    assert impressions[1]["converted"] and impressions[1]["total_cost"] == pytest.approx(5.0)
    # a click 25 hours after its impression is outside the 24-hour click window
    assert not impressions[5]["clicked"]
    assert impressions[8]["clicked"] and impressions[8]["click_ts"] == ts("2026-11-04 09:30")
    # impression 6 was shown at 23:30 on the as-of day: its click window is still open
    assert not impressions[6]["click_label_final"]
    # conversion labels are final only 24 h + 7 days after the impression: before 10-29 here
    assert sorted(i for i, row in impressions.items() if row["conversion_label_final"]) == [1, 2]


def test_creative_stats_count_final_impressions_per_ad_segment_and_creative(built_warehouse):
    rows = query(built_warehouse, "select ad_id, segment, creative_id, impressions, clicks from creative_stats "
                                  "order by segment, creative_id nulls last")
    # Only ad 100 has creatives; its own-title impression (user 2) stays, for the ad's pooled CTR.
    # Impression 5's click came after the window (not a click); the segment is the user's age band.
    assert rows == [(100, "18-24", 700, 1, 0), (100, "25-34", 700, 1, 1), (100, "25-34", 701, 1, 1),
                    (100, "35-44", None, 1, 0)]


def test_sessions_split_on_gaps_over_30_minutes(built_warehouse):
    sessions = query(
        built_warehouse,
        "select session_start, session_end, n_events from int_sessions "
        "where user_key = ? and session_date = '2026-11-02' order by session_start",
        [user_key(1)],
    )
    assert sessions == [
        (ts("2026-11-02 10:00"), ts("2026-11-02 10:50"), 3),  # 30-minute gap: same session
        (ts("2026-11-02 11:25"), ts("2026-11-02 11:25"), 1),  # 35-minute gap: new session
    ]


def test_user_profiles_are_as_of_the_start_of_the_snapshot_day(built_warehouse):
    profiles = {
        row["snapshot_date"]: row
        for row in query_dicts(built_warehouse, "select * from user_profiles where user_key = ?", [user_key(1)])
    }
    # 11-02's own four events are not in the 11-02 snapshot, only the one from 10-26
    assert profiles[dt.date(2026, 11, 2)]["user_events_7d"] == 1
    assert profiles[dt.date(2026, 11, 3)]["user_events_7d"] == 4
    assert profiles[dt.date(2026, 11, 3)]["user_sessions_7d"] == 2
    assert profiles[dt.date(2026, 11, 3)]["user_buys_7d"] == 1
    # the city changed with the users version landed on 11-03
    assert profiles[dt.date(2026, 11, 2)]["city_tier"] == 1
    assert profiles[dt.date(2026, 11, 3)]["city_tier"] == 2
    # tomorrow's scoring has a snapshot; the 10-26 event has left its 7-day window by then
    assert max(profiles) == SCHEDULE_DATE
    assert profiles[SCHEDULE_DATE]["user_events_7d"] == 4


def test_ad_features_use_the_version_in_effect_and_prior_days(built_warehouse):
    ad_100 = {
        row["snapshot_date"]: row
        for row in query_dicts(built_warehouse, "select * from ad_features where ad_id = 100")
    }
    assert ad_100[dt.date(2026, 11, 2)]["bid"] == pytest.approx(0.5)
    assert ad_100[dt.date(2026, 11, 3)]["bid"] == pytest.approx(0.8)
    # impressions 3 and 5 (11-01) and one valid click; impression 5's late click landed on 11-02
    assert (ad_100[dt.date(2026, 11, 2)]["ad_impressions_7d"], ad_100[dt.date(2026, 11, 2)]["ad_clicks_7d"]) == (2, 1)
    # ad 100's conversion happened on 11-03 09:00: seen from the 11-04 snapshot on, never before
    assert [ad_100[day]["ad_conversions_7d"] for day in (dt.date(2026, 11, 3), dt.date(2026, 11, 4))] == [0, 1]
    for row in ad_100.values():  # smoothed with cvr_prior 0.1, weight 20 (dbt_project.yml)
        assert row["ad_cvr_7d"] == pytest.approx((row["ad_conversions_7d"] + 2.0) / (row["ad_clicks_7d"] + 20.0))
    first_snapshot_of_ad_300 = query(built_warehouse, "select min(snapshot_date) from ad_features where ad_id = 300")
    assert first_snapshot_of_ad_300 == [(dt.date(2026, 11, 2),)]


def test_training_sets_hold_final_labels_and_point_in_time_features(built_warehouse):
    ctr_ids = [r[0] for r in query(built_warehouse, "select impression_id from ctr_training_set order by 1")]
    assert ctr_ids == [1, 2, 3, 4, 5, 7, 8]
    cvr = query(built_warehouse, "select impression_id, label_conversion from cvr_training_set order by 1")
    assert cvr == [(1, True), (2, False)]
    (row,) = query_dicts(built_warehouse, "select * from ctr_training_set where impression_id = 4")
    assert (row["label_click"], row["label_conversion"]) == (True, True)
    assert (row["hour"], row["slot"], row["day_of_week"]) == (8, 2, 1)  # 2026-11-02 is a Monday
    assert (row["user_events_7d"], row["user_ad_impressions_7d"], row["user_ad_clicks_7d"]) == (1, 2, 2)
    assert (row["city_tier"], row["bid"], row["advertiser_id"]) == (1, pytest.approx(0.5), 100)
    # the only earlier category-5 event of user 1 is the ad click at 11-01 12:05
    assert row["user_category_events_7d"] == 1
    assert row["hours_since_user_category_event"] == pytest.approx(11 + 55 / 60)


def test_candidate_features_share_the_training_feature_columns(built_warehouse):
    def described(table: str) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in query(built_warehouse, f"describe {table}")]

    ctr_columns, cvr_columns, candidate_columns = (
        described("ctr_training_set"), described("cvr_training_set"), described("candidate_features")
    )
    feature_tail = ctr_columns[ctr_columns.index(("hour", "INTEGER")):]
    assert len(feature_tail) == 29
    assert cvr_columns == ctr_columns
    assert candidate_columns[-len(feature_tail):] == feature_tail

    rows = {r["user_key"]: r for r in query_dicts(built_warehouse, "select * from candidate_features")}
    assert len(rows) == 3
    user_1 = rows[user_key(1)]
    # user 1's busiest hour is 10 (three organic events and one ad click); candidates use slot 1
    assert (user_1["hour"], user_1["slot"], user_1["day_of_week"]) == (10, 1, 5)
    assert user_1["user_events_7d"] == 4 and user_1["city_tier"] == 2
    assert user_1["hours_since_user_category_event"] == pytest.approx(84 + 35 / 60)
    newcomer = rows[pseudonymize(999, TEST_KEY)]
    assert newcomer["user_events_7d"] == 0 and newcomer["gender"] is None and newcomer["bid"] == pytest.approx(5.0)


def test_user_ids_are_pseudonymized_like_python_and_never_leave_raw(built_warehouse):
    keys = {r[0] for r in query(built_warehouse, "select distinct user_key from user_profiles")}
    assert keys == {user_key(1), user_key(2), user_key(3)}
    leaked = query(
        built_warehouse,
        "select table_name from information_schema.columns where column_name = 'user_id' and table_schema <> 'raw'",
    )
    assert leaked == []


def test_event_stream_and_sequences(built_warehouse):
    stream = query(
        built_warehouse, "select event_type, ad_id from user_event_stream where user_key = ? order by ts", [user_key(1)]
    )
    assert [e for e, _ in stream].count("ad_click") == 3
    (sequence,) = query_dicts(built_warehouse, "select * from behavior_sequences where user_key = ?", [user_key(1)])
    assert sequence["sequence_length"] == len(stream) == len(sequence["event_types"]) == len(sequence["ad_ids"])
    assert sequence["event_types"] == [e for e, _ in stream]
    traffic = query(built_warehouse, "select count(*), round(sum(share), 6) from hourly_traffic")
    assert traffic == [(24, 1.0)]


def test_events_on_or_after_the_impression_day_do_not_change_its_features(built_warehouse, tmp_path):
    """Impression 7 (user 2, ad 100, 2026-11-04): add behavior and ad events of that user, category,
    brand and ad on 11-04 and 11-05, rebuild, and compare its feature row."""
    feature_sql = "select * exclude (label_click, label_conversion) from ctr_training_set where impression_id = 7"
    (before,) = query_dicts(built_warehouse, feature_sql)
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouse, warehouse)
    dbt_fixtures.insert_rows(warehouse, "behavior_events", [
        (2001, 2, ts("2026-11-04 00:00"), "buy", 5, 50, 5001),  # at midnight of the impression day
        (2002, 2, ts("2026-11-04 13:00"), "view", 5, 50, 5002),
        (2003, 2, ts("2026-11-05 10:00"), "cart", 5, 50, 5002),
    ])
    dbt_fixtures.insert_rows(warehouse, "ad_events", [
        (101, 101, 2, 100, ts("2026-11-04 00:00"), "impression", 1, 0.0, 0.5),
        (102, 101, 2, 100, ts("2026-11-04 00:01"), "click", 1, 0.5, None),
        (103, 102, 1, 100, ts("2026-11-05 08:00"), "impression", 1, 0.0, 0.5),
    ])
    run_dbt(["run", "--select", "+ctr_training_set"], warehouse, tmp_path)

    (after,) = query_dicts(warehouse, feature_sql)
    assert after == before
    # the new events did reach the warehouse: tomorrow's snapshot of user 2 counts them
    (profile,) = query_dicts(
        warehouse, "select * from user_profiles where user_key = ? and snapshot_date = ?", [user_key(2), SCHEDULE_DATE]
    )
    assert profile["user_buys_7d"] == 1 and profile["user_ad_clicks_7d"] == 1
