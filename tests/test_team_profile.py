"""The team profile on real servers: a PostgreSQL cluster holds the Dagster instance (runs, event
log, schedules) and the MLflow backend store, an `mlflow server` tracks and registers the models with
its own artifact root (deploy/local_services.py starts both on 127.0.0.1). The tiny daily graph runs
and promotes its models against them, and nothing lands in the embedded SQLite stores."""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest
from pipeline_fixture import materialized_pipeline

from deploy.local_services import DAGSTER_DB, PASSWORD_ENV, USER, postgres_bin, start, stop


@pytest.fixture(scope="module")
def team_services():
    try:
        postgres_bin("initdb")
    except FileNotFoundError as error:  # .ci/run installs it; a missing server is a failure, not a skip
        pytest.fail(str(error))
    root = Path(tempfile.mkdtemp(prefix="adflow-team-"))  # under /tmp: the postgres user must reach it
    password = secrets.token_urlsafe(24)
    saved = os.environ.get(PASSWORD_ENV)
    os.environ[PASSWORD_ENV] = password
    services = start(root, password)
    try:
        yield services, password
    finally:
        stop(services)
        shutil.rmtree(root, ignore_errors=True)
        if saved is None:
            os.environ.pop(PASSWORD_ENV, None)
        else:
            os.environ[PASSWORD_ENV] = saved


@pytest.fixture(scope="module")
def pipeline(team_services, tmp_path_factory):
    services, _ = team_services
    yield from materialized_pipeline(tmp_path_factory, env=services.env(), persistent_instance=True)


def test_the_daily_graph_runs_and_promotes_on_postgres_and_an_mlflow_server(team_services, pipeline):
    import psycopg2
    from mlflow import MlflowClient

    services, password = team_services
    settings, instance, ingest_results, daily, _ = pipeline
    assert daily.success and all(result.success for result in ingest_results)

    # Dagster's runs and event log are in Postgres, not in SQLite files under DAGSTER_HOME.
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    with psycopg2.connect(host="127.0.0.1", port=services.postgres_port, user=USER, password=password,
                          dbname=DAGSTER_DB) as conn, conn.cursor() as cursor:
        cursor.execute("select count(*) from runs")
        assert cursor.fetchone()[0] == len(ingest_results) + 1
        cursor.execute("select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'")
        assert cursor.fetchone()[0] > 20
    assert not list(settings.dagster_home.rglob("*.db"))
    assert password not in (settings.dagster_home / "dagster.yaml").read_text()

    # The models are registered and promoted through the tracking server, artifacts in its root.
    client = MlflowClient(services.tracking_uri)
    champion = client.get_model_version_by_alias("ctr_ranker", "champion")
    assert client.get_model_version_by_alias("interest_encoder", "champion").version == "1"
    assert client.get_run(champion.run_id).data.metrics["test_ctr_auc"] > 0.5
    assert any((services.root / "mlflow-artifacts").rglob("booster.txt"))
    assert not (settings.data_root / "mlflow").exists()  # nothing in the embedded store
    assert password not in (services.root / "mlflow-server.log").read_text()
