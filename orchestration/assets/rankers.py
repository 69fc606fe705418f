"""LightGBM CTR and CVR rankers (ml/rankers), judged beside baselines and the oracle, in MLflow."""
import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd

from ml.rankers.cold_start import cold_start_comparison
from ml.rankers.comparison import LIGHTGBM, LIGHTGBM_NO_CONTENT, compare_rankers
from ml.rankers.features import join_encoder_features
from ml.rankers.mlflow_io import champion_holdout_score, holdout_score, holdout_rows, log_ranker_to_mlflow
from ml.rankers.plots import save_report_plots
from ml.rankers.report import ModelScores, build_ranker_report, report_metrics
from ml.rankers.splits import split_by_day
from ml.registry import configure_mlflow
from ml.scoring import RANKER_NAMES
from ml.simulator import GroundTruth
from orchestration.assets.common import partition_day, run_tags
from orchestration.assets.encoder import encoder_run_id
from orchestration.assets.holdout import model_label_plan
from orchestration.partitions import ONE_PARTITION_PER_RUN, daily_partitions
from orchestration.plots import png_markdown
from orchestration.resources import PlatformResource

PROMOTION_METRIC = "auc"
ENCODER_ALONE = "interest_encoder_alone"
RANKER_REPORT_FILE = "ranker_report.csv"
COLD_START_REPORT_FILE = "cold_start.csv"


def holdout_path(settings, day: dt.date, task: str):
    """Where a partition's holdout for `task` is kept for model_promotion: the CTR test day's impressions
    for 'ctr' (and the encoder), the conversion holdout's impressions for 'cvr'."""
    return settings.data_root / "reports" / day.isoformat() / "rankers" / f"holdout_{task}.parquet"


def _sigmoid(logits: pd.Series) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits.to_numpy(float)))


def load_training_sets(conn, day: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    encoder_scores = conn.execute(
        "select impression_id, encoder_logit, encoder_similarity, label_seen_by_encoder "
        "from ml.encoder_impression_scores where as_of_date = ?", [day]
    ).df()
    ctr = join_encoder_features(
        # Ordered on read: the marts are sets, and LightGBM's bagging depends on row order.
        conn.sql("select * from main.ctr_training_set order by impression_id").df(),
        encoder_scores
    )
    cvr = join_encoder_features(
        conn.sql("select * from main.cvr_training_set order by impression_id").df(), encoder_scores)
    return ctr, cvr


def attach_oracle(frame: pd.DataFrame, settings) -> pd.DataFrame:
    """Simulator only: the true probabilities, for the oracle rows of the report (never a feature).

    Per impression (the session's intent known) and day ahead (averaged over the intent).
    """
    if not (settings.ground_truth_dir / "impressions.parquet").exists():
        return frame
    ground_truth = GroundTruth.load(settings.ground_truth_dir)
    truth = ground_truth.impressions()
    truth = truth[truth["impression_id"].isin(frame["impression_id"])]
    day_ahead_pctr, day_ahead_pcvr = ground_truth.true_probabilities(
        truth["user_id"], truth["ad_id"], truth["ts"].dt.date, truth["ts"].dt.hour, truth["slot"]
    )
    truth = truth[["impression_id", "true_pctr", "true_pcvr"]].assign(
        day_ahead_pctr=day_ahead_pctr, day_ahead_pcvr=day_ahead_pcvr
    )
    return frame.merge(truth, on="impression_id", how="left")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            RANKER_NAMES["ctr"], group_name="models", kinds={"lightgbm", "mlflow"},
            deps=["ctr_training_set", "interest_encoder"],
            description="LightGBM CTR ranker on impressions, calibrated on the validation day; registered "
            "in MLflow as `challenger` (promotion happens in `model_promotion`).",
        ),
        dg.AssetSpec(
            RANKER_NAMES["cvr"], group_name="models", kinds={"lightgbm", "mlflow"},
            deps=["cvr_training_set", "interest_encoder"],
            description="LightGBM CVR ranker on clicked impressions (pCTCVR = pCTR x pCVR, ESMM style).",
        ),
    ],
    partitions_def=daily_partitions,
    backfill_policy=ONE_PARTITION_PER_RUN,
)
def rankers(context: dg.AssetExecutionContext, platform: PlatformResource):
    day = partition_day(context)
    settings = platform.settings
    with platform.warehouse(read_only=True) as conn:
        plan = model_label_plan(conn)
        ctr_set, cvr_set = load_training_sets(conn, day) if plan.click.trainable else (None, None)
    holdout_paths = {task: holdout_path(settings, day, task) for task in RANKER_NAMES}
    for path in holdout_paths.values():  # a skipped model leaves no holdout: model_promotion skips it too
        path.unlink(missing_ok=True)
    if not plan.click.trainable:
        # The encoder step already stopped the run when there is no champion to fall back on.
        for task in RANKER_NAMES:
            yield skipped_ranker(task, plan.click.reason, plan)
        return
    with_cvr = plan.conversion.trainable
    ctr_set = attach_oracle(ctr_set, settings)
    ctr = split_by_day(ctr_set, plan.click.days.test_date, plan.click.days.validation_date)
    conversion = cvr_train = cvr_valid = None
    if with_cvr:
        days = plan.conversion.days
        conversion = split_by_day(ctr_set, days.test_date, days.validation_date)
        cvr_train, cvr_valid, _ = split_by_day(cvr_set, days.test_date, days.validation_date)
    context.log.info(f"Training rankers: {plan.as_metadata()}, {len(ctr.train):,} CTR train impressions, "
                     f"{0 if cvr_train is None else len(cvr_train):,} CVR train clicks")

    comparison = compare_rankers(ctr, cvr_train, cvr_valid, conversion, with_cvr=with_cvr)
    holdouts = comparison.holdouts
    # The encoder alone as a click model (its pCVR borrowed from LightGBM so the row is complete).
    comparison.predictions[ENCODER_ALONE] = ModelScores(
        ctr=_sigmoid(holdouts.ctr["encoder_logit"]),
        cvr_on_conversion=comparison.predictions[LIGHTGBM].cvr_on_conversion,
        ctr_on_conversion=_sigmoid(holdouts.conversion["encoder_logit"]) if with_cvr else None,
    )
    report = build_ranker_report(holdouts, comparison.predictions)
    report_dir = settings.data_root / "reports" / day.isoformat() / "rankers"
    fitted_by_task = {"ctr": comparison.ctr_ranker, "cvr": comparison.cvr_ranker}
    plot_paths = save_report_plots(
        holdouts, comparison.predictions, {t: f for t, f in fitted_by_task.items() if f is not None}, report_dir
    )
    report.to_csv(report_dir / RANKER_REPORT_FILE, index=False)  # read by the demo's summary
    # New ads (no history): the same holdout scored with and without the title's terms.
    cold_start = cold_start_comparison(holdouts.ctr, comparison.predictions[LIGHTGBM].ctr,
                                       comparison.predictions[LIGHTGBM_NO_CONTENT].ctr)
    cold_start.to_csv(report_dir / COLD_START_REPORT_FILE, index=False)
    holdout_metrics = report_metrics(report, LIGHTGBM)

    configure_mlflow(settings)
    tags = run_tags(context) | {"encoder_run_id": encoder_run_id(settings, day)}
    holdouts.ctr.to_parquet(holdout_paths["ctr"])
    if with_cvr:
        holdouts.conversion.to_parquet(holdout_paths["cvr"])
    for task, fitted in fitted_by_task.items():
        name = RANKER_NAMES[task]
        if fitted is None:
            yield skipped_ranker(task, plan.conversion.reason, plan, report)
            continue
        holdout = holdouts.ctr if task == "ctr" else holdouts.conversion
        run_id, version = log_ranker_to_mlflow(fitted, name, report, plot_paths, tags, holdout_metrics)
        challenger_score = holdout_score(fitted.predict(holdout_rows(holdout, task)), holdout, task, PROMOTION_METRIC)
        champion_score = champion_holdout_score(name, holdout, task, PROMOTION_METRIC)
        yield dg.MaterializeResult(
            asset_key=name,
            metadata={
                **plan.as_metadata(),
                "report": dg.MetadataValue.md(report.round(4).to_markdown(index=False)),
                **{k: round(v, 4) for k, v in holdout_metrics.items() if k.startswith(f"test_{task}")},
                "test_ctcvr_auc": round(holdout_metrics.get("test_ctcvr_auc", float("nan")), 4),
                "plots": png_markdown(plot_paths),
                "mlflow_run_id": run_id,
                "model_version": version,
                f"challenger_holdout_{PROMOTION_METRIC}": challenger_score,
                f"champion_holdout_{PROMOTION_METRIC}": champion_score if champion_score is not None else "none",
                "holdout_path": dg.MetadataValue.path(str(holdout_paths[task])),
                **(cold_start_metadata(cold_start) if task == "ctr" else {}),
            },
        )


def cold_start_metadata(cold_start: pd.DataFrame) -> dict:
    """The CTR AUC on ads younger than two days with and without content features, paired."""
    young = cold_start.iloc[0]
    return {"cold_start": dg.MetadataValue.md(cold_start.round(4).to_markdown(index=False)),
            "cold_start_young_ad_impressions": int(young["impressions"]),
            "cold_start_auc_with_content": round(float(young["auc_with_content"]), 4),
            "cold_start_auc_without_content": round(float(young["auc_without_content"]), 4),
            "cold_start_auc_gain_ci95": f"{young['auc_gain']:+.4f} [{young['gain_ci95_low']:+.4f}, "
                                        f"{young['gain_ci95_high']:+.4f}]"}


def skipped_ranker(task: str, reason: str, plan, report: pd.DataFrame | None = None) -> dg.MaterializeResult:
    """Labels too scarce: no new version; the current champion (if any) keeps serving, and without a
    CVR champion the schedule prices CPA campaigns with a prior or leaves them out (daily_ad_schedule)."""
    metadata = {"skipped": reason, **plan.as_metadata()}
    if report is not None:
        metadata["report"] = dg.MetadataValue.md(report.round(4).to_markdown(index=False))
    return dg.MaterializeResult(asset_key=RANKER_NAMES[task], metadata=metadata)
