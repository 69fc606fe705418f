"""Cold start on the simulator: new ads ranked with and without their title's terms.

New ads keep launching during the simulated days (ml/simulator: `late_ad_share`), with no history,
and their titles carry words that go with their hidden quality. Two measurements per data root
(a finished demo: warehouse, schedule and simulator ground truth):

1. **AUC on ads younger than 2 days.** For each of the last `--test-days` days, the CTR recipe is
   fitted on the days before it (early stopping and calibration on the day before) twice, with and
   without the title's terms, and scores the day's impressions; the rows of every test day are
   pooled and the difference carries DeLong's paired 95% interval. Both fits leave the encoder's
   features out: the encoder's stored scores of earlier days would be in-sample.
2. **Schedule value.** The schedule day's candidates (as the daily run scored them) are re-scored by
   the two CTR rankers fitted as the daily run fits its challenger (same days, encoder features
   included), keeping the champion's pCVR for both; each is allocated by the product's allocator
   with the same settings and valued under the simulator's true probabilities: the expected value
   of the impressions planned for ads younger than 2 days, and of all, with a paired bootstrap 95%
   interval over users (each user's value with one ranker minus with the other), and the total
   within campaign budgets.

Several roots (`--data-root` more than once, e.g. demos of different seeds) pool their rows and users.

    .venv/bin/python benchmarks/cold_start.py --data-root /tmp/demo8 [--data-root /tmp/demo8b] [--test-days 5]

Last line: `cold start: new-ad AUC <a> with titles vs <b> without (+<d> [<lo>, <hi>]); new-ad schedule value <x> vs <y> (+<v> [<lo>, <hi>])`
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ml.evaluation.cold_start_value import (VARIANTS, schedule_values_with_and_without_titles,  # noqa: E402
                                            value_comparison)
from ml.evaluation.policy import user_ids_by_key  # noqa: E402
from ml.rankers.cold_start import cold_start_comparison  # noqa: E402
from ml.rankers.splits import split_by_day  # noqa: E402
from ml.rankers.training import fit_ranker  # noqa: E402
from ml.settings import Settings  # noqa: E402
from ml.simulator import GroundTruth  # noqa: E402
from ml.warehouse import connect  # noqa: E402
from orchestration.assets.delivery import ScheduleConfig  # noqa: E402
from orchestration.assets.evaluation import read_cold_start_inputs  # noqa: E402

def settings_for(root: Path) -> Settings:
    return Settings.from_env({**os.environ, "AD_DATA_ROOT": str(root)})


def rolling_auc_rows(ctr_set: pd.DataFrame, test_days: list[dt.date]) -> pd.DataFrame:
    """Each test day's impressions with both variants' predictions (fitted on the days before it)."""
    parts = []
    for day in test_days:
        split = split_by_day(ctr_set, day, day - dt.timedelta(days=1))
        predictions = {name: fit_ranker(split.train, split.valid, "ctr", use_encoder_features=False,
                                        use_content_features=content).predict(split.test)
                       for name, content in VARIANTS.items()}
        parts.append(split.test.assign(**{f"p_{name}": p for name, p in predictions.items()}))
        print(f"  AUC test day {day}: {len(split.test):,} impressions", flush=True)
    return pd.concat(parts, ignore_index=True)


def schedule_values(settings: Settings) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per user and variant: the true expected value of the planned impressions (all, new ads);
    and per variant the total within budgets (ml.evaluation.cold_start_value, as the daily run's
    `cold_start_value` asset computes it)."""
    with connect(settings.warehouse_path, read_only=True) as conn:
        schedule_date = conn.sql("select max(schedule_date) from ml.scored_candidates").fetchall()[0][0]
        inputs = read_cold_start_inputs(conn, schedule_date)
    if isinstance(inputs, str):
        raise SystemExit(f"{settings.data_root}: cannot re-make the schedule of {schedule_date}: {inputs}")
    truth = GroundTruth.load(settings.ground_truth_dir)
    per_user, capped, new_impressions = schedule_values_with_and_without_titles(
        *inputs, schedule_date, ScheduleConfig().allocation(), truth, user_ids_by_key(truth, settings.pseudonym_key))
    for name, impressions in new_impressions.items():
        print(f"  schedule {schedule_date} {name}: {impressions:,} impressions of new ads", flush=True)
    return per_user, capped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, action="append", required=True)
    parser.add_argument("--test-days", type=int, default=5, help="rolling test days for the AUC")
    args = parser.parse_args()

    auc_rows, users, capped = [], [], {name: 0.0 for name in VARIANTS}
    for root in args.data_root:
        settings = settings_for(root)
        print(f"{root}:", flush=True)
        with connect(settings.warehouse_path, read_only=True) as conn:
            ctr_set = conn.sql("select * from main.ctr_training_set order by impression_id").df()
        days = sorted({pd.Timestamp(day).date() for day in ctr_set["impression_date"].unique()})[-args.test_days:]
        auc_rows.append(rolling_auc_rows(ctr_set, days))
        per_user, root_capped = schedule_values(settings)
        users.append(per_user.set_axis([f"{root}:{key}" for key in per_user.index]))
        for name, value in root_capped.items():
            capped[name] += value

    pooled = pd.concat(auc_rows, ignore_index=True)
    auc = cold_start_comparison(pooled, pooled["p_with titles"], pooled["p_without titles"])
    print(f"\nCTR AUC, {len(args.data_root)} root(s), last {args.test_days} days each, pooled "
          f"(paired DeLong 95% interval of the gain):")
    print(auc.to_markdown(index=False, floatfmt=".4f"))

    users = pd.concat(users).fillna(0.0)
    value = value_comparison(users, capped)
    impressions = {name: int(users[f"{name}: new-ad impressions"].sum()) for name in VARIANTS}
    print(f"\nSchedule value under the ground truth ({len(users):,} users; impressions of new ads planned: "
          f"{impressions['with titles']:,} with titles, {impressions['without titles']:,} without; paired "
          f"bootstrap over users):")
    print(value.to_markdown(index=False, floatfmt=".2f"))
    young, new_value = auc.iloc[0], value.iloc[0]
    print(f"cold start: new-ad AUC {young['auc_with_content']:.4f} with titles vs {young['auc_without_content']:.4f} "
          f"without ({young['auc_gain']:+.4f} [{young['gain_ci95_low']:+.4f}, {young['gain_ci95_high']:+.4f}]); "
          f"new-ad schedule value {new_value['value with titles']:.1f} vs {new_value['value without titles']:.1f} "
          f"({new_value['gain']:+.1f} [{new_value['gain_ci95_low']:+.1f}, {new_value['gain_ci95_high']:+.1f}])")


if __name__ == "__main__":
    main()
