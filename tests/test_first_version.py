"""A first ranker version becomes champion only if it beats the trivial scorers beyond noise; otherwise
the popularity scorer stands in (ml/popularity.py, orchestration/assets/promotion.py)."""
from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ml.popularity import pooled_rate, popularity_rate
from ml.scoring import ctr_fallback
from orchestration.assets.promotion import first_version_verdict
from orchestration.assets.rankers import RANKER_REPORT_FILE

DAY = dt.date(2026, 11, 14)


def write_report(root, rows: list[dict]):
    directory = root / "reports" / DAY.isoformat() / "rankers"
    directory.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(directory / RANKER_REPORT_FILE, index=False)
    return SimpleNamespace(data_root=root)


def report_rows(auc: float, auc_se: float, over_popularity: float, difference_se: float) -> list[dict]:
    return [{"model": "lightgbm", "task": "cvr", "auc": auc, "auc_se": auc_se, "reference_auc_minus_this": 0.0,
             "difference_se": 0.0},
            {"model": "popularity", "task": "cvr", "auc": auc - over_popularity, "auc_se": auc_se,
             "reference_auc_minus_this": over_popularity, "difference_se": difference_se}]


def test_the_demo_case_is_refused_a_model_no_better_than_popularity(tmp_path):
    """Measured on the demo (2026-11-14): CVR LightGBM AUC 0.6086 (SE 0.0308), popularity 0.6053 (paired SE 0.0342)."""
    settings = write_report(tmp_path, report_rows(0.6086, 0.0308, 0.0033, 0.0342))
    verdict = first_version_verdict(settings, DAY, "cvr")
    assert not verdict.passed and "popularity" in verdict.reason


def test_a_model_below_chance_is_refused(tmp_path):
    """The case this rule was written for (--seed 7): a first CVR ranker with AUC 0.474."""
    settings = write_report(tmp_path, report_rows(0.474, 0.03, 0.05, 0.02))
    verdict = first_version_verdict(settings, DAY, "cvr")
    assert not verdict.passed and "constant scorer" in verdict.reason


def test_a_model_clearly_better_than_both_is_accepted(tmp_path):
    settings = write_report(tmp_path, report_rows(0.68, 0.0095, 0.10, 0.008))
    assert first_version_verdict(settings, DAY, "cvr").passed


def test_without_a_report_there_is_nothing_to_judge_by(tmp_path):
    verdict = first_version_verdict(SimpleNamespace(data_root=tmp_path), DAY, "ctr")
    assert not verdict.passed and "no holdout report" in verdict.reason


def test_the_ctr_fallback_is_each_ads_rate_smoothed_toward_the_pooled_rate():
    features = pd.DataFrame({"user_key": ["a", "b", "a"], "ad_id": [1, 1, 2],
                             "ad_clicks_7d": [10, 10, 0], "ad_impressions_7d": [100, 100, 0]})
    assert pooled_rate(features, "ctr") == pytest.approx(0.1)  # each ad counted once
    scores = ctr_fallback(features)
    assert scores == pytest.approx([(10 + 50 * 0.1) / 150, (10 + 50 * 0.1) / 150, 0.1])
    assert np.array_equal(scores, popularity_rate(features, "ctr", 0.1))
    with pytest.raises(RuntimeError, match="no CTR champion"):
        ctr_fallback(features.drop(columns=["ad_clicks_7d"]))
