"""What the interest encoder is worth in the product, on the simulator.

The encoder's features barely move the CTR ranker's AUC, yet it is the retrieval: every candidate
the rankers score comes from its embeddings. Per data root (a finished demo: warehouse, schedule,
simulator ground truth), for the schedule day:

1. **Retrieval recall.** For every scheduled user, the oracle's 10 best eligible ads (true expected
   value at the user's most active hour, slot 1, as candidates are scored) and the share of them
   each retrieval finds: the encoder's (the `interest` candidates the daily run retrieved) and the
   product's non-learned one given as many ads per user, category popularity
   (ml.allocation.category_candidates: the ads of the categories the user viewed most in the 7 days
   before, most clicked ads first). Paired bootstrap over users.
2. **Ranker features.** The schedule day's candidates re-scored by the CTR recipe fitted as the daily
   run fits it, with and without the encoder's two features (same days; the champion's pCVR for
   both), allocated with the same settings and valued under the truth; paired bootstrap over users.
   The candidates are the encoder's in both: what it adds through retrieval is measured by (1) only.
3. **Cost.** The encoder's training time as the daily run logged it.

    .venv/bin/python benchmarks/encoder_worth.py --data-root /tmp/demo8 [--data-root /tmp/demo8b]

Last line: `encoder worth: recall@10 <a> vs <b> (category popularity); schedule value +<v> [<lo>, <hi>] with its features; training <s> s`
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ml.allocation.allocator import allocate  # noqa: E402
from ml.allocation.category_candidates import category_candidates  # noqa: E402
from ml.allocation.value import expected_value  # noqa: E402
from ml.evaluation.paired_value import paired_bootstrap_total, value_by_user  # noqa: E402
from ml.evaluation.policy import true_probabilities_for, user_ids_by_key  # noqa: E402
from ml.rankers.splits import split_by_day  # noqa: E402
from ml.rankers.training import fit_ranker  # noqa: E402
from ml.settings import Settings  # noqa: E402
from ml.simulator import GroundTruth  # noqa: E402
from ml.warehouse import connect  # noqa: E402
from orchestration.assets.delivery import CATEGORY_VIEWS, ScheduleConfig, campaigns_of, eligible_ads  # noqa: E402
from orchestration.assets.holdout import model_label_plan  # noqa: E402
from orchestration.assets.rankers import load_training_sets  # noqa: E402

ORACLE_TOP = 10
WINDOW_DAYS = 7


def oracle_best_ads(truth: GroundTruth, user_ids: pd.Series, users: np.ndarray, ads: pd.DataFrame,
                    user_hour: pd.Series, day: dt.date) -> dict[str, set]:
    """Per user, the ORACLE_TOP eligible ads of the highest true expected value."""
    best = {}
    for start in range(0, len(users), 500):  # users x ads pairs in blocks
        block = users[start:start + 500]
        pairs = pd.DataFrame({"user_key": np.repeat(block, len(ads)), "ad_id": np.tile(ads["ad_id"].to_numpy(), len(block))})
        hours = user_hour.reindex(pairs["user_key"]).fillna(20).to_numpy()
        pctr, pcvr = truth.true_probabilities(user_ids.reindex(pairs["user_key"]).to_numpy(), pairs["ad_id"].to_numpy(),
                                              np.repeat(np.datetime64(day), len(pairs)), hours, np.ones(len(pairs), int))
        value = expected_value(np.tile(ads["bid"].to_numpy(), len(block)), np.tile(ads["bid_type"].to_numpy(), len(block)),
                               pctr, pcvr).reshape(len(block), len(ads))
        top = np.argsort(-value, axis=1, kind="stable")[:, :ORACLE_TOP]
        for row, user in enumerate(block):
            best[user] = set(ads["ad_id"].to_numpy()[top[row]].tolist())
    return best


def measure(root: Path) -> dict:
    settings = Settings.from_env({**os.environ, "AD_DATA_ROOT": str(root)})
    with connect(settings.warehouse_path, read_only=True) as conn:
        schedule_date = conn.sql("select max(schedule_date) from ml.scored_candidates").fetchall()[0][0]
        day = pd.Timestamp(schedule_date).date()
        scored = conn.execute("select * from ml.scored_candidates where schedule_date = ?", [day]).df()
        retrieved = conn.execute("select user_key, ad_id from ml.ad_candidates where schedule_date = ? "
                                 "and source = 'interest'", [day]).df()
        eligible = eligible_ads(conn, day)
        ads, campaigns = eligible.drop_duplicates("ad_id"), campaigns_of(eligible)
        viewed = conn.execute(CATEGORY_VIEWS, [day, day - dt.timedelta(days=WINDOW_DAYS)]).df()
        hours = conn.sql("select user_key, hour from main.user_hourly_activity where activity_rank = 1").df()
        user_hours = conn.sql("select user_key, hour, share from main.user_hourly_activity").df()
        hourly_traffic = conn.sql("select hour, share from main.hourly_traffic").df()
        plan = model_label_plan(conn)
        ctr_set, _ = load_training_sets(conn, day - dt.timedelta(days=1))
    truth = GroundTruth.load(settings.ground_truth_dir)
    user_ids = user_ids_by_key(truth, settings.pseudonym_key)
    users = np.sort(retrieved["user_key"].unique())
    best = oracle_best_ads(truth, user_ids, users, ads, hours.drop_duplicates("user_key").set_index("user_key")["hour"], day)
    encoder_sets = retrieved.groupby("user_key")["ad_id"].agg(set)
    per_user = int(encoder_sets.map(len).max())  # the encoder's count (every user gets the same N)
    popular = category_candidates(users, ads, viewed, per_user, retrieved.iloc[:0])
    popular_sets = popular.groupby("user_key")["ad_id"].agg(set)
    recall = pd.DataFrame({"encoder": [len(best[u] & encoder_sets.get(u, set())) / ORACLE_TOP for u in users],
                           "category popularity": [len(best[u] & popular_sets.get(u, set())) / ORACLE_TOP for u in users]},
                          index=[f"{root}:{u}" for u in users])
    print(f"  {root}: {len(users):,} users, {len(ads):,} eligible ads, {len(retrieved) / len(users):.0f} retrieved "
          f"per user", flush=True)

    split = split_by_day(ctr_set, plan.click.days.test_date, plan.click.days.validation_date)
    values = []
    for name, use_encoder in (("with encoder features", True), ("without", False)):
        ranker = fit_ranker(split.train, split.valid, "ctr", use_encoder_features=use_encoder)
        schedule = allocate(scored.assign(pctr=ranker.predict(scored)), campaigns, user_hours, day,
                            ScheduleConfig().allocation(), hourly_traffic=hourly_traffic).schedule
        true_pctr, true_pcvr = true_probabilities_for(truth, schedule, user_ids, day)
        values.append(value_by_user(schedule, true_pctr, true_pcvr)["value"].rename(name))
    value = pd.concat(values, axis=1).fillna(0.0)
    value.index = [f"{root}:{u}" for u in value.index]
    encoder_meta = json.loads(sorted((settings.data_root / "models" / "interest_encoder").glob("*/encoder.json"))[-1]
                              .read_text())["metrics"]
    return {"recall": recall, "value": value, "train_seconds": encoder_meta["train_seconds"],
            "epochs": encoder_meta["epochs_run"], "val_auc": encoder_meta["val_auc"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, action="append", required=True)
    args = parser.parse_args()
    results = [measure(root) for root in args.data_root]
    recall = pd.concat([r["recall"] for r in results])
    value = pd.concat([r["value"] for r in results])
    gain, low, high = paired_bootstrap_total(recall["encoder"], recall["category popularity"])
    n = len(recall)
    print(f"\nRetrieval: share of the oracle's {ORACLE_TOP} best ads per user found ({n:,} users, paired bootstrap):")
    print(pd.DataFrame([{"retrieval": "encoder embeddings (the product)", f"recall@{ORACLE_TOP}": recall["encoder"].mean()},
                        {"retrieval": "category popularity", f"recall@{ORACLE_TOP}": recall["category popularity"].mean()},
                        {"retrieval": "difference [95% interval]",
                         f"recall@{ORACLE_TOP}": f"{gain / n:+.4f} [{low / n:+.4f}, {high / n:+.4f}]"}]).to_markdown(
        index=False, floatfmt=".4f"))
    v_gain, v_low, v_high = paired_bootstrap_total(value["with encoder features"], value["without"])
    print(f"\nSchedule value under the ground truth, CTR ranker with and without the encoder's features "
          f"({len(value):,} users, paired bootstrap):")
    print(pd.DataFrame([{"ranker": "with encoder features", "value": value["with encoder features"].sum()},
                        {"ranker": "without", "value": value["without"].sum()},
                        {"ranker": "difference [95% interval]", "value": f"{v_gain:+.2f} [{v_low:+.2f}, {v_high:+.2f}]"}])
          .to_markdown(index=False, floatfmt=".2f"))
    seconds = np.mean([r["train_seconds"] for r in results])
    print(f"\nEncoder training per daily run: {seconds:.0f} s on this machine's CPU (epochs "
          f"{[r['epochs'] for r in results]}, validation AUC alone {[round(r['val_auc'], 3) for r in results]})")
    print(f"encoder worth: recall@{ORACLE_TOP} {recall['encoder'].mean():.3f} vs {recall['category popularity'].mean():.3f} "
          f"(category popularity); schedule value {v_gain:+.1f} [{v_low:+.1f}, {v_high:+.1f}] with its features; "
          f"training {seconds:.0f} s")


if __name__ == "__main__":
    main()
