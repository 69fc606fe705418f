"""When a model's labels are enough to learn from: the one rule every model step applies.

A model trains only when its labels allow a time split and hold both classes where each split
needs them:
- at least MIN_FINAL_DAYS days with final labels (train >= 1 day, validation, test);
- its training days hold at least MIN_TRAIN_POSITIVES positives and MIN_TRAIN_NEGATIVES negatives
  (LightGBM with min_data_in_leaf and a calibrator learn nothing from fewer);
- its validation day and its test day each hold at least MIN_HOLDOUT_POSITIVES positive and
  MIN_HOLDOUT_NEGATIVES negative (early stopping, calibration and AUC are undefined on one class).
Otherwise the model is skipped for the partition and its current champion (if any) keeps serving.
The encoder and the CTR ranker learn clicks and share the click verdict; the CVR ranker needs its
own (conversions) and trains only beside a CTR ranker (pCTCVR = pCTR x pCVR).

Thresholds are kept low on purpose: the simulator's tiny test world has 1-3 conversions a day.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from ml.training_days import HoldoutDays, choose_holdout_days

MIN_FINAL_DAYS = 3
MIN_TRAIN_POSITIVES = 5
MIN_TRAIN_NEGATIVES = 5
MIN_HOLDOUT_POSITIVES = 1
MIN_HOLDOUT_NEGATIVES = 1

RULE = (f"a model trains only with >= {MIN_FINAL_DAYS} days of final labels, >= {MIN_TRAIN_POSITIVES} "
        f"positives and >= {MIN_TRAIN_NEGATIVES} negatives on its training days, and both classes on its "
        "validation and test days")


@dataclass(frozen=True)
class LabelVerdict:
    """Whether a label can train its models; `days` is its time split when it can."""

    label: str
    days: HoldoutDays | None
    reason: str

    @property
    def trainable(self) -> bool:
        return self.days is not None

    def as_metadata(self) -> dict[str, str]:
        return {f"{self.label}_labels": "trainable" if self.trainable else f"skipped: {self.reason}"}


def judge_labels(label: str, daily_counts: pd.DataFrame) -> LabelVerdict:
    """`daily_counts`: one row per day whose `label` is final, columns day, rows, positives."""
    counts = daily_counts.sort_values("day")
    days = [day_of(d) for d in counts["day"]]
    if len(days) < MIN_FINAL_DAYS:
        return LabelVerdict(label, None, (
            f"{len(days)} day(s) with final {label} labels, need {MIN_FINAL_DAYS} (train, validation, test); "
            "land more days or wait for the labels to become final"))
    if int(counts["positives"].sum()) == 0:
        return LabelVerdict(label, None, (
            f"no {label} in {int(counts['rows'].sum())} rows with final labels over {len(days)} days "
            f"(the logs carry no {label} events)"))
    split = choose_holdout_days(days)
    positives = dict(zip(days, counts["positives"].astype(int)))
    negatives = dict(zip(days, (counts["rows"] - counts["positives"]).astype(int)))
    train_pos = sum(positives[d] for d in split.train_dates)
    train_neg = sum(negatives[d] for d in split.train_dates)
    if train_pos < MIN_TRAIN_POSITIVES or train_neg < MIN_TRAIN_NEGATIVES:
        return LabelVerdict(label, None, (
            f"training days {split.train_dates[0]}..{split.train_dates[-1]} hold {train_pos} {label} positives "
            f"and {train_neg} negatives, need {MIN_TRAIN_POSITIVES} and {MIN_TRAIN_NEGATIVES}"))
    for role, day in (("validation", split.validation_date), ("test", split.test_date)):
        if positives[day] < MIN_HOLDOUT_POSITIVES or negatives[day] < MIN_HOLDOUT_NEGATIVES:
            return LabelVerdict(label, None, (
                f"{role} day {day} holds {positives[day]} {label} positives and {negatives[day]} negatives, "
                f"need {MIN_HOLDOUT_POSITIVES} of each"))
    return LabelVerdict(label, split, "")


@dataclass(frozen=True)
class LabelPlan:
    """The verdicts of one partition: clicks (encoder and CTR ranker) and conversions (CVR ranker)."""

    click: LabelVerdict
    conversion: LabelVerdict

    @classmethod
    def from_counts(cls, click_counts: pd.DataFrame, conversion_counts: pd.DataFrame) -> "LabelPlan":
        click = judge_labels("click", click_counts)
        conversion = judge_labels("conversion", conversion_counts)
        if conversion.trainable and not click.trainable:
            conversion = LabelVerdict("conversion", None, "no CTR ranker to pair with (pCTCVR = pCTR x pCVR)")
        return cls(click, conversion)

    def as_metadata(self) -> dict[str, str]:
        metadata = {**self.click.as_metadata(), **self.conversion.as_metadata(), "label_rule": RULE}
        for prefix, verdict in (("ctr", self.click), ("conversion", self.conversion)):
            if verdict.trainable:
                metadata.update({f"{prefix}_{k}": v for k, v in verdict.days.as_metadata().items()})
        return metadata


def no_champion_message(model: str, verdict: LabelVerdict) -> str:
    """What to fix when a model cannot train and has no champion to fall back on."""
    return (f"{model} cannot train ({verdict.reason}) and has no champion to keep serving, so there is "
            f"nothing to schedule with. Rule: {RULE}. Land more days of ad events with impressions and "
            "clicks (AD_PARTITION_START must cover them), then run this partition again.")


def day_of(value) -> dt.date:
    return value.date() if isinstance(value, pd.Timestamp) else value
