"""Evaluation: the schedule's value under the simulator's ground truth, beside baselines and the oracle."""
import datetime as dt
from typing import NamedTuple

import dagster as dg
import pandas as pd

from ml.evaluation.cold_start_value import (carries_encoder_features, schedule_values_with_and_without_titles,
                                            value_comparison)
from ml.evaluation.policy import evaluate_schedules, user_ids_by_key
from ml.rankers.splits import DaySplit, split_by_day
from ml.simulator import GroundTruth
from orchestration.assets.delivery import ScheduleConfig, campaigns_of, eligible_ads, schedule_date_of
from orchestration.assets.holdout import model_label_plan
from orchestration.assets.rankers import load_training_sets
from orchestration.partitions import ONE_PARTITION_PER_RUN, daily_partitions
from ml.warehouse import replace_rows
from orchestration.resources import PlatformResource


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=ONE_PARTITION_PER_RUN,
    group_name="evaluation",
    kinds={"duckdb"},
    deps=["daily_ad_schedule"],
    description="Expected clicks, conversions and advertiser value of tomorrow's schedule under the TRUE "
    "probabilities (simulator ground truth), beside a random schedule, a popularity schedule and the same "
    "allocator fed the oracle's probabilities (ml.policy_evaluation). Skipped (no ground truth) on real data.",
)
def policy_evaluation(context: dg.AssetExecutionContext, config: ScheduleConfig, platform: PlatformResource):
    settings = platform.settings
    schedule_date = schedule_date_of(context)
    if not settings.has_ground_truth:
        return dg.MaterializeResult(metadata={"status": "no ground truth (real data): nothing to compare against"})
    with platform.warehouse(read_only=True) as conn:
        schedule = conn.execute("select * from ml.daily_ad_schedule where schedule_date = ?", [schedule_date]).df()
        scored = conn.execute("select * from ml.scored_candidates where schedule_date = ?", [schedule_date]).df()
        ads = eligible_ads(conn, schedule_date)
        user_hours = conn.sql("select user_key, hour, share from main.user_hourly_activity").df()
    campaigns = campaigns_of(ads)
    report = evaluate_schedules(GroundTruth.load(settings.ground_truth_dir), settings.pseudonym_key, schedule,
                                scored, campaigns, user_hours, schedule_date, config.allocation())
    with platform.warehouse() as conn:
        replace_rows(conn, "ml.policy_evaluation", report.assign(schedule_date=schedule_date), "schedule_date",
                     schedule_date)
    product = report.iloc[0]
    return dg.MaterializeResult(metadata={
        "report": dg.MetadataValue.md(report.round(3).to_markdown(index=False)),
        "share_of_oracle_value": round(float(product["share_of_oracle_value"]), 4),
        "expected_clicks": round(float(product["expected_clicks"]), 2),
        "expected_conversions": round(float(product["expected_conversions"]), 2),
        "advertiser_value": round(float(product["advertiser_value"]), 2),
        "value_within_budget": round(float(product["capped_spend"]), 2),
    })


class ColdStartInputs(NamedTuple):
    split: DaySplit  # the CTR challenger's days
    scored: pd.DataFrame  # the schedule day's candidates as the daily run scored them
    campaigns: pd.DataFrame
    user_hours: pd.DataFrame
    hourly_traffic: pd.DataFrame


def read_cold_start_inputs(conn, schedule_date: dt.date) -> ColdStartInputs | str:
    """What re-making `schedule_date`'s schedule with another CTR ranker reads; a reason when it cannot."""
    plan = model_label_plan(conn)
    if not plan.click.trainable:  # the CTR ranker was skipped for the same reason
        return plan.click.reason
    scored = conn.execute("select * from ml.scored_candidates where schedule_date = ?", [schedule_date]).df()
    if scored.empty:
        return f"no scored candidates for {schedule_date}"
    ctr_set, _ = load_training_sets(conn, schedule_date - dt.timedelta(days=1))
    return ColdStartInputs(
        split=split_by_day(ctr_set, plan.click.days.test_date, plan.click.days.validation_date), scored=scored,
        campaigns=campaigns_of(eligible_ads(conn, schedule_date)),
        user_hours=conn.sql("select user_key, hour, share from main.user_hourly_activity").df(),
        hourly_traffic=conn.sql("select hour, share from main.hourly_traffic").df())


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=ONE_PARTITION_PER_RUN,
    group_name="evaluation",
    kinds={"lightgbm", "duckdb"},
    deps=["daily_ad_schedule"],
    description="Cold start under the simulator's ground truth: tomorrow's candidates re-scored by the CTR "
    "recipe fitted with and without the ads' title terms (the challenger's days), each allocated as the "
    "schedule is and valued with the TRUE probabilities: value planned on ads younger than 2 days and on all, "
    "with paired bootstrap 95% intervals over users (ml.evaluation.cold_start_value). The AUC side is on "
    "`ctr_ranker` (`cold_start`). Skipped on real data, and when the days cannot fit a ranker.",
)
def cold_start_value(context: dg.AssetExecutionContext, config: ScheduleConfig, platform: PlatformResource):
    settings = platform.settings
    schedule_date = schedule_date_of(context)
    if not settings.has_ground_truth:
        return dg.MaterializeResult(metadata={"status": "no ground truth (real data): nothing to compare against"})
    with platform.warehouse(read_only=True) as conn:
        inputs = read_cold_start_inputs(conn, schedule_date)
    if isinstance(inputs, str):
        return dg.MaterializeResult(metadata={"status": f"skipped: {inputs}"})
    truth = GroundTruth.load(settings.ground_truth_dir)
    per_user, capped, new_impressions = schedule_values_with_and_without_titles(
        *inputs, schedule_date, config.allocation(), truth, user_ids_by_key(truth, settings.pseudonym_key))
    comparison = value_comparison(per_user, capped)
    new = comparison.iloc[0]
    context.log.info(f"cold start: value on new ads {new['value with titles']:.1f} with titles vs "
                     f"{new['value without titles']:.1f} without ({new['gain']:+.1f} "
                     f"[{new['gain_ci95_low']:+.1f}, {new['gain_ci95_high']:+.1f}])")
    return dg.MaterializeResult(metadata={
        "value": dg.MetadataValue.md(comparison.round(2).to_markdown(index=False)),
        "new_ad_value_with_titles": round(float(new["value with titles"]), 2),
        "new_ad_value_without_titles": round(float(new["value without titles"]), 2),
        "new_ad_value_gain_95": f"{new['gain']:+.2f} [{new['gain_ci95_low']:+.2f}, {new['gain_ci95_high']:+.2f}]",
        "new_ad_impressions_planned": dg.MetadataValue.json(new_impressions),
        "users": len(per_user),
        "encoder_features": "used by both rankers" if carries_encoder_features(inputs.scored)
        else "not used: no CTR champion scored the candidates, so they carry no encoder scores",
    })
