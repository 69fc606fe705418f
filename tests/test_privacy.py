"""Privacy on the tiny pipeline: keyed pseudonyms only downstream of staging, and the key itself
nowhere on disk (SQL dbt compiled, logs, the warehouse, the MLflow store)."""
from __future__ import annotations

import datetime as dt
import importlib
import re
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline_fixture import materialized_pipeline

pytestmark = pytest.mark.integration

KEY = "privacy-test-key-5f1c2a9e"
DBT_DIR = Path(__file__).parents[1] / "dbt_project"
# Simulated user ids are 10_000_001 and up (ml/simulator/world.py ID_OFFSETS): 8 digits.
EIGHT_DIGITS = re.compile(rb"(?<![0-9])[0-9]{8}(?![0-9])")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    started = time.time()
    for built in materialized_pipeline(tmp_path_factory, env={"AD_PSEUDONYM_KEY": KEY}):
        yield (*built, started)


def _raw_user_ids(settings) -> set[int]:
    users = pd.concat(pd.read_parquet(path) for path in (settings.landing_dir / "users").rglob("*.parquet"))
    return set(users["user_id"].astype(int))


def _ids_in_file(path: Path, raw_ids: set[int]) -> set[int]:
    """Raw user ids a file holds: any column value of a Parquet file, any 8-digit number in other bytes."""
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
        found = set()
        for column in frame.columns:
            values = pd.to_numeric(frame[column].astype(str), errors="coerce").dropna()
            found |= set(values.astype("int64")) & raw_ids
        return found
    if path.suffix == ".db":  # SQLite stores a row's cells side by side: "100000" then a run id "68e8..."
        return _ids_in_sqlite(path, raw_ids)  # read as "10000068"; scan each cell on its own
    return {int(number) for number in EIGHT_DIGITS.findall(path.read_bytes())} & raw_ids


def _ids_in_sqlite(path: Path, raw_ids: set[int]) -> set[int]:
    import sqlite3

    found = set()
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        tables = [name for (name,) in conn.execute("select name from sqlite_master where type = 'table'")]
        for table in tables:
            for row in conn.execute(f'select * from "{table}"'):
                for cell in row:
                    text = cell if isinstance(cell, bytes) else str(cell).encode()
                    found |= {int(number) for number in EIGHT_DIGITS.findall(text)}
    return found & raw_ids


def test_user_keys_are_the_keyed_hash_dbt_and_python_share(pipeline):
    settings, *_ = pipeline
    from ml.privacy.pseudonyms import pseudonymize
    from ml.warehouse import connect

    assert settings.pseudonym_key == KEY and KEY not in repr(settings)
    with connect(settings.warehouse_path, read_only=True) as conn:
        keys = {key for (key,) in conn.sql("select distinct user_key from main.user_profiles").fetchall()}
    expected = {pseudonymize(user_id, KEY) for user_id in _raw_user_ids(settings)}
    assert keys and keys <= expected
    # Another key gives other pseudonyms: the key, not the id alone, decides them.
    assert not keys & {pseudonymize(user_id, "another-key") for user_id in _raw_user_ids(settings)}


def test_no_raw_user_id_downstream_of_staging(pipeline):
    """Every table outside raw, every schedule and every file of the MLflow store (artifacts, input
    examples, the tracking database) and the reports: no raw user id anywhere."""
    settings, *_ = pipeline
    from ml.warehouse import connect

    raw_ids = _raw_user_ids(settings)
    assert len(raw_ids) == 1000
    leaks = []
    with connect(settings.warehouse_path, read_only=True) as conn:
        columns = conn.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_schema <> 'raw' and (data_type in ('BIGINT', 'INTEGER', 'HUGEINT', 'UBIGINT', 'DOUBLE') "
            "or data_type = 'VARCHAR')").fetchall()
        assert len(columns) > 100
        for schema, table, column in columns:
            (hits,) = conn.execute(f'select count(*) from "{schema}"."{table}" '
                                   f'where try_cast("{column}" as bigint) in (select unnest($ids))',
                                   {"ids": sorted(raw_ids)}).fetchall()[0]
            if hits:
                leaks.append(f"{schema}.{table}.{column}: {hits} rows")
    scanned = [path for folder in ("schedules", "mlflow", "models", "reports")
               for path in (settings.data_root / folder).rglob("*") if path.is_file()]
    assert any(path.name == "input_example.json" for path in scanned)  # the input examples are scanned
    for path in scanned:
        if found := _ids_in_file(path, raw_ids):
            leaks.append(f"{path.relative_to(settings.data_root)}: {len(found)} ids")
    assert leaks == []


def test_the_pseudonym_key_is_written_nowhere(pipeline):
    """Not in the SQL dbt compiled and ran, not in dbt's logs, not in any file under the data root
    (warehouse, MLflow store, schedules, reports)."""
    settings, *_, started = pipeline
    recent_dbt_files = [path for folder in ("target", "logs") for path in (DBT_DIR / folder).rglob("*")
                        if path.is_file() and path.stat().st_mtime >= started]
    compiled_staging = [path for path in recent_dbt_files
                        if path.name == "stg_raw__users.sql" and "compiled" in path.parts]
    assert compiled_staging and "user_pseudonym(" in compiled_staging[0].read_text()
    everything = [path for path in settings.data_root.rglob("*") if path.is_file()] + recent_dbt_files
    assert len(everything) > 50
    holding_key = [str(path) for path in everything if KEY.encode() in path.read_bytes()]
    assert holding_key == []


def _trace_in_file(path: Path, ids: set[int], keys: set[str]) -> bool:
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
        for column in frame.columns:
            text = frame[column].astype(str)
            if text.isin(keys).any() or pd.to_numeric(text, errors="coerce").isin(ids).any():
                return True
        return False
    data = path.read_bytes()
    return any(key.encode() in data for key in keys) or any(str(i).encode() in data for i in ids)


def _scheduled_user_ids(settings, n: int) -> list[int]:
    from ml.privacy.pseudonyms import pseudonymize

    schedule = pd.concat(pd.read_parquet(p) for p in (settings.data_root / "schedules").rglob("*.parquet"))
    by_key = {pseudonymize(u, KEY): u for u in _raw_user_ids(settings)}
    return [by_key[key] for key in schedule["user_key"].value_counts().index[:n]]


def test_forgotten_users_leave_no_trace_and_stay_out_of_later_files(pipeline):
    """Runs last in this module: it erases users from the fixture's data root."""
    settings, instance, *_ = pipeline
    import dagster as dg

    from ml.privacy.erasure import AUDIT_TABLE, SUPPRESSED_TABLE, forget_users
    from ml.privacy.pseudonyms import pseudonymize
    from ml.warehouse import connect

    forgotten = _scheduled_user_ids(settings, 3)
    ids, keys = set(forgotten), {pseudonymize(u, KEY) for u in forgotten}
    files = [p for p in settings.data_root.rglob("*") if p.is_file() and p.suffix != ".duckdb"]
    assert sum(_trace_in_file(p, ids, keys) for p in files) > 10  # landing, schedules, ground truth, ...

    report = forget_users(settings, forgotten)
    assert report.table_rows["raw.behavior_events"] > 0 and report.table_rows["main.user_profiles"] > 0
    assert any(path.startswith("schedules/") for path in report.file_rows)

    files = [p for p in settings.data_root.rglob("*") if p.is_file() and p.suffix != ".duckdb"]
    assert [str(p) for p in files if _trace_in_file(p, ids, keys)] == []
    with connect(settings.warehouse_path, read_only=True) as conn:
        columns = conn.execute("select table_schema, table_name, column_name, data_type from information_schema.columns "
                               "where table_schema <> 'privacy'").fetchall()
        traces = []
        for schema, table, column, data_type in columns:
            if data_type == "VARCHAR":
                found = conn.execute(f'select count(*) from "{schema}"."{table}" where "{column}" in (select unnest($k)) '
                                     f'or ("{column}" similar to \'.*[0-9]{{8}}.*\' and regexp_extract("{column}", '
                                     f'\'[0-9]{{8}}\') in (select unnest($i)))',
                                     {"k": sorted(keys), "i": [str(i) for i in ids]}).fetchall()[0][0]
            elif column == "user_id":
                found = conn.execute(f'select count(*) from "{schema}"."{table}" where "{column}" in (select unnest($i))',
                                     {"i": sorted(ids)}).fetchall()[0][0]
            else:
                continue
            if found:
                traces.append(f"{schema}.{table}.{column}")
        assert traces == []
        audit = conn.execute(f"select * from {AUDIT_TABLE}").df()
        assert set(audit["pseudonym"]) == keys and list(audit.columns) == [
            "pseudonym", "requested_at", "warehouse_rows_removed"]
        assert conn.execute(f"select count(*) from {SUPPRESSED_TABLE}").fetchall()[0][0] == 3

    # A later landing file with a forgotten user's events: ingest drops them, keeps everyone else's.
    from ml.simulator.writer import CONTRACT_SCHEMAS
    day = dt.date(2026, 11, 10)
    kept = next(u for u in sorted(_raw_user_ids(settings)) if u not in ids)
    late = pd.DataFrame({"event_id": [9_900_000_001, 9_900_000_002], "user_id": [forgotten[0], kept],
                         "ts": [pd.Timestamp(day) + pd.Timedelta(hours=20)] * 2, "event_type": ["view", "view"],
                         "category_id": [1, 1], "brand_id": [1001, 1001], "item_id": [100_001, 100_001]})
    late_file = settings.landing_partition_dir("behavior_events", day) / "part-late.parquet"
    pq.write_table(pa.Table.from_pandas(late, schema=CONTRACT_SCHEMAS["behavior_events"], preserve_index=False),
                   late_file)
    definitions = importlib.import_module("orchestration.definitions")
    result = definitions.defs.resolve_job_def("ingest_job").execute_in_process(partition_key=day.isoformat(),
                                                                             instance=instance)
    assert result.success
    with connect(settings.warehouse_path, read_only=True) as conn:
        landed = {u for (u,) in conn.execute("select user_id from raw.behavior_events where event_id >= 9900000001")
                  .fetchall()}
    assert landed == {kept}
    metadata = instance.get_latest_materialization_event(dg.AssetKey(["raw", "behavior_events"])).asset_materialization
    assert metadata.metadata["rows_of_suppressed_users_dropped"].value == 1

    # The same erasure as a Dagster job (launchable from the UI with this config).
    another = _scheduled_user_ids(settings, 1)[0]
    job = definitions.defs.resolve_job_def("forget_users_job")
    done = job.execute_in_process(run_config={"ops": {"forget_users_op": {"config": {"user_ids": [another]}}}},
                                  instance=instance)
    assert done.success
    with connect(settings.warehouse_path, read_only=True) as conn:
        assert conn.execute("select count(*) from raw.users where user_id = ?", [another]).fetchall()[0][0] == 0


def test_retention_lists_then_deletes_old_partitions(tmp_path):
    from ml.privacy.retention import apply_retention
    from ml.settings import Settings

    settings = Settings.from_env({"AD_DATA_ROOT": str(tmp_path)})
    for day in ("2026-01-01", "2026-06-01"):
        folder = settings.landing_dir / "behavior_events" / f"date={day}"
        folder.mkdir(parents=True)
        (folder / "part-0.parquet").write_bytes(b"x")
    listed = apply_retention(settings, keep_days=100, today=dt.date(2026, 7, 1), dry_run=True)
    assert listed.landing_folders == ["landing/behavior_events/date=2026-01-01"]
    assert (settings.landing_dir / "behavior_events" / "date=2026-01-01").exists()  # a dry run deletes nothing
    apply_retention(settings, keep_days=100, today=dt.date(2026, 7, 1), dry_run=False)
    assert not (settings.landing_dir / "behavior_events" / "date=2026-01-01").exists()
    assert (settings.landing_dir / "behavior_events" / "date=2026-06-01").exists()
