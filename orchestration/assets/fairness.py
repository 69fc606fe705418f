"""Fairness report: who gets which ads, planned and realised, and advertisers' delivery against budget."""

import dagster as dg
import mlflow
import pandas as pd

from ml.evaluation.fairness import advertiser_delivery, largest_gaps, realised_fairness, schedule_fairness
from ml.evaluation.fairness_plots import plot_advertiser_delivery, plot_group_gaps
from ml.registry import configure_mlflow
from ml.warehouse import replace_rows
from orchestration.assets.common import partition_day, run_tags
from orchestration.assets.delivery import campaigns_of, eligible_ads, schedule_date_of
from orchestration.partitions import ONE_PARTITION_PER_RUN, daily_partitions
from orchestration.plots import png_markdown
from orchestration.resources import PlatformResource

GAPS_TABLE, ADVERTISERS_TABLE = "ml.fairness_gaps", "ml.fairness_advertisers"
# The audience a schedule could reach: every user scored for the day, with the profile as of that day.
AUDIENCE_SQL = """
select distinct candidates.user_key, profiles.gender, profiles.age_band, profiles.city_tier
from ml.scored_candidates as candidates
left join main.user_profiles as profiles
    on profiles.user_key = candidates.user_key and profiles.snapshot_date = candidates.schedule_date
where candidates.schedule_date = ?
"""


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=ONE_PARTITION_PER_RUN,
    group_name="evaluation",
    kinds={"duckdb", "mlflow"},
    deps=["daily_ad_schedule"],
    description="Exposure, clicks, conversions and ad value per user group (gender, age band, city tier) for "
    "tomorrow's schedule (the audience: every user scored for it) and for the outcomes logged on the partition "
    "day, as ratios to everyone's mean with 95% bootstrap intervals; restricted campaigns' delivery by group "
    "against the eligible population; advertisers' share of impressions against their share of budget "
    "(ml.evaluation.fairness). Tables ml.fairness_gaps and ml.fairness_advertisers, plots, an MLflow run.",
)
def fairness_report(context: dg.AssetExecutionContext, platform: PlatformResource):
    settings = platform.settings
    day, schedule_date = partition_day(context), schedule_date_of(context)
    with platform.warehouse(read_only=True) as conn:
        schedule = conn.execute("select * from ml.daily_ad_schedule where schedule_date = ?", [schedule_date]).df()
        audience = conn.execute(AUDIENCE_SQL, [schedule_date]).df()
        logged = conn.execute("select user_key, event_type, cost from main.stg_raw__ad_events where event_date = ?",
                              [day]).df()
        known_users = conn.execute("select user_key, gender, age_band, city_tier from main.user_profiles "
                                   "where snapshot_date = ?", [day]).df()
        restricted = {int(c) for (c,) in conn.execute(
            "select distinct campaign_id from main.stg_raw__campaigns where restricted").fetchall()}
        campaigns = campaigns_of(eligible_ads(conn, schedule_date))
    gaps = schedule_fairness(schedule, audience, restricted)
    if not logged.empty:
        gaps = pd.concat([gaps, realised_fairness(logged, known_users)], ignore_index=True)
    advertisers = advertiser_delivery(schedule, campaigns)
    with platform.warehouse() as conn:
        replace_rows(conn, GAPS_TABLE, gaps.assign(schedule_date=schedule_date), "schedule_date", schedule_date)
        replace_rows(conn, ADVERTISERS_TABLE, advertisers.assign(schedule_date=schedule_date), "schedule_date",
                     schedule_date)

    folder = settings.data_root / "reports" / day.isoformat() / "fairness"
    plots = {"planned (tomorrow's schedule)": plot_group_gaps(gaps[gaps["source"] == "schedule"],
                                                                folder / "schedule_gaps.png",
                                                                f"Schedule {schedule_date}: per-user mean by group")}
    if (gaps["source"] == "realised").any():
        plots["realised (logged on the partition day)"] = plot_group_gaps(
            gaps[gaps["source"] == "realised"], folder / "realised_gaps.png", f"Logged {day}: per-user mean by group")
    plots["advertisers"] = plot_advertiser_delivery(advertisers, folder / "advertisers.png")
    gaps.to_csv(folder / "group_gaps.csv", index=False)
    advertisers.to_csv(folder / "advertisers.csv", index=False)
    configure_mlflow(settings)
    with mlflow.start_run(run_name=f"fairness_report {schedule_date}", tags={**run_tags(context), "kind": "fairness"}):
        mlflow.log_artifacts(str(folder), artifact_path="fairness_report")

    restricted_rows = gaps[gaps["metric"] == "restricted_impressions"]
    widest = largest_gaps(gaps)
    context.log.info(f"fairness {schedule_date}: {len(widest)} gaps with intervals excluding parity among the widest")
    return dg.MaterializeResult(metadata={
        "largest_clear_gaps": dg.MetadataValue.md(
            widest.round(3).to_markdown(index=False) if len(widest) else "no group's interval excludes parity"),
        "restricted_delivery_by_group": dg.MetadataValue.md(
            restricted_rows.round(3).to_markdown(index=False) if len(restricted_rows)
            else "no restricted campaign scheduled"),
        "advertisers": dg.MetadataValue.md(advertisers.round(4).sort_values("budget_share", ascending=False)
                                           .head(15).to_markdown(index=False)),
        "audience_users": len(audience),
        "plots": png_markdown(plots),
    })
