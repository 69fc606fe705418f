"""Evaluation: the schedule's value under the simulator's ground truth, beside baselines and the oracle."""
import dagster as dg

from ml.evaluation.policy import evaluate_schedules
from ml.simulator import GroundTruth
from orchestration.assets.delivery import ScheduleConfig, campaigns_of, eligible_ads, schedule_date_of
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
    if not (settings.ground_truth_dir / "world.npz").exists():
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
