"""The Dagster code location: every asset, check, job, schedule, sensor and resource in one place."""
import dagster as dg

from orchestration.assets import dbt as dbt_assets
from orchestration.assets import (ab_test, creatives, delivery, encoder, evaluation, fairness, ingest, monitoring,
                                  policy_value, promotion, rankers, value_gate)
from orchestration.automation import daily_pipeline, daily_schedule, ingest_job, landing_files_sensor
from orchestration.privacy import forget_users_job, retention_job, retention_schedule
from orchestration.resources import PlatformResource

defs = dg.Definitions(
    assets=[
        ingest.raw_tables,
        dbt_assets.dbt_transform,
        encoder.interest_encoder,
        rankers.rankers,
        promotion.model_promotion,
        delivery.ad_candidates,
        dbt_assets.dbt_scoring_features,
        value_gate.ranker_value_gate,
        delivery.daily_ad_schedule,
        evaluation.policy_evaluation,
        evaluation.cold_start_value,
        creatives.creative_report_asset,
        fairness.fairness_report,
        policy_value.policy_value_estimates,
        ab_test.ab_test_readout,
    ],
    asset_checks=[promotion.champions_not_worse_than_challengers, *monitoring.MONITORING_CHECKS],
    jobs=[ingest_job, daily_pipeline, forget_users_job, retention_job],
    schedules=[daily_schedule, retention_schedule],
    sensors=[landing_files_sensor],
    resources={"platform": PlatformResource(), "dbt": dbt_assets.dbt_resource()},
    # One step at a time in one process: DuckDB has a single writer per file (see ARCHITECTURE.md).
    executor=dg.in_process_executor,
)
