"""The UIs in a real browser (Debian's Chromium driven by Playwright, no downloaded browser): the
Dagster webserver on the tiny pipeline's instance shows the asset groups, an asset page with its
description, metadata and plot entry, its checks, the schedule and the sensor; the MLflow UI shows the
registered models with their @champion and @challenger aliases. Both servers are real processes on
127.0.0.1, in their own sessions, stopped by pid. With ADFLOW_SCREENSHOT_DIR set, the pages are
saved there as PNGs (the README's screenshots)."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import pytest
from pipeline_fixture import materialized_pipeline

from deploy.processes import free_port, kill_group, start_server, wait_until_ready
from serving.process import REPO

CHROMIUM = "/usr/bin/chromium"


@contextlib.contextmanager
def server(command: list[str], url: str, log_path: Path, env: dict, startup_s: float = 240):
    process = start_server(command, log_path, env, cwd=REPO)
    try:
        wait_until_ready(url, process, log_path, startup_s, poll_s=1)
        yield
    finally:
        kill_group(process)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    yield from materialized_pipeline(tmp_path_factory, persistent_instance=True)


@pytest.fixture(scope="module")
def uis(pipeline, tmp_path_factory):
    settings, *_ = pipeline
    logs = tmp_path_factory.mktemp("ui-logs")
    env = {**os.environ, **settings.export_env(), "DAGSTER_HOME": str(settings.dagster_home)}
    dagster_port, mlflow_port = free_port(), free_port()
    bin_dir = Path(sys.executable).parent
    with server([str(bin_dir / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p",
                 str(dagster_port)], f"http://127.0.0.1:{dagster_port}/server_info", logs / "dagster.log", env), \
            server([str(bin_dir / "mlflow"), "ui", "-h", "127.0.0.1", "-p", str(mlflow_port), "--backend-store-uri",
                    settings.mlflow_tracking_uri], f"http://127.0.0.1:{mlflow_port}/health", logs / "mlflow.log", env):
        yield f"http://127.0.0.1:{dagster_port}", f"http://127.0.0.1:{mlflow_port}"


@pytest.fixture(scope="module")
def page():
    if not Path(CHROMIUM).exists():  # a missing browser is a failure, not a skip
        pytest.fail(f"{CHROMIUM} not found: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1400, "height": 900})
        tab.set_default_timeout(90_000)
        yield tab
        browser.close()


def _shot(page, name: str) -> None:
    folder = os.environ.get("ADFLOW_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


def test_the_dagster_ui_shows_groups_an_asset_its_checks_and_the_automation(uis, page):
    dagster, _ = uis
    page.goto(f"{dagster}/asset-groups")
    for group in ("ingest", "models", "delivery", "evaluation"):
        page.get_by_text(group, exact=True).first.wait_for()
    _shot(page, "dagster-asset-graph")

    page.goto(f"{dagster}/assets/daily_ad_schedule")
    page.get_by_text("ctr_source").first.wait_for()  # a metadata entry of the latest materialization
    page.get_by_text("schedule_hash").first.wait_for()
    _shot(page, "dagster-asset-daily_ad_schedule")
    # The plots are one markdown metadata value with the PNGs inlined, opened from this link (opening
    # its dialog was flaky on a loaded 2-core machine, so the test stops at the entry).
    plots = page.locator("tr", has=page.get_by_text("plots", exact=True)).last
    plots.get_by_text("[Show Markdown]").wait_for()

    page.goto(f"{dagster}/assets/daily_ad_schedule?view=checks")
    page.get_by_text("prediction_drift").first.wait_for()

    page.goto(f"{dagster}/automation")
    page.get_by_text("daily_pipeline_schedule").first.wait_for()
    page.get_by_text("landing_files_sensor").first.wait_for()
    _shot(page, "dagster-automation")


def test_the_mlflow_ui_shows_the_registered_models_and_their_aliases(uis, page):
    _, mlflow = uis
    page.goto(f"{mlflow}/#/models")
    with contextlib.suppress(Exception):  # MLflow's one-time "new Model Registry UI" dialog
        page.get_by_role("button", name="Try it now").click(timeout=15_000)
    rows = {name: page.get_by_role("row").filter(has=page.get_by_text(name, exact=True))
            for name in ("ctr_ranker", "cvr_ranker", "interest_encoder")}
    # The aliases column of each model's row: the CTR ranker and the encoder have a champion, the
    # tiny world's CVR ranker only a challenger (its first version was refused).
    rows["ctr_ranker"].get_by_text("champion").first.wait_for()
    rows["interest_encoder"].get_by_text("champion").first.wait_for()
    rows["cvr_ranker"].get_by_text("challenger").first.wait_for()
    assert rows["cvr_ranker"].get_by_text("champion").count() == 0
    _shot(page, "mlflow-models")
