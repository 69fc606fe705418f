"""The creative report: how dynamic creative selection (ml/creatives) does on the log up to the partition day."""
import dagster as dg
import numpy as np

from ml.creatives.assign import CreativeInputs
from ml.creatives.evaluation import (expected_regret, read_creative_log, replay_selector, selector_ctr_off_policy,
                                     true_creative_ctr)
from ml.creatives.report import creative_report, plot_creative_report, regret_curve
from ml.simulator import GroundTruth
from orchestration.assets.common import partition_day
from orchestration.partitions import ONE_PARTITION_PER_RUN, daily_partitions
from orchestration.plots import png_markdown
from orchestration.resources import PlatformResource


def _interval(bounds: tuple[float, float]) -> str:
    return f"[{bounds[0]:+.4f}, {bounds[1]:+.4f}]"


@dg.asset(
    name="creative_report",
    partitions_def=daily_partitions,
    backfill_policy=ONE_PARTITION_PER_RUN,
    group_name="evaluation",
    kinds={"duckdb"},
    deps=["creative_stats", "user_segments", "daily_ad_schedule"],
    description="Dynamic creative selection on the log up to D: each day's impressions replayed against the "
    "Thompson selector built from the days before; its CTR off-policy (self-normalised IPS on the logged "
    "creative propensities, 95% bootstrap) against the logged CTR; on the simulator, learned vs true creative "
    "CTR and the selector's expected regret against always showing the best creative (with a plot). "
    "Nothing to report on a log without creatives.",
)
def creative_report_asset(context: dg.AssetExecutionContext, platform: PlatformResource):
    settings = platform.settings
    with platform.warehouse(read_only=True) as conn:
        inputs = CreativeInputs.read(conn)
        log = read_creative_log(conn)
    if inputs.catalog.empty or log.empty:
        return dg.MaterializeResult(metadata={"status": "no creatives in this log: nothing to select between"})
    replay = replay_selector(log, inputs.catalog)
    estimate = selector_ctr_off_policy(log, replay)
    metadata = {"creatives": len(inputs.catalog), "ads_with_creatives": int(inputs.catalog["ad_id"].nunique()),
                "impressions_replayed": int(replay["impression_id"].nunique())}
    if estimate is not None:
        metadata.update({
            "off_policy_impressions": estimate.impressions,
            "logged_ctr": round(estimate.logged_ctr, 5),
            "selector_ctr_snips": round(estimate.selector_ctr, 5),
            "selector_ctr_95": _interval(estimate.interval),
            "selector_minus_logged_95": _interval(estimate.lift_interval),
        })
    learned = inputs.selector()
    if not settings.has_ground_truth or replay.empty:
        metadata["learned_ctr"] = dg.MetadataValue.md(learned.posterior_means().head(40).round(5).to_markdown(index=False))
        return dg.MaterializeResult(metadata=metadata)

    truth = GroundTruth.load(settings.ground_truth_dir)
    true_ctr = truth.creative_ctr(replay["impression_id"], replay["creative_id"])
    per_impression = expected_regret(replay, true_ctr, log)
    curve = regret_curve(per_impression["selector_ctr"].to_numpy(), per_impression["best_ctr"].to_numpy())
    uniform = float((per_impression["best_ctr"] - per_impression["uniform_ctr"]).sum())
    report = creative_report(learned, true_creative_ctr(replay, true_ctr, log))
    ad_level = report[report["segment"] == "all"]
    halves = np.array_split((per_impression["best_ctr"] - per_impression["selector_ctr"]).to_numpy(), 2)
    plot = plot_creative_report(ad_level, curve, settings.data_root / "reports" / partition_day(context).isoformat()
                                / "creatives" / "creative_report.png")
    metadata.update({
        "selector_regret_clicks": round(float(curve["cumulative_regret"].iloc[-1]), 2),
        "uniform_regret_clicks": round(uniform, 2),
        "regret_share_of_uniform": round(float(curve["cumulative_regret"].iloc[-1]) / max(uniform, 1e-12), 3),
        "regret_per_impression_first_half": round(float(halves[0].mean()), 6),
        "regret_per_impression_second_half": round(float(halves[1].mean()), 6),
        "learned_best_is_true_best": round(float(ad_level.loc[ad_level["is_best"], "is_learned_best"].mean()), 3),
        "learned_vs_true_mae": round(float((ad_level["learned_ctr"] - ad_level["true_ctr"]).abs().mean()), 5),
        "report": dg.MetadataValue.md(ad_level.head(40).round(5).to_markdown(index=False)),
        "plot": png_markdown({"Creatives: learned vs true CTR, regret": plot}),
    })
    context.log.info(f"creative selector regret {metadata['selector_regret_clicks']} clicks vs uniform "
                     f"{metadata['uniform_regret_clicks']} on {metadata['impressions_replayed']} impressions")
    return dg.MaterializeResult(metadata=metadata)
