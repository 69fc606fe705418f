"""Off-policy value of tomorrow's schedule: had we served it on the latest day whose labels are
final, what would it have earned, and how sure are we (ml.evaluation.schedule_ope)?"""
import datetime as dt

import dagster as dg
import pandas as pd

from ml.evaluation.ope import estimate_frame, on_policy_value
from ml.evaluation.ope_plots import plot_policy_value_estimates
from ml.evaluation.policy import true_probabilities_for, user_ids_by_key
from ml.evaluation.schedule_ope import (LOGGED_COLUMNS, lift_over_logging_policy, paired_difference, schedule_rounds,
                                       true_value_per_impression)
from ml.registry import CHALLENGER, CHAMPION, configure_mlflow, version_by_alias
from ml.scoring import RANKER_NAMES
from ml.simulator import GroundTruth
from ml.warehouse import replace_rows
from orchestration.assets.common import partition_day
from orchestration.assets.delivery import (ScheduleConfig, end_of_partition, read_schedule_inputs, schedule_date_of,
                                           schedule_with)
from orchestration.assets.holdout import model_label_plan
from orchestration.partitions import ONE_PARTITION_PER_RUN, daily_partitions
from orchestration.plots import png_markdown
from orchestration.resources import PlatformResource

ESTIMATES_TABLE = "ml.policy_value_estimates"
LOGGING_POLICY = "logging policy"  # its own mean value on the logged day (on-policy, no estimate needed)
PREDICTED_LIFT = "champions minus logging policy"  # DR minus on-policy, paired: what an A/B test would show
# Weights above this are capped in the DR-clip row (bias for variance); the plain DR row is uncapped.
DR_WEIGHT_CLIP = 50.0


def challenger_differs() -> bool:
    """Whether either ranker's challenger is another version than its champion."""
    return any(getattr(version_by_alias(name, CHALLENGER), "version", None)
               != getattr(version_by_alias(name, CHAMPION), "version", None) for name in RANKER_NAMES.values())


def logged_day(conn, day: dt.date) -> pd.DataFrame:
    return conn.execute(f"select {', '.join(LOGGED_COLUMNS)} from main.ctr_training_set "
                        "where impression_date = ? order by impression_id", [day]).df()


def value_holdout_day(conn) -> tuple[dt.date | None, str]:
    """(the logged day to value schedules on, a note on its labels): the conversion holdout when
    conversions are final there, else the click holdout (CPA value then counts only conversions seen
    so far), else None with the reason."""
    plan = model_label_plan(conn)
    if plan.conversion.trainable:
        return plan.conversion.days.test_date, "conversions final on the holdout day"
    if plan.click.trainable:  # e.g. logs without conversions: CPC value is complete, CPA's is not
        return plan.click.days.test_date, (f"no conversion-final holdout ({plan.conversion.reason}): CPA value "
                                           "counts only conversions seen so far")
    return None, plan.click.reason


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=ONE_PARTITION_PER_RUN,
    group_name="evaluation",
    kinds={"duckdb"},
    deps=["daily_ad_schedule"],
    description="Off-policy value of tomorrow's schedule (and of the challengers' schedule when they differ) "
    "on the logged impressions of the latest day whose conversions are final: direct method, IPS, "
    "self-normalised IPS, doubly robust (plain and with weights capped at 50), each with a 95% interval "
    "that treats the user as the unit, plus diagnostics (effective sample size, largest weight, target "
    "mass on the logger's support); beside the true value when the logs come from the simulator "
    f"({ESTIMATES_TABLE}). Assumes per-slot independence; see ml/evaluation/schedule_ope.py.",
)
def policy_value_estimates(context: dg.AssetExecutionContext, config: ScheduleConfig, platform: PlatformResource):
    settings = platform.settings
    schedule_date = schedule_date_of(context)
    with platform.warehouse(read_only=True) as conn:
        holdout_day, label_note = value_holdout_day(conn)
        if holdout_day is None:
            return dg.MaterializeResult(metadata={"status": f"not estimated: {label_note}"})
        logged = logged_day(conn, holdout_day)
        schedules = {"champions": conn.execute("select * from ml.daily_ad_schedule where schedule_date = ?",
                                               [schedule_date]).df()}
        scored = {"champions": conn.execute("select * from ml.scored_candidates where schedule_date = ?",
                                            [schedule_date]).df()}
        configure_mlflow(settings)
        inputs = read_schedule_inputs(conn, schedule_date) if challenger_differs() else None
    if logged["propensity"].isna().any() or logged.empty:
        missing = int(logged["propensity"].isna().sum())
        return dg.MaterializeResult(metadata={
            "status": f"not estimated: {missing} of {len(logged)} logged impressions on {holdout_day} carry no "
                      "propensity (the logging policy's probability); off-policy estimates need it"})
    if inputs is not None:
        scored["challengers"], allocation, _ = schedule_with(CHALLENGER, inputs, schedule_date, config,
                                                          end_of_partition(context))
        schedules["challengers"] = allocation.schedule

    truth = GroundTruth.load(settings.ground_truth_dir) if settings.has_ground_truth else None
    tables, rounds_by_policy = [], {}
    for policy, schedule in schedules.items():
        ad_campaigns = scored[policy].drop_duplicates("ad_id").set_index("ad_id")["campaign_id"]
        rounds = schedule_rounds(logged, schedule, scored[policy], ad_campaigns)
        rounds_by_policy[policy] = rounds
        table = estimate_frame(rounds, clip=DR_WEIGHT_CLIP, impressions_per_day=len(schedule))
        true_value = None
        if truth is not None:
            user_ids = user_ids_by_key(truth, settings.pseudonym_key)
            true_value = true_value_per_impression(
                rounds, logged, schedule, lambda rows: true_probabilities_for(truth, rows, user_ids, holdout_day))
        tables.append(table.assign(policy=policy, schedule_date=schedule_date, holdout_day=holdout_day,
                                   true_value=true_value))
    tables.append(_logging_policy_rows(rounds_by_policy["champions"]).assign(
        schedule_date=schedule_date, holdout_day=holdout_day, true_value=None))
    estimates = pd.concat(tables, ignore_index=True)
    with platform.warehouse() as conn:
        replace_rows(conn, ESTIMATES_TABLE, estimates, "schedule_date", schedule_date)

    plot = plot_policy_value_estimates(
        estimates[estimates["policy"] != PREDICTED_LIFT], settings.data_root / "reports" / partition_day(context).isoformat() / "policy_value.png")
    dr = estimates[estimates["estimator"] == "dr"].set_index("policy")
    metadata = {
        "holdout_day": holdout_day.isoformat(),
        "labels": label_note,
        "logged_impressions": len(logged),
        "estimates": dg.MetadataValue.md(estimates[[
            "policy", "estimator", "estimate", "ci_low", "ci_high", "true_value", "estimate_per_day", "ess",
            "max_weight", "support_share"]].round(4).to_markdown(index=False)),
        "champions_dr_value_per_impression": round(float(dr.loc["champions", "estimate"]), 5),
        "champions_dr_interval": [round(float(dr.loc["champions", "ci_low"]), 5),
                                  round(float(dr.loc["champions", "ci_high"]), 5)],
        "plot": png_markdown({"Estimate ± 95% interval per estimator": plot}),
    }
    lift = estimates[estimates["policy"] == PREDICTED_LIFT].iloc[0]
    metadata["predicted_lift_over_logging_policy"] = dg.MetadataValue.json(
        {key: round(float(lift[key]), 5) for key in ("estimate", "ci_low", "ci_high")})
    if truth is not None:
        metadata["champions_true_value_per_impression"] = round(float(dr.loc["champions", "true_value"]), 5)
    if "challengers" in rounds_by_policy:
        difference = paired_difference(rounds_by_policy["challengers"], rounds_by_policy["champions"])
        metadata["challengers_minus_champions_dr"] = dg.MetadataValue.json(
            {key: round(value, 5) for key, value in difference.items()})
    return dg.MaterializeResult(metadata=metadata)


def _logging_policy_rows(champion_rounds: pd.DataFrame) -> pd.DataFrame:
    """The logging policy's own value on the logged day, and the champions' DR value minus it (paired,
    per-user interval): the lift an A/B test of the schedule against the logging policy would measure."""
    logged = on_policy_value(champion_rounds["reward"].to_numpy(float), champion_rounds["user_key"].to_numpy())
    lift = lift_over_logging_policy(champion_rounds)
    return pd.DataFrame([
        {**logged.as_row(), "policy": LOGGING_POLICY},
        {"policy": PREDICTED_LIFT, "estimator": "dr", "estimate": lift["difference"], "ci_low": lift["ci_low"],
         "ci_high": lift["ci_high"], "standard_error": lift["standard_error"], "n_rounds": len(champion_rounds),
         "unit": "per impression", "interval": "cluster-robust normal"},
    ])
