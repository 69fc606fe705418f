"""How far can a CTR model get on the simulator? LightGBM given the simulator's hidden truth.

The issue's target asks for a CTR AUC within 0.02 of the oracle (the true per-impression probability,
session intent included). This benchmark measures what the logs can support: the registered
recipe (LightGBM on the product's features), then the same LightGBM handed the simulator's hidden
per-user state that no log records exactly: the user's interest share in the ad's category (as of
the day before, and as of the impression's day), the user's affinity for the ad's brand and the ad's
quality. Every row is judged on the same test day, so differences carry DeLong's paired standard
error. Needs the demo's warehouse and ground truth (`make demo`). Run:

    .venv/bin/python benchmarks/ctr_information_ceiling.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ml.evaluation.metrics import auc, paired_auc_difference  # noqa: E402
from ml.rankers.features import join_encoder_features, labels_for  # noqa: E402
from ml.rankers.splits import split_by_day  # noqa: E402
from ml.rankers.training import fit_ranker  # noqa: E402
from ml.settings import Settings  # noqa: E402
from ml.simulator import GroundTruth  # noqa: E402
from ml.simulator.world import ID_OFFSETS  # noqa: E402
from ml.training_days import choose_holdout_days  # noqa: E402
from ml.warehouse import connect  # noqa: E402

# Hidden state added to the product's features, row by row of the report.
VARIANTS: dict[str, list[str]] = {
    "product features (registered recipe)": [],
    "+ true category interest, day before": ["true_interest_day_before"],
    "+ true brand affinity": ["true_brand_affinity"],
    "+ true ad quality": ["true_ad_quality"],
    "+ all three, interest as of the day before": ["true_interest_day_before", "true_brand_affinity", "true_ad_quality"],
    "+ all three, interest as of the day itself": ["true_interest_same_day", "true_brand_affinity", "true_ad_quality"],
}


def load_impressions(settings: Settings) -> pd.DataFrame:
    with connect(settings.warehouse_path, read_only=True) as conn:
        impressions = conn.sql("select * from main.ctr_training_set order by impression_id").df()
        latest = conn.sql("select max(as_of_date) from ml.encoder_impression_scores").fetchall()[0][0]
        encoder = conn.execute("select * from ml.encoder_impression_scores where as_of_date = ?", [latest]).df()
    return join_encoder_features(impressions, encoder)


def add_hidden_state(impressions: pd.DataFrame, truth: GroundTruth) -> pd.DataFrame:
    world = truth.world
    logged = truth.impressions()[["impression_id", "user_id", "true_pctr"]]
    frame = impressions.merge(logged, on="impression_id", how="inner")
    users = frame["user_id"].to_numpy() - ID_OFFSETS["user"]
    ads = frame["ad_id"].to_numpy() - ID_OFFSETS["ad"]
    day = truth.day_index(frame["impression_date"])
    category = world.ad_category[ads]
    return frame.assign(
        true_interest_day_before=world.interest_feature(truth.category_interest(users, day - 1, category)),
        true_interest_same_day=world.interest_feature(truth.category_interest(users, day, category)),
        true_brand_affinity=world.brand_affinity(users, world.ad_brand[ads]),
        true_ad_quality=world.ad_quality[ads],
    )


def fit_and_score(train, valid, test, extra: list[str]) -> np.ndarray:
    """The registered CTR recipe (`fit_ranker`: features, parameters, early stopping, calibration)
    with `extra` numeric columns after its own."""
    return fit_ranker(train, valid, "ctr", extra_numeric=extra).predict(test)


def main() -> None:
    settings = Settings.from_env()
    truth = GroundTruth.load(settings.ground_truth_dir)
    frame = add_hidden_state(load_impressions(settings), truth)
    days = choose_holdout_days(pd.to_datetime(frame["impression_date"]).dt.date.unique())
    train, valid, test = split_by_day(frame, days.test_date, days.validation_date)
    labels = labels_for(test, "ctr")
    oracle_auc = auc(labels, test["true_pctr"])
    print(f"test day {days.test_date}: {len(test):,} impressions, {int(labels.sum())} clicks; "
          f"train {len(train):,} impressions on {len(days.train_dates)} days; oracle AUC {oracle_auc:.4f}")

    scores = {name: fit_and_score(train, valid, test, extra) for name, extra in VARIANTS.items()}
    reference = scores["product features (registered recipe)"]
    lines = ["| features | test AUC | minus the product's (paired SE) | oracle AUC minus this |", "|---|---|---|---|"]
    for name, predicted in scores.items():
        gain, gain_se = paired_auc_difference(labels, predicted, reference)
        lines.append(f"| {name} | {auc(labels, predicted):.4f} | {gain:+.4f} ({gain_se:.4f}) | "
                     f"{oracle_auc - auc(labels, predicted):.4f} |")
    lines.append(f"| oracle (true pCTR, session intent known) | {oracle_auc:.4f} | — | 0 |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
