"""The Dagster instance: one run at a time, because DuckDB has one writer per file. Its storage is
SQLite files under DAGSTER_HOME by default, or a PostgreSQL database when AD_DAGSTER_POSTGRES_DB is
set (the team profile: README "Running it for a team")."""
from __future__ import annotations

import os

import dagster as dg

from ml.settings import Settings

GENERATED = "# written by adflow (orchestration/instance.py) from its settings; edit those instead\n"
# Queued runs (UI backfills, sensors, schedules) start one after another, never two writers at once.
DAGSTER_YAML = """\
concurrency:
  runs:
    max_concurrent_runs: 1
telemetry:
  enabled: false
"""
# Runs, event log and schedules in Postgres; the password from the environment, never in the file.
# psycopg2 named: dagster-postgres binds parameters client-side, as psycopg 3 does not.
POSTGRES_STORAGE = """\
storage:
  postgres:
    postgres_db:
      username: {user}
      password:
        env: AD_POSTGRES_PASSWORD
      hostname: {host}
      port: {port}
      db_name: {db}
      scheme: postgresql+psycopg2
"""


def dagster_yaml(settings: Settings) -> str:
    text = GENERATED + DAGSTER_YAML
    if settings.dagster_postgres_db:
        text += POSTGRES_STORAGE.format(user=settings.postgres_user, host=settings.postgres_host,
                                        port=settings.postgres_port, db=settings.dagster_postgres_db)
    return text


def prepare_dagster_home(settings: Settings) -> str:
    """DAGSTER_HOME with the dagster.yaml the settings call for (a file a user wrote is left alone)."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text().startswith(GENERATED) or config.read_text() == DAGSTER_YAML:
        config.write_text(dagster_yaml(settings))
    os.environ["DAGSTER_HOME"] = str(home)
    return str(home)


def local_instance(settings: Settings) -> dg.DagsterInstance:
    prepare_dagster_home(settings)
    return dg.DagsterInstance.get()
