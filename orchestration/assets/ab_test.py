"""A simulated A/B test of tomorrow's schedule against the logging policy, and its readout beside the
off-policy prediction made before it (ml.simulator.ab_test, ml.evaluation.ab_readout)."""
import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd

from ml.evaluation.ab_plots import plot_ab_readout
from ml.evaluation.ab_readout import arm_table, lift_table
from ml.evaluation.policy import user_ids_by_key
from ml.simulator import GroundTruth
from ml.simulator.ab_test import save_served_day, serve_ab_day, served_day_dir
from ml.simulator.continuation import STATE_FILE, Continuation
from ml.simulator.world import World
from ml.warehouse import replace_rows, table_exists
from orchestration.assets.common import partition_day
from orchestration.assets.delivery import schedule_date_of
from orchestration.assets.policy_value import ESTIMATES_TABLE, PREDICTED_LIFT
from orchestration.partitions import ONE_PARTITION_PER_RUN, daily_partitions
from orchestration.plots import png_markdown
from orchestration.resources import PlatformResource

ARMS_TABLE = "ml.ab_test_arms"
LIFT_TABLE = "ml.ab_test_lift"


class ABTestConfig(dg.Config):
    """The share of users (split once per world, kept every day) whom the schedule serves."""

    treatment_share: float = 0.5


def _not_run(reason: str) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"status": f"not run: {reason}"})


def schedule_positions(truth: GroundTruth, key: str, schedule: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The schedule's rows as the simulator's (user, ad) positions."""
    user_ids = user_ids_by_key(truth, key).reindex(schedule["user_key"]).to_numpy()
    if np.isnan(user_ids.astype(float)).any():
        raise ValueError("the schedule names users the simulator does not know: the warehouse and the ground "
                         "truth come from different runs")
    return (user_ids.astype(np.int64) - World.ids("user", 0),
            schedule["ad_id"].to_numpy(np.int64) - World.ids("ad", 0))


def scheduled_creatives(schedule: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """The creative each schedule row drew, as simulator positions (-1: none), and its probability
    (NaN where none: only drawn rows' probabilities are read)."""
    if "creative_id" not in schedule:  # a schedule made before creatives
        return None
    creative = schedule["creative_id"].astype("Int64")
    positions = (creative - World.ids("creative", 0)).fillna(-1).to_numpy(np.int64)
    return positions, schedule["creative_probability"].to_numpy(float, na_value=np.nan)


def predicted_lift(conn, schedule_date: dt.date) -> dict | None:
    """The paired DR lift over the logging policy that policy_value_estimates wrote for this schedule."""
    if not table_exists(conn, ESTIMATES_TABLE):
        return None
    row = conn.execute(f"select estimate, ci_low, ci_high, holdout_day from {ESTIMATES_TABLE} "
                       "where schedule_date = ? and policy = ?", [schedule_date, PREDICTED_LIFT]).fetchone()
    if row is None:
        return None
    return {"predicted_lift": row[0], "predicted_ci_low": row[1], "predicted_ci_high": row[2],
            "predicted_on_day": row[3]}


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=ONE_PARTITION_PER_RUN,
    group_name="evaluation",
    kinds={"duckdb"},
    deps=["daily_ad_schedule", "policy_value_estimates"],
    description="Simulated A/B test of tomorrow's schedule: the simulator serves the day after the partition with "
    "a user-level split (treatment: the schedule, each user's scheduled ads in proportion to their rows; control: "
    "the simulator's logging policy), outcomes drawn from the ground truth, each campaign's budget split between "
    "the arms by their share of users. Readout per arm (users, impressions, clicks, conversions, spend, "
    f"advertiser value, budget pacing error; {ARMS_TABLE}) and the lift with 95% intervals, the user as the unit, "
    f"beside the off-policy (DR) lift predicted before the test ({LIFT_TABLE}). The served day is kept under "
    "<data root>/ab_tests/<day>/ for the closed loop. Runs only on simulated data, for the simulator's next "
    "unserved day.",
)
def ab_test_readout(context: dg.AssetExecutionContext, config: ABTestConfig, platform: PlatformResource):
    settings = platform.settings
    schedule_date = schedule_date_of(context)
    if not (settings.ground_truth_dir / STATE_FILE).exists():
        return _not_run("no simulator ground truth (real logs): land your own test's arms to read them out with "
                        "ml.evaluation.ab_readout")
    truth = GroundTruth.load(settings.ground_truth_dir)
    continuation = Continuation.load(settings.ground_truth_dir)
    next_day = truth.world.config.day(continuation.next_day_index)
    if schedule_date != next_day:
        return _not_run(f"the simulator serves {next_day} next (the day after the last landed day); the schedule "
                        f"for {schedule_date} cannot be A/B tested")
    with platform.warehouse(read_only=True) as conn:
        schedule = conn.execute("select * from ml.daily_ad_schedule where schedule_date = ? "
                                "order by user_key, ad_id", [schedule_date]).df()
        prediction = predicted_lift(conn, schedule_date)
    if schedule.empty:
        return _not_run(f"no schedule for {schedule_date}")

    served = serve_ab_day(truth.world, continuation, *schedule_positions(truth, settings.pseudonym_key, schedule),
                          treatment_share=config.treatment_share, schedule_creatives=scheduled_creatives(schedule))
    save_served_day(served, served_day_dir(settings.data_root, schedule_date))
    arms = arm_table(served.impressions, served.users, served.campaigns).assign(
        schedule_date=schedule_date, treatment_fallback_share=served.treatment_fallback_share)
    lift = lift_table(served.impressions, served.users).assign(schedule_date=schedule_date)
    # Off-policy estimates are per logged impression: the prediction sits beside the same unit.
    per_impression = lift["metric"] == "value per impression"
    for key, value in (prediction or {}).items():
        lift.loc[per_impression, key] = value
    with platform.warehouse() as conn:
        replace_rows(conn, ARMS_TABLE, arms, "schedule_date", schedule_date)
        replace_rows(conn, LIFT_TABLE, lift, "schedule_date", schedule_date)
        arms_by_day = conn.execute(f"select schedule_date, arm, value_per_opportunity from {ARMS_TABLE} "
                                   "order by schedule_date, arm").df()

    plot = plot_ab_readout(arms_by_day, lift[per_impression].iloc[0],
                           settings.data_root / "reports" / partition_day(context).isoformat() / "ab_test.png")
    value_lift = lift[per_impression].iloc[0]
    context.log.info(f"A/B {schedule_date}: value per impression lift {value_lift['lift']:+.4f} "
                     f"[{value_lift['ci_low']:+.4f}, {value_lift['ci_high']:+.4f}]")
    return dg.MaterializeResult(metadata={
        "test_day": schedule_date.isoformat(),
        "arms": dg.MetadataValue.md(arms.drop(columns="schedule_date").round(4).to_markdown(index=False)),
        "lift": dg.MetadataValue.md(lift.drop(columns="schedule_date").round(4).to_markdown(index=False)),
        "realised_lift_per_impression": dg.MetadataValue.json(
            {key: round(float(value_lift[key]), 5) for key in ("lift", "ci_low", "ci_high")}),
        "predicted_lift_per_impression": dg.MetadataValue.json(
            {key: (round(float(value), 5) if isinstance(value, float) else str(value))
             for key, value in (prediction or {}).items()} or "no off-policy estimate for this schedule"),
        "treatment_fallback_share": round(served.treatment_fallback_share, 4),
        "plot": png_markdown({"A/B readout": plot}),
    })
