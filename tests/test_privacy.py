"""Privacy on the tiny pipeline: keyed pseudonyms only downstream of staging, and the key itself
nowhere on disk (SQL dbt compiled, logs, the warehouse, the MLflow store)."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd
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
    return {int(number) for number in EIGHT_DIGITS.findall(path.read_bytes())} & raw_ids


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
