"""The one rule for when labels are enough to train a model (ml/label_sufficiency.py), rule by rule."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ml.label_sufficiency import (
    MIN_FINAL_DAYS,
    MIN_TRAIN_POSITIVES,
    LabelPlan,
    judge_labels,
    no_champion_message,
)

DAY0 = dt.date(2026, 11, 1)


def daily(positives: list[int], rows: int = 100) -> pd.DataFrame:
    """One row per final day: `rows` labelled rows of which positives[i] are positive."""
    return pd.DataFrame({"day": [DAY0 + dt.timedelta(days=i) for i in range(len(positives))],
                         "rows": rows, "positives": positives})


def test_enough_labels_give_a_time_split():
    verdict = judge_labels("click", daily([3, 3, 2, 1]))
    assert verdict.trainable and verdict.reason == ""
    assert verdict.days.train_dates == (DAY0, DAY0 + dt.timedelta(days=1))
    assert verdict.days.validation_date == DAY0 + dt.timedelta(days=2)
    assert verdict.days.test_date == DAY0 + dt.timedelta(days=3)


def test_too_few_final_days_are_skipped():
    verdict = judge_labels("conversion", daily([9] * (MIN_FINAL_DAYS - 1)))
    assert not verdict.trainable
    assert f"{MIN_FINAL_DAYS - 1} day(s) with final conversion labels, need {MIN_FINAL_DAYS}" in verdict.reason


def test_a_label_never_logged_says_so():
    verdict = judge_labels("conversion", daily([0] * 6))
    assert not verdict.trainable
    assert verdict.reason == "no conversion in 600 rows with final labels over 6 days (the logs carry no conversion events)"


def test_too_few_training_positives_are_skipped():
    verdict = judge_labels("conversion", daily([MIN_TRAIN_POSITIVES - 1, 0, 3, 3]))
    assert not verdict.trainable
    assert f"hold {MIN_TRAIN_POSITIVES - 1} conversion positives" in verdict.reason


def test_too_few_training_negatives_are_skipped():
    verdict = judge_labels("click", daily([100, 100, 3, 3]))  # every training row is a click
    assert not verdict.trainable and "and 0 negatives" in verdict.reason


@pytest.mark.parametrize(("positives", "role"), [([5, 0, 1], "validation"), ([5, 1, 0], "test"),
                                                   ([5, 100, 1], "validation")])
def test_a_holdout_day_with_one_class_is_skipped(positives, role):
    verdict = judge_labels("click", daily(positives))
    assert not verdict.trainable and verdict.reason.startswith(f"{role} day")


def test_conversions_train_only_beside_clicks():
    plan = LabelPlan.from_counts(daily([0, 0, 0, 0]), daily([9, 9, 9, 9]))
    assert not plan.click.trainable and not plan.conversion.trainable
    assert "pCTCVR" in plan.conversion.reason
    metadata = plan.as_metadata()
    assert metadata["click_labels"].startswith("skipped: ") and "label_rule" in metadata


def test_plan_metadata_names_each_split():
    metadata = LabelPlan.from_counts(daily([9, 9, 9, 9]), daily([0, 0, 0])).as_metadata()
    assert metadata["click_labels"] == "trainable" and metadata["ctr_test_day"] == "2026-11-04"
    assert metadata["conversion_labels"].startswith("skipped: no conversion")


def test_no_champion_message_says_what_to_fix():
    message = no_champion_message("interest_encoder", judge_labels("click", daily([1])))
    assert "has no champion" in message and "Land more days" in message and "AD_PARTITION_START" in message
