"""Promotion: each new version (`challenger`) becomes `champion` only if it is at least as good as
the current champion on the same holdout, each scored with its own encoder's features."""
import dataclasses

import dagster as dg
import numpy as np
import pandas as pd

from ml.evaluation.metrics import auc, paired_auc_difference
from ml.evaluation.value_gate import GateResult, auc_guard, beats_trivial_scorers
from ml.model_store import encoder_for_ranker, encoder_run_of, load_encoder, load_ranker
from ml.rankers.features import ENCODER_FEATURES, labels_for
from ml.rankers.mlflow_io import holdout_rows, holdout_score
from ml.rankers.off_policy import ips_level_factor
from ml.registry import CHALLENGER, CHAMPION, apply_promotion, configure_mlflow, decide_promotion, version_by_alias
from ml.scoring import LEVEL_CORRECTIONS_TABLE
from ml.warehouse import replace_rows
from orchestration.assets.common import partition_day
from orchestration.assets.encoder import ENCODER_MODEL_NAME, encoder_trained
from orchestration.assets.holdout import model_label_plan
from orchestration.assets.rankers import PROMOTION_METRIC, RANKER_NAMES, RANKER_REPORT_FILE, holdout_path
from orchestration.partitions import ONE_PARTITION_PER_RUN, daily_partitions
from orchestration.resources import PlatformResource


class HoldoutEncoderScores:
    """Encoder features of the holdout, computed once per encoder run (challengers and champions
    of all three models usually share one or two encoders)."""

    def __init__(self, holdout: pd.DataFrame, event_stream: pd.DataFrame):
        self.holdout, self.event_stream = holdout, event_stream
        self._by_run: dict[str, pd.DataFrame] = {}

    def of(self, encoder_run_id: str, load_encoder_fn) -> pd.DataFrame:
        if encoder_run_id not in self._by_run:
            queries = self.holdout[["impression_id", "user_key", "ad_id", "impression_ts"]]
            self._by_run[encoder_run_id] = load_encoder_fn().score_impressions(self.event_stream, queries)
        return self._by_run[encoder_run_id]


def ranker_holdout_predictions(ranker, scores: HoldoutEncoderScores, task: str) -> tuple[pd.DataFrame, np.ndarray]:
    """(the task's holdout rows, the ranker's predictions) with features from the ranker's own encoder."""
    encoder_features = scores.of(encoder_run_of(ranker), lambda: encoder_for_ranker(ranker))
    rescored = scores.holdout.drop(columns=ENCODER_FEATURES).merge(
        encoder_features[["impression_id", *ENCODER_FEATURES]], on="impression_id", how="left"
    )
    rows = holdout_rows(rescored, task)
    return rows, ranker.predict(rows)


VALUE_PENDING = "the value of its schedule decides (ranker_value_gate)"


def ranker_auc_guard(challenger, champion, scores: HoldoutEncoderScores, task: str):
    """Paired (DeLong) AUC of challenger minus champion on the same holdout rows, as a guard."""
    rows, challenger_predictions = ranker_holdout_predictions(challenger, scores, task)
    _, champion_predictions = ranker_holdout_predictions(champion, scores, task)
    difference, se = paired_auc_difference(labels_for(rows, task), challenger_predictions, champion_predictions)
    return auc_guard(difference, se)


def ranker_holdout_auc(ranker, scores: HoldoutEncoderScores, task: str) -> float:
    rows, predictions = ranker_holdout_predictions(ranker, scores, task)
    return holdout_score(predictions, rows, task, PROMOTION_METRIC)  # rows are already the task's


def champion_level_corrections(scores_by_task: dict[str, HoldoutEncoderScores], day) -> pd.DataFrame:
    """Each champion's and challenger's off-policy level factor on its holdout (ml/rankers/off_policy.py;
    the challenger's: ranker_value_gate scores its schedule like the champion's); none for a ranker
    skipped this partition or without that alias."""
    records, done = [], set()
    for task, scores in scores_by_task.items():
        name = RANKER_NAMES[task]
        for alias in (CHAMPION, CHALLENGER):
            ranker = load_ranker(name, alias)
            if ranker is None or (name, str(ranker.version)) in done:
                continue
            done.add((name, str(ranker.version)))
            rows, predictions = ranker_holdout_predictions(ranker, scores, task)
            correction = ips_level_factor(labels_for(rows, task), predictions, rows["propensity"].to_numpy(float))
            records.append({"as_of_date": day, "model_name": name, "model_version": str(ranker.version),
                            **correction.as_metadata()})
    return pd.DataFrame(records)


def encoder_holdout_auc(alias: str, scores: HoldoutEncoderScores) -> tuple[str | None, float | None]:
    """(version, click AUC of its logits on the holdout) of the encoder with `alias`, or (None, None)."""
    version = version_by_alias(ENCODER_MODEL_NAME, alias)
    if version is None:
        return None, None
    logits = scores.of(version.run_id, lambda: load_encoder(ENCODER_MODEL_NAME, alias)[0])
    labelled = scores.holdout[["impression_id", "label_click"]].merge(logits, on="impression_id")
    return str(version.version), auc(labelled["label_click"].to_numpy(), labelled["encoder_logit"].to_numpy())


FALLBACK_SCORER = {
    "ctr": "the schedule scores pCTR with the popularity scorer (the ad's smoothed 7-day click rate)",
    "cvr": "CPA candidates are priced with the popularity scorer (the ad's smoothed conversions per click)",
}


def first_version_verdict(settings, day, task: str) -> GateResult:
    """A first version (no champion yet) must beat a constant scorer and the popularity baseline on its
    holdout beyond noise (ml/evaluation/value_gate.py), read from the rankers' holdout report of the day."""
    path = settings.data_root / "reports" / day.isoformat() / "rankers" / RANKER_REPORT_FILE
    report = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["model", "task"])
    rows = report[report["task"] == task].set_index("model")
    if not {"lightgbm", "popularity"} <= set(rows.index):
        return GateResult(False, f"no holdout report comparing it with the popularity baseline ({path})")
    model, popularity = rows.loc["lightgbm"], rows.loc["popularity"]
    return beats_trivial_scorers(float(model["auc"]), float(model["auc_se"]),
                                 float(popularity["reference_auc_minus_this"]), float(popularity["difference_se"]))


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=ONE_PARTITION_PER_RUN,
    group_name="models",
    kinds={"mlflow"},
    deps=["interest_encoder", RANKER_NAMES["ctr"], RANKER_NAMES["cvr"]],
    description="Compares each model's `challenger` with its `champion` on this partition's holdout (CTR "
    "and the encoder: the CTR test day; CVR: the clicks of the conversion holdout) and "
    "moves the `champion` alias only when the challenger is at least as good (AUC; for the rankers a "
    "guard: a ranker challenger not worse beyond noise is judged by the value of its schedule in "
    "ranker_value_gate; a first ranker version becomes champion only if it beats a constant scorer and the "
    "popularity baseline beyond noise on its holdout, else the popularity scorer stands in); then estimates each "
    "champion ranker's off-policy level factor for scoring candidates (ml.ranker_level_corrections).",
)
def model_promotion(context: dg.AssetExecutionContext, platform: PlatformResource):
    day = partition_day(context)
    settings = platform.settings
    with platform.warehouse(read_only=True) as conn:
        event_stream = conn.sql("select * from main.user_event_stream").df()
        plan = model_label_plan(conn)
    configure_mlflow(settings)

    # Each task's rows only (CVR: the clicks), so the encoders score nothing no decision reads. A model
    # skipped this partition (labels too scarce, ml/label_sufficiency.py) left no holdout: no decision.
    scores_by_task = {
        task: HoldoutEncoderScores(holdout_rows(pd.read_parquet(holdout_path(settings, day, task)), task), event_stream)
        for task in RANKER_NAMES if holdout_path(settings, day, task).exists()
    }
    decisions, skipped = [], {}
    if encoder_trained(settings, day) and "ctr" in scores_by_task:
        challenger_version, challenger_auc = encoder_holdout_auc(CHALLENGER, scores_by_task["ctr"])
        decisions.append(decide_promotion(ENCODER_MODEL_NAME, challenger_version, challenger_auc,
                                          encoder_holdout_auc(CHAMPION, scores_by_task["ctr"])[1], PROMOTION_METRIC))
    else:
        skipped[ENCODER_MODEL_NAME] = plan.click.reason
    for task, name in RANKER_NAMES.items():
        if task not in scores_by_task:
            skipped[name] = (plan.click if task == "ctr" else plan.conversion).reason or "not trained"
            continue
        challenger = load_ranker(name, CHALLENGER)
        champion = load_ranker(name, CHAMPION)
        decision = decide_promotion(
            name, challenger.version, ranker_holdout_auc(challenger, scores_by_task[task], task),
            None if champion is None else ranker_holdout_auc(champion, scores_by_task[task], task),
            PROMOTION_METRIC,
        )
        if champion is None:
            verdict = first_version_verdict(settings, day, task)
            decision = dataclasses.replace(decision, promoted=verdict.passed, reason=(
                f"first version: {verdict.reason}" if verdict.passed
                else f"refused (first version): {verdict.reason}; {FALLBACK_SCORER[task]}"))
        elif str(champion.version) != str(challenger.version):
            # AUC guards; the value of the schedule decides (ranker_value_gate, ml/evaluation/value_gate.py).
            guard = ranker_auc_guard(challenger, champion, scores_by_task[task], task)
            decision = dataclasses.replace(decision, promoted=False, reason=(
                f"{guard.reason}; {VALUE_PENDING}" if guard.passed else f"refused: {guard.reason}"))
        decisions.append(decision)
    for decision in decisions:
        apply_promotion(decision)
        context.log.info(f"{decision.model_name}: promoted={decision.promoted} ({decision.reason})")
    for name, reason in skipped.items():
        context.log.warning(f"{name}: skipped ({reason}); its champion, if any, keeps serving")

    corrections = champion_level_corrections(scores_by_task, day)
    if len(corrections):
        with platform.warehouse() as conn:
            replace_rows(conn, LEVEL_CORRECTIONS_TABLE, corrections, "as_of_date", day)

    records = [d.as_metadata() for d in decisions] + [
        {"model": name, "skipped": reason, "promoted": False, "reason": f"skipped: {reason}"}
        for name, reason in skipped.items()]
    table = pd.DataFrame(records)
    return dg.MaterializeResult(
        metadata={
            "decisions": dg.MetadataValue.md(table.to_markdown(index=False)),
            "promoted": dg.MetadataValue.json({d.model_name: d.promoted for d in decisions}),
            "skipped": dg.MetadataValue.json(skipped),
            "decision_records": dg.MetadataValue.json(records),
            **{f"{task}_holdout_day": str(pd.to_datetime(scores.holdout["impression_date"]).dt.date.iloc[0])
               for task, scores in scores_by_task.items()},
            **{f"{task}_holdout_rows": len(scores.holdout) for task, scores in scores_by_task.items()},
            "champion_level_corrections": dg.MetadataValue.md(corrections.to_markdown(index=False)),
        }
    )


@dg.asset_check(asset=model_promotion, blocking=True,
                description="The registry's champion aliases agree with the holdout: every model has a "
                "champion, and a challenger that scored worse than its champion is not serving.")
def champions_not_worse_than_challengers(context: dg.AssetCheckExecutionContext, platform: PlatformResource):
    configure_mlflow(platform.settings)
    event = context.instance.get_latest_materialization_event(model_promotion.key)
    decisions = event.asset_materialization.metadata["decision_records"].value if event else []
    problems = []
    for decision in decisions:
        champion = version_by_alias(decision["model"], CHAMPION)
        if "skipped" in decision:
            # Not trained this partition; delivery fails with what to fix if it needs a missing champion.
            continue
        if VALUE_PENDING in str(decision.get("reason", "")) or str(decision.get("reason", "")).startswith("refused"):
            continue  # judged by the guard here and by ranker_value_gate; a refused first version leaves none
        if champion is None:
            problems.append(f"{decision['model']} has no champion")
            continue
        challenger_serving = str(champion.version) == str(decision["challenger_version"])
        champion_score = decision["champion_score"]
        if challenger_serving and champion_score is not None and decision["challenger_score"] < champion_score:
            problems.append(f"{decision['model']} v{champion.version} is champion but scored worse than v"
                            f"{decision['champion_version_before']}")
        if not challenger_serving and champion_score is not None and decision["challenger_score"] > champion_score:
            problems.append(f"{decision['model']}: better challenger v{decision['challenger_version']} not promoted")
    return dg.AssetCheckResult(
        passed=bool(decisions) and not problems,
        metadata={"problems": dg.MetadataValue.json(problems), "models_checked": len(decisions)},
    )
