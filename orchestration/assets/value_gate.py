"""Promotion by value: a ranker challenger that passed model_promotion's AUC guard replaces its
champion only when the schedule it would produce is worth more, off-policy, on the same logged day
beyond noise (doubly robust, paired, user as the unit; ml/evaluation/value_gate.py)."""
import dagster as dg
import pandas as pd
from mlflow import MlflowClient

from ml.evaluation.schedule_ope import paired_difference, schedule_rounds
from ml.evaluation.value_gate import value_verdict
from ml.registry import CHALLENGER, CHAMPION, configure_mlflow, version_by_alias
from ml.scoring import RANKER_NAMES
from orchestration.assets.delivery import (ScheduleConfig, end_of_partition, read_schedule_inputs, schedule_date_of,
                                           schedule_with)
from orchestration.assets.policy_value import logged_day, value_holdout_day
from orchestration.assets.promotion import VALUE_PENDING, model_promotion
from orchestration.partitions import ONE_PARTITION_PER_RUN, daily_partitions
from orchestration.resources import PlatformResource


def pending_tasks(context) -> dict[str, dict]:
    """Ranker tasks whose challenger passed the AUC guard in this partition's model_promotion."""
    event = context.instance.get_latest_materialization_event(model_promotion.key)
    records = event.asset_materialization.metadata["decision_records"].value if event else []
    by_name = {record["model"]: record for record in records}
    return {task: by_name[name] for task, name in RANKER_NAMES.items()
            if VALUE_PENDING in str(by_name.get(name, {}).get("reason", ""))}


def _rounds(alias, inputs, logged, schedule_date, config, as_of):
    scored, allocation, _ = schedule_with(alias, inputs, schedule_date, config, as_of)
    ad_campaigns = scored.drop_duplicates("ad_id").set_index("ad_id")["campaign_id"]
    return schedule_rounds(logged, allocation.schedule, scored, ad_campaigns)


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=ONE_PARTITION_PER_RUN,
    group_name="models",
    kinds={"mlflow"},
    deps=["model_promotion", "candidate_features"],
    description="Promotion by value: for each ranker whose challenger passed model_promotion's AUC guard, the "
    "schedule with the challenger and the schedule with the champion (same candidates) are valued on the same "
    "logged day, doubly robust; the challenger becomes champion only if the paired difference's 95% interval "
    "(user as the unit) is above 0. Otherwise the champion keeps serving.",
)
def ranker_value_gate(context: dg.AssetExecutionContext, config: ScheduleConfig, platform: PlatformResource):
    pending = pending_tasks(context)
    if not pending:
        return dg.MaterializeResult(metadata={"decisions": "no ranker challenger awaits a value decision"})
    settings = platform.settings
    schedule_date = schedule_date_of(context)
    configure_mlflow(settings)
    with platform.warehouse(read_only=True) as conn:
        holdout_day, label_note = value_holdout_day(conn)
        logged = logged_day(conn, holdout_day) if holdout_day else pd.DataFrame()
        inputs = read_schedule_inputs(conn, schedule_date)
    if logged.empty or logged["propensity"].isna().any():
        reason = "cannot value schedules: the logged day carries no propensities; the champions keep serving"
        return dg.MaterializeResult(metadata={"decisions": reason, "labels": label_note})
    as_of = end_of_partition(context)
    champion_rounds = _rounds(CHAMPION, inputs, logged, schedule_date, config, as_of)
    records = []
    for task, record in pending.items():
        aliases = {**dict.fromkeys(RANKER_NAMES, CHAMPION), task: CHALLENGER}
        difference = paired_difference(_rounds(aliases, inputs, logged, schedule_date, config, as_of), champion_rounds)
        verdict = value_verdict(difference)
        name = RANKER_NAMES[task]
        if verdict.passed:
            MlflowClient().set_registered_model_alias(name, CHAMPION, version_by_alias(name, CHALLENGER).version)
        context.log.info(f"{name}: promoted={verdict.passed} ({verdict.reason})")
        records.append({"model": name, "challenger_version": record["challenger_version"],
                        "champion_version_before": record["champion_version_before"], "promoted": verdict.passed,
                        "reason": verdict.reason, **{k: round(v, 6) for k, v in difference.items()}})
    return dg.MaterializeResult(metadata={
        "holdout_day": str(holdout_day), "labels": label_note,
        "decisions": dg.MetadataValue.md(pd.DataFrame(records).to_markdown(index=False)),
        "decision_records": dg.MetadataValue.json(records),
    })
