"""Delivery: candidates from the champion encoder, scores from the champion rankers, and tomorrow's
schedule under budgets, pacing, frequency caps, diversity and flight dates (ml/allocation)."""
import datetime as dt
from dataclasses import dataclass

import dagster as dg
import numpy as np
import pandas as pd

from ml.allocation import AllocationConfig
from ml.allocation.allocator import allocate
from ml.allocation.candidates import retrieve_candidates
from ml.allocation.category_candidates import category_candidates
from ml.allocation.constraints import validate_schedule
from ml.allocation.fingerprint import schedule_hash
from ml.allocation.plots import plot_budget_utilisation, plot_spend_by_hour, plot_user_schedule
from ml.creatives.assign import CreativeInputs, assign_creatives, draw_seed
from ml.cvr_fallback import CvrFallback, apply_cvr_fallback
from ml.model_store import load_encoder
from ml.registry import CHAMPION, configure_mlflow
from ml.scoring import RANKER_NAMES, ChampionScorer, explain_scheduled, read_level_factors
from ml.warehouse import replace_rows
from orchestration.assets.common import partition_day
from orchestration.partitions import ONE_PARTITION_PER_RUN, daily_partitions
from orchestration.plots import png_markdown
from orchestration.resources import PlatformResource

ACTIVE_WINDOW_DAYS = 7


class ScheduleConfig(dg.Config):
    """Allocation settings a user tunes from the launchpad (see ml/allocation/config.py)."""

    slots_per_user: int = 4
    max_impressions_per_user_ad: int = 1
    max_impressions_per_user_campaign: int = 2
    max_ads_per_advertiser_per_user: int = 2
    candidates_per_user: int = 50
    exploration_per_user: int = 5
    category_per_user: int = 20
    pacing_tolerance: float = 0.10

    def allocation(self) -> AllocationConfig:
        return AllocationConfig(**self.model_dump())


def schedule_date_of(context) -> dt.date:
    return partition_day(context) + dt.timedelta(days=1)


def end_of_partition(context) -> pd.Timestamp:
    return pd.Timestamp(schedule_date_of(context))


def eligible_ads(conn, schedule_date: dt.date) -> pd.DataFrame:
    """Ads whose campaign is in flight on the schedule date, with tomorrow's snapshot of their features."""
    return conn.execute(
        "select * from main.ad_features where snapshot_date = ? and start_date <= ? and end_date >= ?",
        [schedule_date, schedule_date, schedule_date],
    ).df()


def nothing_to_schedule(schedule_date: dt.date, ads: pd.DataFrame, active_users) -> None:
    """An empty schedule would serve nobody: stop with what to fix instead."""
    if ads.empty:
        raise dg.Failure(description=(
            f"No ad can run on {schedule_date}: no campaign with ads is in flight (start_date <= {schedule_date} "
            "<= end_date, daily_budget > 0). Land campaigns (and their ads) that run on that day."))
    if len(active_users) == 0:
        raise dg.Failure(description=(
            f"No user was active in the {ACTIVE_WINDOW_DAYS} days before {schedule_date}: nobody to schedule. "
            "Land recent behavior_events or ad_events, or run the partition of a day with traffic."))


CAMPAIGN_COLUMNS = ["campaign_id", "advertiser_id", "daily_budget", "start_date", "end_date", "bid", "bid_type",
                    "objective"]


def campaigns_of(ads: pd.DataFrame) -> pd.DataFrame:
    """One row per in-flight campaign, from its ads' feature snapshot (what the allocator needs)."""
    return ads.sort_values(["campaign_id", "ad_id"]).drop_duplicates("campaign_id")[CAMPAIGN_COLUMNS]


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=ONE_PARTITION_PER_RUN,
    group_name="delivery",
    kinds={"torch", "duckdb"},
    deps=["model_promotion", "ad_features", "user_event_stream"],
    description="Per active user (seen in the last 7 days): top-N in-flight ads by similarity of the champion "
    "encoder's user and ad embeddings, plus exploration of fresh and under-delivered ads, plus ads of the "
    "categories the user viewed most that week (ml.ad_candidates).",
)
def ad_candidates(context: dg.AssetExecutionContext, config: ScheduleConfig, platform: PlatformResource):
    schedule_date = schedule_date_of(context)
    settings = platform.settings
    with platform.warehouse(read_only=True) as conn:
        ads = eligible_ads(conn, schedule_date)
        window_start = pd.Timestamp(schedule_date - dt.timedelta(days=ACTIVE_WINDOW_DAYS))
        event_stream = conn.sql("select * from main.user_event_stream").df()
        category_views = conn.execute(CATEGORY_VIEWS, [schedule_date, window_start.date()]).df()
    # In key order: the encoder embeds users in batches of this order.
    active_users = np.sort(event_stream.loc[event_stream["ts"] >= window_start, "user_key"].unique())
    nothing_to_schedule(schedule_date, ads, active_users)
    configure_mlflow(settings)
    encoder, encoder_version = load_encoder()
    user_embeddings = encoder.user_embeddings(event_stream, as_of=end_of_partition(context), user_keys=active_users)
    delivery_stats = ads[["ad_id", "ad_impressions_7d", "ad_age_days"]].rename(
        columns={"ad_impressions_7d": "impressions_7d"})
    candidates = retrieve_candidates(user_embeddings, encoder.ad_embeddings(), ads, config.allocation(), delivery_stats)
    by_category = category_candidates(active_users, ads, category_views, config.category_per_user, candidates)
    candidates = pd.concat([candidates, by_category], ignore_index=True).assign(schedule_date=schedule_date)
    with platform.warehouse() as conn:
        replace_rows(conn, "ml.ad_candidates", candidates, "schedule_date", schedule_date)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(candidates),
        "schedule_date": schedule_date.isoformat(),
        "active_users": len(active_users),
        "eligible_ads": len(ads),
        "candidates_per_user": round(len(candidates) / max(len(active_users), 1), 1),
        "by_source": dg.MetadataValue.json(candidates["source"].value_counts().to_dict()),
        "encoder_version": encoder_version,
    })


# Each user's views per category in the window before the schedule day (category retrieval).
CATEGORY_VIEWS = ("select user_key, category_id, sum(events) as events from main.user_category_affinity "
                  "where activity_date < ? and activity_date >= ? group by all")

# Clicks whose conversion labels are final (cvr_training_set), pooled for the CPA prior.
FINAL_CLICKS_AND_CONVERSIONS = "select count(*), coalesce(sum(label_conversion::int), 0) from main.cvr_training_set"


def campaigns_without_ads(conn, schedule_date: dt.date) -> list[int]:
    """In-flight campaigns (latest version) with no ad to show: nothing to schedule for them."""
    return [row[0] for row in conn.execute(
        "select campaign_id from main.stg_raw__campaigns "
        "qualify row_number() over (partition by campaign_id order by version_date desc) = 1 "
        "and start_date <= ? and end_date >= ? and daily_budget > 0 "
        "and campaign_id not in (select campaign_id from main.ad_features where snapshot_date = ?) "
        "order by campaign_id", [schedule_date, schedule_date, schedule_date]).fetchall()]


@dataclass
class ScheduleInputs:
    """What scoring and allocating the schedule date's candidates reads from the warehouse."""

    features: pd.DataFrame
    campaigns: pd.DataFrame
    user_hours: pd.DataFrame
    hourly_traffic: pd.DataFrame
    event_stream: pd.DataFrame
    level_factors: dict
    cvr_fallback: CvrFallback
    unscheduled_campaigns: list[int]


def read_schedule_inputs(conn, schedule_date: dt.date) -> ScheduleInputs:
    features = conn.execute(
        "select f.*, c.source, c.retrieval_score from main.candidate_features f "
        "join ml.ad_candidates c using (user_key, ad_id, schedule_date) where f.schedule_date = ?",
        [schedule_date]).df()
    return ScheduleInputs(
        features=features,
        campaigns=campaigns_of(eligible_ads(conn, schedule_date)),
        user_hours=conn.sql("select user_key, hour, share from main.user_hourly_activity").df(),
        hourly_traffic=conn.sql("select hour, share from main.hourly_traffic").df(),
        event_stream=conn.sql("select * from main.user_event_stream").df(),
        level_factors=read_level_factors(conn),
        cvr_fallback=CvrFallback(*conn.execute(FINAL_CLICKS_AND_CONVERSIONS).fetchone()),
        unscheduled_campaigns=campaigns_without_ads(conn, schedule_date),
    )


def schedule_with(alias: str, inputs: ScheduleInputs, schedule_date: dt.date, config: "ScheduleConfig",
                  as_of: pd.Timestamp):
    """(scored candidates, allocation, where pCTR and pCVR came from) with the rankers that hold `alias`
    (champion or challenger); without a ranker, the popularity scorer stands in (CPA candidates are
    left out when no conversion was ever seen)."""
    scorer = ChampionScorer.load(inputs.level_factors, alias)
    candidates = scorer.score(inputs.features, inputs.event_stream, as_of=as_of, explain=False)
    sources = {task: f"{task.upper()} {alias} scores every candidate" for task in RANKER_NAMES}
    if candidates["ctr_ranker_version"].isna().all():
        sources["ctr"] = ("no CTR champion: pCTR is the ad's smoothed 7-day click rate (popularity scorer, "
                          "ml/popularity.py)")
    if candidates["cvr_ranker_version"].isna().all():
        candidates, sources["cvr"] = apply_cvr_fallback(candidates, inputs.cvr_fallback)
    result = allocate(candidates, inputs.campaigns, inputs.user_hours, schedule_date, config.allocation(),
                      hourly_traffic=inputs.hourly_traffic)
    candidates, result.schedule = explain_scheduled(scorer, candidates, result.schedule)
    return candidates, result, sources


SCHEDULE_CHECKS = {
    "budgets_caps_diversity_respected": ["budget", "user_ad_cap", "user_campaign_cap", "advertiser_diversity",
                                         "slots_per_user", "flight_dates"],
    "every_active_user_served": ["coverage"],
    "spend_follows_pacing_plan": ["pacing"],
}


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=ONE_PARTITION_PER_RUN,
    group_name="delivery",
    kinds={"lightgbm", "duckdb"},
    deps=["candidate_features", "model_promotion", "ranker_value_gate", "user_hourly_activity", "hourly_traffic",
          "creative_stats", "user_segments"],
    check_specs=[dg.AssetCheckSpec(name, asset="daily_ad_schedule", blocking=True, description=", ".join(rules))
                 for name, rules in SCHEDULE_CHECKS.items()],
    description="Tomorrow's per-user ad schedule: up to K ads per user across the user's active hours, by "
    "expected value (CPC bid x pCTR, CPA bid x pCTR x pCVR) under budgets, hourly pacing, frequency caps, "
    "advertiser diversity and flight dates; each row says why and, for ads with creatives, which creative "
    "(a Thompson draw per row, ml/creatives) with its selection probability (ml.daily_ad_schedule, "
    "schedules/date=*/).",
)
def daily_ad_schedule(context: dg.AssetExecutionContext, config: ScheduleConfig, platform: PlatformResource):
    schedule_date = schedule_date_of(context)
    settings = platform.settings
    with platform.warehouse(read_only=True) as conn:
        inputs = read_schedule_inputs(conn, schedule_date)
    configure_mlflow(settings)
    candidates, result, sources = schedule_with(CHAMPION, inputs, schedule_date, config, end_of_partition(context))
    for task in RANKER_NAMES:
        if candidates[f"{task}_ranker_version"].isna().all():
            context.log.warning(sources[task])
    campaigns = inputs.campaigns
    unscheduled_campaigns = inputs.unscheduled_campaigns
    allocation_config = config.allocation()
    schedule = result.schedule.assign(
        ctr_ranker_version=candidates["ctr_ranker_version"].iloc[0] if len(candidates) else None,
        cvr_ranker_version=candidates["cvr_ranker_version"].iloc[0] if len(candidates) else None,
    )
    violations = validate_schedule(schedule, campaigns, allocation_config, result.pacing_plan, candidates)
    with platform.warehouse(read_only=True) as conn:
        creatives = CreativeInputs.read(conn)
    schedule = assign_creatives(schedule, creatives, np.random.default_rng(draw_seed(schedule_date)))

    export_dir = settings.data_root / "schedules" / f"date={schedule_date}"
    export_dir.mkdir(parents=True, exist_ok=True)
    schedule.to_parquet(export_dir / "schedule.parquet", index=False)
    with platform.warehouse() as conn:
        replace_rows(conn, "ml.daily_ad_schedule", schedule, "schedule_date", schedule_date)
        # Kept for evaluation (same candidates for every baseline policy) and for serving's re-ranking.
        replace_rows(conn, "ml.scored_candidates", candidates, "schedule_date", schedule_date)

    plots_dir = settings.data_root / "reports" / partition_day(context).isoformat() / "schedule"
    diagnostics = result.diagnostics
    plots = {
        "Budget utilisation per campaign": plot_budget_utilisation(
            diagnostics["budget_utilisation"], plots_dir / "budget_utilisation.png"),
        "Spend by hour vs pacing plan": plot_spend_by_hour(
            diagnostics["spend_by_hour"], plots_dir / "spend_by_hour.png", allocation_config.pacing_tolerance),
    }
    if len(schedule):
        plots["One user's schedule"] = plot_user_schedule(
            schedule, schedule["user_key"].iloc[0], plots_dir / "user_schedule.png")

    yield dg.MaterializeResult(metadata={
        "dagster/row_count": len(schedule),
        "schedule_date": schedule_date.isoformat(),
        "schedule_hash": schedule_hash(schedule),
        "users_served": diagnostics["users_served"],
        "users_with_candidates": diagnostics["users_with_candidates"],
        "expected_value": round(diagnostics["total_expected_value"], 2),
        "expected_spend": round(float(schedule["expected_cost"].sum()), 2) if len(schedule) else 0.0,
        "dual_iterations": diagnostics["dual_iterations"],
        "ctr_source": sources["ctr"],
        "cvr_source": sources["cvr"],
        "campaigns_in_flight_without_ads": dg.MetadataValue.json(unscheduled_campaigns),
        "rows_with_a_creative": int(schedule["creative_id"].notna().sum()) if len(schedule) else 0,
        "ranker_level_factors": dg.MetadataValue.json({
            task: float(candidates[f"{task}_level_factor"].iloc[0]) if len(candidates) else 1.0
            for task in RANKER_NAMES}),
        "budget_utilisation": dg.MetadataValue.md(
            diagnostics["budget_utilisation"].round(3).head(60).to_markdown(index=False)),
        "sample_rows": dg.MetadataValue.md(schedule.head(12).to_markdown(index=False)),
        "plots": png_markdown(plots),
        "export": dg.MetadataValue.path(str(export_dir / "schedule.parquet")),
    })
    for check_name, rules in SCHEDULE_CHECKS.items():
        broken = violations[violations["rule"].isin(rules)]
        yield dg.AssetCheckResult(
            check_name=check_name,
            passed=broken.empty,
            metadata={"violations": len(broken),
                      "examples": dg.MetadataValue.md(broken.head(10).to_markdown(index=False) if len(broken) else "none"),
                      "pacing_tolerance": allocation_config.pacing_tolerance},
        )
