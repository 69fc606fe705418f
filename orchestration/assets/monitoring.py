"""Monitoring checks: warn (never block) before quality drops. Computations live in ml/monitoring;
each check's description states its threshold, as the Dagster UI shows it beside the result.

- `landing_fresh` on every raw table: the partition day and every day since AD_PARTITION_START landed.
- `feature_drift` on candidate_features: PSI of training rows vs tomorrow's candidates, per feature.
- `prediction_drift` on daily_ad_schedule: PSI of the champions' pCTR/pCVR vs the previous schedule.
- `champion_calibration` on model_promotion: observed / predicted on the newest days with final labels.
"""
import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd

from ml.ingest.contract import OPTIONAL_TABLES
from ml.model_store import encoder_for_ranker, encoder_run_of, load_ranker
from ml.monitoring.calibration import (CALIBRATION_RANGE, SIGNIFICANCE, beyond_noise, is_calibrated,
                                      observed_to_predicted_by_day)
from ml.monitoring.feature_drift import DRIFT_FEATURES, NOT_COMPARED, feature_drift
from ml.monitoring.freshness import landed_days, missing_landing_days
from ml.monitoring.plots import plot_calibration_ratios, plot_psi
from ml.monitoring.psi import PSI_WARN, numeric_psi, psi_band
from ml.rankers.features import ENCODER_FEATURES, labels_for
from ml.rankers.live_features import FEATURE_WINDOW_DAYS
from ml.registry import CHAMPION, configure_mlflow
from ml.scoring import RANKER_NAMES
from orchestration.assets.delivery import daily_ad_schedule
from orchestration.assets.holdout import model_label_plan
from orchestration.assets.ingest import RAW_ASSET_KEYS
from orchestration.assets.promotion import model_promotion
from orchestration.partitions import daily_partitions
from orchestration.plots import png_markdown
from orchestration.resources import PlatformResource

WARN = dg.AssetCheckSeverity.WARN
CALIBRATION_DAYS = 5  # newest days with final labels shown per champion; the newest one decides


def check_day(context: dg.AssetCheckExecutionContext) -> dt.date:
    """The run's partition day; the newest partition when the check runs on its own from the UI."""
    key = context.partition_key if context.has_partition_key else daily_partitions.get_last_partition_key()
    return dt.date.fromisoformat(key)


def report_dir(platform: PlatformResource, day: dt.date):
    return platform.settings.data_root / "reports" / day.isoformat() / "monitoring"


def _landing_fresh(table: str, key: dg.AssetKey) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=key, name="landing_fresh",
        description=f"WARN when `{table}` has no landing folder with a delivered file for the partition day, "
        "or for any day since AD_PARTITION_START (a gap). Late = not landed when the daily run checks it "
        "(02:00 UTC the next day on schedule). Metadata names the missing days. An optional table "
        "(creatives) that a log has never delivered passes.",
    )
    def landing_fresh(context: dg.AssetCheckExecutionContext, platform: PlatformResource) -> dg.AssetCheckResult:
        day, settings = check_day(context), platform.settings
        if table in OPTIONAL_TABLES and not landed_days(settings.landing_dir, table):
            return dg.AssetCheckResult(passed=True, metadata={
                "partition_day": day.isoformat(), "optional": f"this log has no {table} (an optional table)"})
        missing = missing_landing_days(settings.landing_dir, [table], settings.partition_start, day)
        landed_at = landed_days(settings.landing_dir, table).get(day)
        missing_days = [d.isoformat() for d in missing["day"]]
        return dg.AssetCheckResult(
            passed=missing.empty, severity=WARN,
            description=f"{table} missing on {', '.join(missing_days)}" if missing_days else None,
            metadata={"partition_day": day.isoformat(), "missing_days": dg.MetadataValue.json(missing_days),
                      "partition_day_landed_at": landed_at.isoformat() if landed_at else "not landed"},
        )

    return landing_fresh


LANDING_FRESHNESS_CHECKS = [_landing_fresh(table, key) for table, key in RAW_ASSET_KEYS.items()]


def _psi_result(table: pd.DataFrame, plot_path, title: str, extra: dict) -> dg.AssetCheckResult:
    drifted = table.loc[table["psi"] > PSI_WARN, "feature"].tolist()
    return dg.AssetCheckResult(
        passed=not drifted, severity=WARN,
        description=f"PSI > {PSI_WARN}: {', '.join(drifted)}" if drifted else None,
        metadata={"drifted": dg.MetadataValue.json(drifted), "psi_threshold": PSI_WARN,
                  "max_psi": round(float(table["psi"].max()), 4) if len(table) else 0.0,
                  "psi": dg.MetadataValue.md(table.round(4).to_markdown(index=False)),
                  "plot": png_markdown({title: plot_psi(table, plot_path, title)}), **extra},
    )


def warmed_up(train_days: list[dt.date], first_logged_day: dt.date) -> list[dt.date]:
    """The training days whose 7-day feature windows were full (the log is older than the window);
    all of them on a log too young for any. Early days' counts are low because their windows are
    still filling (on the demo: ad_impressions_7d PSI 1.77 against the whole training range)."""
    full = [day for day in train_days if day >= first_logged_day + dt.timedelta(days=FEATURE_WINDOW_DAYS)]
    return full or train_days


@dg.asset_check(
    asset=dg.AssetKey("ctr_training_set"), name="feature_drift",
    description=f"WARN when a ranker feature's population stability index (PSI) between the CTR ranker's "
    f"training days with full {FEATURE_WINDOW_DAYS}-day feature windows and the newest logged day (both "
    f"ctr_training_set) exceeds {PSI_WARN} "
    "(< 0.1 stable, 0.1-0.2 moderate, > 0.2 significant). Like for like: both are impressions the "
    "logging policy chose, so a PSI is a change over time, not the candidates' selection (comparing "
    "with tomorrow's candidates fired on 12 features of the clean demo, brand_id PSI 2.46). Numeric: "
    "decile bins of the training rows; categorical: per level, levels under 1% pooled. Not compared "
    f"(differ by construction): {', '.join(NOT_COMPARED)}.",
)
def feature_drift_check(context: dg.AssetCheckExecutionContext, platform: PlatformResource) -> dg.AssetCheckResult:
    day = check_day(context)
    columns = ", ".join(DRIFT_FEATURES)
    with platform.warehouse(read_only=True) as conn:
        click_labels = model_label_plan(conn).click
        if not click_labels.trainable:
            return dg.AssetCheckResult(passed=True, severity=WARN, metadata={
                "note": f"no CTR training days to compare with: {click_labels.reason}"})
        first_day = conn.execute("select min(impression_date) from main.ctr_training_set").fetchone()[0]
        train_days = warmed_up(list(click_labels.days.train_dates), first_day)
        training = conn.execute(f"select {columns} from main.ctr_training_set where impression_date in "
                                "(select unnest(?::date[]))", [train_days]).df()
        newest_day = conn.execute("select max(impression_date) from main.ctr_training_set").fetchone()[0]
        newest = conn.execute(f"select {columns} from main.ctr_training_set where impression_date = ?",
                              [newest_day]).df()
    if newest.empty or training.empty:
        return dg.AssetCheckResult(passed=False, severity=WARN, metadata={
            "note": f"nothing to compare: {len(training)} training rows, {len(newest)} newest-day rows"})
    table = feature_drift(training, newest)
    return _psi_result(table, report_dir(platform, day) / "feature_drift.png",
                       f"Feature PSI: training days vs {newest_day}", {
                           "training_days": f"{train_days[0]}..{train_days[-1]}", "training_rows": len(training),
                           "newest_day": str(newest_day), "newest_rows": len(newest)})


PREDICTIONS = ["pctr", "pcvr"]


@dg.asset_check(
    asset=daily_ad_schedule, name="prediction_drift",
    description=f"WARN when the PSI of the champions' pCTR or pCVR on the scheduled candidates "
    f"(ml.scored_candidates) against the previous schedule date's exceeds {PSI_WARN} (decile bins of the "
    "previous day's scores). Passes with a note on the first schedule. A change of champion or of its "
    "level factor moves the scores too: the metadata gives both days' versions and means.",
)
def prediction_drift_check(context: dg.AssetCheckExecutionContext, platform: PlatformResource) -> dg.AssetCheckResult:
    day = check_day(context)
    schedule_date = day + dt.timedelta(days=1)
    query = "select pctr, pcvr, ctr_ranker_version, cvr_ranker_version from ml.scored_candidates where schedule_date = ?"
    with platform.warehouse(read_only=True) as conn:
        current = conn.execute(query, [schedule_date]).df()
        previous_date = conn.execute("select max(schedule_date) from ml.scored_candidates where schedule_date < ?",
                                     [schedule_date]).fetchone()[0]
        previous = conn.execute(query, [previous_date]).df() if previous_date else None
    if previous is None or previous.empty:
        return dg.AssetCheckResult(passed=True, severity=WARN, metadata={
            "note": f"no schedule before {schedule_date} to compare with"})

    def summary(frame: pd.DataFrame) -> dict:
        return {"rows": len(frame), **{f"mean_{c}": round(float(frame[c].mean()), 5) for c in PREDICTIONS},
                **{c: sorted(frame[c].astype(str).unique().tolist()) for c in ("ctr_ranker_version", "cvr_ranker_version")}}

    table = pd.DataFrame([{"feature": c, "psi": numeric_psi(previous[c], current[c])} for c in PREDICTIONS])
    table["band"] = table["psi"].map(psi_band)
    return _psi_result(table, report_dir(platform, day) / "prediction_drift.png",
                       f"Prediction PSI: {previous_date} vs {schedule_date}", {
                           "previous_schedule_date": str(previous_date), "schedule_date": schedule_date.isoformat(),
                           "previous": dg.MetadataValue.json(summary(previous)),
                           "current": dg.MetadataValue.json(summary(current))})


def newest_final_days(conn, condition: str, n: int) -> list[dt.date]:
    rows = conn.execute(f"select impression_date from main.ctr_training_set group by impression_date having "
                        f"{condition} order by impression_date desc limit {n}").fetchall()
    return sorted(row[0] for row in rows)


def champion_predictions(ranker, rows: pd.DataFrame, event_stream: pd.DataFrame, encoders: dict) -> np.ndarray:
    """The ranker's raw calibrated predictions on logged rows, with its own encoder's features (no
    level factor: that corrects for pairs the logger did not show, and these it did)."""
    run = encoder_run_of(ranker)
    if run not in encoders:  # both rankers usually share one encoder
        encoders[run] = encoder_for_ranker(ranker)
    scores = encoders[run].score_impressions(event_stream, rows[["impression_id", "user_key", "ad_id", "impression_ts"]])
    inputs = rows.drop(columns=ENCODER_FEATURES, errors="ignore").merge(
        scores[["impression_id", *ENCODER_FEATURES]], on="impression_id", how="left")
    return ranker.predict(inputs)


@dg.asset_check(
    asset=model_promotion, name="champion_calibration",
    description=f"WARN when a champion ranker's observed / predicted ratio (sum of labels / sum of its "
    f"predictions on the logged impressions) on the newest day whose labels are final leaves "
    f"[{CALIBRATION_RANGE[0]}, {CALIBRATION_RANGE[1]}]. CTR: every impression of the newest click-final day; "
    f"CVR: the clicks of the newest conversion-final day. The last {CALIBRATION_DAYS} final days are "
    "tabled and plotted for the trend (earlier ones may be the champion's own training days). A ratio out of "
    f"the band warns only when the label count is implausible under Poisson(predicted) (p < {SIGNIFICANCE}).",
)
def champion_calibration_check(context: dg.AssetCheckExecutionContext, platform: PlatformResource) -> dg.AssetCheckResult:
    day = check_day(context)
    configure_mlflow(platform.settings)
    with platform.warehouse(read_only=True) as conn:
        days = {"ctr": newest_final_days(conn, "true", CALIBRATION_DAYS),
                "cvr": newest_final_days(conn, "bool_and(conversion_label_final)", CALIBRATION_DAYS)}
        rows = {task: conn.execute("select * from main.ctr_training_set where impression_date in "
                                   "(select unnest(?::date[]))" + (" and label_click = 1" if task == "cvr" else "")
                                   + " order by impression_id", [task_days]).df()
                for task, task_days in days.items()}
        event_stream = conn.sql("select * from main.user_event_stream").df()
    tables, encoders = [], {}
    for task, name in RANKER_NAMES.items():
        champion = load_ranker(name, CHAMPION)
        if champion is None or rows[task].empty:
            continue
        predictions = champion_predictions(champion, rows[task], event_stream, encoders)
        tables.append(observed_to_predicted_by_day(rows[task]["impression_date"], labels_for(rows[task], task),
                                                   predictions).assign(model=f"{name} v{champion.version}"))
    if not tables:
        return dg.AssetCheckResult(passed=False, severity=WARN, metadata={"note": "no champion or no final day"})
    table = pd.concat(tables, ignore_index=True)
    newest = table.groupby("model").tail(1)
    out_of_band = [not is_calibrated(r) for r in newest["ratio"]]
    significant = [beyond_noise(o, p) for o, p in zip(newest["observed"], newest["predicted"])]
    decayed = newest.loc[[b and s for b, s in zip(out_of_band, significant)], "model"].tolist()
    noise_only = newest.loc[[b and not s for b, s in zip(out_of_band, significant)], "model"].tolist()
    plot = plot_calibration_ratios(table, report_dir(platform, day) / "calibration.png", CALIBRATION_RANGE)
    return dg.AssetCheckResult(
        passed=not decayed, severity=WARN,
        description=f"out of [{CALIBRATION_RANGE[0]}, {CALIBRATION_RANGE[1]}]: {', '.join(decayed)}" if decayed else None,
        metadata={"decayed": dg.MetadataValue.json(decayed), "allowed_ratio": list(CALIBRATION_RANGE),
                  "out_of_band_within_noise": dg.MetadataValue.json(noise_only),
                  "newest_ratio": dg.MetadataValue.json({m: round(float(r), 4) for m, r in zip(newest["model"], newest["ratio"])}),
                  "by_day": dg.MetadataValue.md(table.round(4).to_markdown(index=False)),
                  "plot": png_markdown({"Observed / predicted per day": plot})},
    )


MONITORING_CHECKS = [*LANDING_FRESHNESS_CHECKS, feature_drift_check, prediction_drift_check, champion_calibration_check]
