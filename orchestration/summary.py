"""The short summary the main command prints at the end."""
from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
from mlflow import MlflowClient

from ml.allocation.fingerprint import schedule_hash
from ml.registry import CHALLENGER, CHAMPION, configure_mlflow
from ml.settings import Settings
from ml.warehouse import connect

SUMMARY_TABLES = [
    "raw.users", "raw.campaigns", "raw.ads", "raw.behavior_events", "raw.ad_events", "raw.quarantine",
    "main.ctr_training_set", "main.cvr_training_set", "main.user_profiles", "main.user_event_stream",
    "ml.user_embeddings", "ml.ad_candidates", "ml.daily_ad_schedule",
]
# Which of each model's logged metrics the summary shows.
REGISTERED_MODELS = {"interest_encoder": "final_val_", "ctr_ranker": "test_ctr", "cvr_ranker": "test_cvr"}


def table_counts(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, int | str]]:
    counts = []
    for table in SUMMARY_TABLES:
        try:
            counts.append((table, conn.execute(f"select count(*) from {table}").fetchone()[0]))
        except duckdb.Error:
            counts.append((table, "missing"))
    return counts


def promotion_lines() -> list[str]:
    """Why each model is (or is not) champion, from the latest model_promotion materialization."""
    import dagster as dg

    lines = []
    for asset in ("model_promotion", "ranker_value_gate"):
        event = dg.DagsterInstance.get().get_latest_materialization_event(dg.AssetKey(asset))
        metadata = event.asset_materialization.metadata if event else {}
        records = metadata["decision_records"].value if "decision_records" in metadata else []
        lines += [f"  {r['model']:<18} {'promoted' if r.get('promoted') else 'not promoted'}"
                  f"{' by value' if asset == 'ranker_value_gate' else ''}: {r.get('reason', '')}" for r in records]
    return lines


def registry_lines(settings: Settings) -> list[str]:
    configure_mlflow(settings)
    client = MlflowClient()
    lines = []
    for name, metric_prefix in REGISTERED_MODELS.items():
        try:
            model = client.get_registered_model(name)
        except Exception:  # noqa: BLE001 - a missing model is reported, not fatal
            lines.append(f"  {name:<18} not registered")
            continue
        versions = client.search_model_versions(f"name='{name}'")
        aliases = {alias: version for alias, version in (model.aliases or {}).items()}
        champion = aliases.get(CHAMPION)
        metrics = ""
        if champion:
            run = client.get_run(client.get_model_version(name, champion).run_id)
            shown = {k.removeprefix(metric_prefix).strip("_"): v for k, v in run.data.metrics.items()
                     if k.startswith(metric_prefix) and "loss" not in k}
            metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(shown.items())[:5])
        lines.append(
            f"  {name:<18} versions={len(versions)} champion=v{champion} "
            f"challenger=v{aliases.get(CHALLENGER)} {metrics}"
        )
    return lines


def evaluation_lines(settings: Settings) -> list[str]:
    """The latest policy evaluation (simulator ground truth), as recorded on the Dagster instance."""
    import dagster as dg

    event = dg.DagsterInstance.get().get_latest_materialization_event(dg.AssetKey("policy_evaluation"))
    report = event.asset_materialization.metadata.get("report") if event else None
    return report.value.splitlines() if report else ["  no policy evaluation (no ground truth)"]


def _latest_metadata(asset: str) -> dict:
    import dagster as dg

    event = dg.DagsterInstance.get().get_latest_materialization_event(dg.AssetKey(asset))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()} if event else {}


def degradation_lines() -> list[str]:
    """What the run went without, and why (ml/label_sufficiency.py, ml/cvr_fallback.py)."""
    lines = [f"  {model} skipped: {reason}" for model, reason in
             (_latest_metadata("model_promotion").get("skipped") or {}).items()]
    schedule = _latest_metadata("daily_ad_schedule")
    for task in ("ctr", "cvr"):
        source = str(schedule.get(f"{task}_source") or "")
        if source.startswith("no "):
            lines.append(f"  p{task.upper()}: {source}")
    if schedule.get("campaigns_in_flight_without_ads"):
        lines.append(f"  campaigns in flight without ads (not scheduled): {schedule['campaigns_in_flight_without_ads']}")
    return lines or ["  nothing skipped: every model trained on its own labels"]


RANKER_REPORT_SHOWN = ["model", "task", "rows", "positives", "auc", "auc_se", "gauc", "logloss"]


def ranker_report_lines(settings: Settings, latest_day: dt.date) -> list[str]:
    """The rankers' holdout report (LightGBM beside its baselines), measurable on any labelled data."""
    path = settings.data_root / "reports" / latest_day.isoformat() / "rankers" / "ranker_report.csv"
    if not path.exists():
        return ["  no ranker report for this day (rankers skipped: see above)"]
    report = pd.read_csv(path)[RANKER_REPORT_SHOWN].round(4)
    return ["  " + line for line in report.to_string(index=False).splitlines()]


def off_policy_lines(conn: duckdb.DuckDBPyConnection) -> list[str]:
    try:
        logged, with_propensity = conn.execute(
            "select count(*), count(propensity) from raw.ad_events where event_type = 'impression'").fetchone()
    except duckdb.Error:
        return ["  no logged impressions"]
    try:
        factors = conn.execute("select model_name, model_version, factor from ml.ranker_level_corrections "
                           "order by as_of_date desc, model_name").fetchall()
    except duckdb.Error:
        factors = []
    if not with_propensity:
        return [f"  not measurable: none of {logged:,} logged impressions carries a logging propensity, so no "
                "off-policy (IPS) estimate; rankers score unscaled (level factor 1.0)"]
    seen, lines = set(), [f"  {with_propensity:,} of {logged:,} impressions carry propensities; "
                          "self-normalised IPS level factors of the champions:"]
    for name, version, factor in factors:
        if name not in seen:
            seen.add(name)
            lines.append(f"    {name} v{version}: {factor:.3f}")
    return lines


def policy_value_lines(conn: duckdb.DuckDBPyConnection, schedule_day: dt.date) -> list[str]:
    """The schedule valued off-policy on a logged day (policy_value_estimates), DR first."""
    try:
        rows = conn.execute("select policy, estimator, estimate, ci_low, ci_high, ess, true_value, holdout_day "
                            "from ml.policy_value_estimates where schedule_date = ? order by policy, estimator",
                            [schedule_day]).df()
    except duckdb.Error:
        return []
    if rows.empty:
        return []
    holdout_day = pd.Timestamp(rows["holdout_day"].iloc[0]).date()
    lines = [f"  had the schedule served {holdout_day}, advertiser value per impression "
             "(95% interval, user as the unit):"]
    schedules = rows[rows["policy"].isin(["champions", "challengers"])]
    for _, row in schedules[schedules["estimator"].isin(["dr", "dr-clip(50)", "snips", "dm"])].iterrows():
        truth = "" if row["true_value"] != row["true_value"] else f"   true {row['true_value']:.4f}"
        lines.append(f"    {row['policy']:<12} {row['estimator']:<12} {row['estimate']:.4f} "
                     f"[{row['ci_low']:.4f}, {row['ci_high']:.4f}]  ESS {row['ess']:,.0f}{truth}")
    for policy, label in (("logging policy", "the logging policy's own value (on-policy)"),
                          ("champions minus logging policy", "predicted lift over it (DR, paired)")):
        for _, row in rows[rows["policy"] == policy].iterrows():
            lines.append(f"    {label}: {row['estimate']:+.4f} [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]")
    return lines


def ab_test_lines(conn: duckdb.DuckDBPyConnection, schedule_day: dt.date) -> list[str]:
    """The simulated A/B test of the schedule (ab_test_readout) beside the off-policy prediction."""
    try:
        arms = conn.execute("select * from ml.ab_test_arms where schedule_date = ? order by arm", [schedule_day]).df()
        lift = conn.execute("select * from ml.ab_test_lift where schedule_date = ?", [schedule_day]).df()
    except duckdb.Error:
        return []
    if arms.empty:
        return []
    shown = arms[["arm", "users", "impressions", "clicks", "conversions", "advertiser_value", "value_per_opportunity",
                  "budget_spent_share", "pacing_error"]].round(4)
    lines = [f"A/B test of the schedule on {schedule_day} (simulated: user-level split, control = the logging "
             "policy, each campaign's budget split by traffic):"]
    lines += ["  " + line for line in shown.to_string(index=False).splitlines()]
    by_metric = lift.set_index("metric")

    def interval(row, prefix: str = "") -> str:
        return f"{row[prefix + 'lift']:+.4f} [{row[prefix + 'ci_low']:+.4f}, {row[prefix + 'ci_high']:+.4f}]"

    per_impression = by_metric.loc["value per impression"]
    lines.append(f"  lift in value per impression, realised: {interval(per_impression)}  "
                 f"({per_impression['relative_lift']:+.1%})")
    if "predicted_lift" in by_metric.columns and pd.notna(per_impression["predicted_lift"]):
        lines.append(f"  predicted before the test (DR on {pd.Timestamp(per_impression['predicted_on_day']).date()}): "
                     f"{interval(per_impression, 'predicted_')}")
    for metric in ("value per user", "clicks per user", "conversions per user"):
        row = by_metric.loc[metric]
        lines.append(f"  lift in {metric}: {interval(row)} ({row['relative_lift']:+.1%}, "
                     f"{'significant' if row['significant'] else 'not significant'} at 95%)")
    if (arms["budget_spent_share"] >= 0.95).all():
        lines.append("  both arms spent their budgets: total value is capped by them, so its lift mostly says which "
                     "campaigns ran out first")
    fallback = float(arms["treatment_fallback_share"].iloc[0])
    lines.append(f"  treatment opportunities the schedule could not fill (served by the logging policy): {fallback:.1%}")
    by_day = conn.execute("select a.schedule_date, a.arm, a.value_per_opportunity, l.lift, l.ci_low, l.ci_high "
                          "from ml.ab_test_arms a join ml.ab_test_lift l on l.schedule_date = a.schedule_date "
                          "and l.metric = 'value per opportunity' order by 1, 2").df()  # lift in the same unit
    if by_day["schedule_date"].nunique() > 1:  # the closed loop: one test a day
        table = by_day.pivot(index="schedule_date", columns="arm", values="value_per_opportunity").join(
            by_day.drop_duplicates("schedule_date").set_index("schedule_date")[["lift", "ci_low", "ci_high"]])
        table.index = [pd.Timestamp(day).date().isoformat() for day in table.index]
        lines.append("  value per opportunity by day and arm (each day's schedule learned from the logs before it):")
        lines += ["    " + line for line in table.round(4).to_string().splitlines()]
    return lines


def print_summary(settings: Settings, latest_day: dt.date, n_days: int, wall_seconds: float, peak_gib: float) -> None:
    schedule_day = latest_day + dt.timedelta(days=1)
    with connect(settings.warehouse_path, read_only=True) as conn:
        counts = table_counts(conn)
        off_policy = off_policy_lines(conn) + policy_value_lines(conn, schedule_day)
        ab_test = ab_test_lines(conn, schedule_day)
        try:
            schedule = conn.execute("select * from ml.daily_ad_schedule where schedule_date = ?", [schedule_day]).df()
        except duckdb.Error:
            schedule = None
    print("\n" + "=" * 72)
    print(f"adflow: {n_days} days ingested, graph materialized for {latest_day}, schedule for {schedule_day}")
    print("-" * 72)
    for table, count in counts:
        print(f"  {table:<28} {count:>12,}" if isinstance(count, int) else f"  {table:<28} {count:>12}")
    print("-" * 72 + "\nMLflow registry:")
    for line in registry_lines(settings):
        print(line)
    print("Why (model_promotion, ranker_value_gate):")
    for line in promotion_lines():
        print(line)
    if schedule is not None:
        print("-" * 72)
        print(f"Schedule {schedule_day}: {len(schedule):,} slots for {schedule['user_key'].nunique():,} users, "
              f"expected spend {schedule['expected_cost'].sum():.2f}, "
              f"expected value {schedule['expected_value'].sum():.2f}")
        print(f"Schedule hash: {schedule_hash(schedule)}  (equal hashes = identical schedules)")
    print("-" * 72 + "\nWhat this run went without:")
    for line in degradation_lines():
        print(line)
    print("-" * 72 + f"\nRanker holdout report ({latest_day}, LightGBM vs baselines):")
    for line in ranker_report_lines(settings, latest_day):
        print(line)
    print("-" * 72 + "\nOff-policy (logged propensities):")
    for line in off_policy:
        print(line)
    if ab_test:
        print("-" * 72)
        for line in ab_test:
            print(line)
    if settings.has_ground_truth:
        print("-" * 72 + "\nSchedule value under the simulator's ground truth:")
        for line in evaluation_lines(settings):
            print(line)
    else:
        print("-" * 72 + "\nNot measurable on this data (no ground truth): the schedule's value against the "
              "oracle,\n  its share of oracle value, and the oracle rows of the ranker report.")
    print("-" * 72)
    print(f"Warehouse:  {settings.warehouse_path}")
    print(f"Schedules:  {settings.data_root / 'schedules'}")
    print(f"MLflow:     {settings.mlflow_tracking_uri}  (make mlflow-ui)")
    print(f"Dagster:    {settings.dagster_home}  (make ui)")
    print("Serving:    make serve  (re-ranks this schedule from fresh events; see README)")
    print(f"Wall time:  {wall_seconds:,.0f} s   peak memory: {peak_gib:.2f} GiB")
    print("=" * 72)
