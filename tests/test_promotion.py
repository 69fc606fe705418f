"""Champion/challenger promotion of rankers against a real MLflow sqlite store in a tmp dir."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from ml.model_store import load_ranker
from ml.rankers import fit_ranker, split_by_day
from ml.rankers.mlflow_io import (
    champion_holdout_score,
    holdout_rows,
    holdout_score,
    load_champion_ranker,
    log_ranker_to_mlflow,
)
from ml.rankers.plots import plot_feature_importance
from ml.rankers.report import Holdouts, ModelScores, build_ranker_report, report_metrics
from ml.rankers.synthetic import synthetic_impressions
from ml.registry import CHALLENGER, CHAMPION, apply_promotion, configure_mlflow, decide_promotion, version_by_alias
from ml.settings import Settings

MODEL_NAME = "ctr_ranker"


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    # One store per module: creating the sqlite schema costs seconds; tests use distinct model names.
    data_root = tmp_path_factory.mktemp("mlflow_store")
    configure_mlflow(Settings.from_env({"AD_DATA_ROOT": str(data_root)}))
    yield data_root
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def days():
    impressions = synthetic_impressions(n_impressions=12_000, n_users=500, n_ads=80, n_days=4, seed=3)
    return split_by_day(impressions, test_date=dt.date(2026, 11, 4), validation_date=dt.date(2026, 11, 3))


def _promote(name, version, challenger, holdout):
    challenger_score = holdout_score(challenger.predict(holdout), holdout, "ctr", "auc")
    decision = decide_promotion(name, version, challenger_score,
                                champion_holdout_score(name, holdout, "ctr", "auc"), "auc")
    apply_promotion(decision)
    return decision


def test_good_ranker_becomes_champion_and_shuffled_one_does_not(mlflow_store, days):
    train, valid, test = days
    good = fit_ranker(train, valid, "ctr")
    report = build_ranker_report(
        Holdouts.same_day(test), {"lightgbm": ModelScores.same_day(good.predict(test), np.full(len(test), 0.2))})
    importance_png = plot_feature_importance(good.feature_importance(), mlflow_store / "importance.png", "CTR")
    run_id, good_version = log_ranker_to_mlflow(
        good, MODEL_NAME, report, {"importance": importance_png},
        tags={"partition": "2026-11-04", "git_commit": "abc123", "dagster_run_id": "run-1"},
        holdout_metrics=report_metrics(report, "lightgbm"),
    )
    first = _promote(MODEL_NAME, good_version, good, test)
    assert first.promoted and first.reason == "no champion yet"
    assert str(version_by_alias(MODEL_NAME, CHAMPION).version) == good_version

    run = MlflowClient().get_run(run_id)
    assert run.data.tags["dagster_run_id"] == "run-1" and run.data.params["task"] == "ctr"
    assert run.data.metrics["test_ctr_auc"] > 0.65
    artifacts = {a.path for folder in ("report", "plots") for a in MlflowClient().list_artifacts(run_id, folder)}
    assert {"report/ranker_report.csv", "report/feature_importance.csv", "plots/importance.png"} <= artifacts

    # The registered champion predicts the same calibrated probabilities as the in-memory ranker.
    champion = load_champion_ranker(MODEL_NAME)
    np.testing.assert_allclose(champion.predict(test.head(200)), good.predict(test.head(200)), rtol=1e-6)
    # ... from plain files: LightGBM's model text and JSON, no pickle to run on load.
    model_dir = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL_NAME}@{CHAMPION}"))
    assert not list(model_dir.rglob("*.pkl")) and (model_dir / "artifacts" / "ranker" / "booster.txt").exists()
    registered = load_ranker(MODEL_NAME)
    np.testing.assert_array_equal(registered.predict(test.head(200)), champion.predict(test.head(200)))

    shuffled = train.assign(label_click=np.random.default_rng(0).permutation(train["label_click"].to_numpy()))
    worse = fit_ranker(shuffled, valid, "ctr")
    _, worse_version = log_ranker_to_mlflow(worse, MODEL_NAME, tags={"partition": "2026-11-05"})
    second = _promote(MODEL_NAME, worse_version, worse, test)

    assert not second.promoted
    assert str(second.champion_version_before) == good_version
    assert second.challenger_score < second.champion_score
    assert str(version_by_alias(MODEL_NAME, CHAMPION).version) == good_version
    assert str(version_by_alias(MODEL_NAME, CHALLENGER).version) == worse_version


def test_no_champion_scores_none(mlflow_store, days):
    _, _, test = days
    assert load_champion_ranker("cvr_ranker") is None
    assert champion_holdout_score("cvr_ranker", test, "cvr") is None
    assert len(holdout_rows(test, "cvr")) == int(test["label_click"].sum())
