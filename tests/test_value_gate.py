"""Promotion by value (ml.evaluation.value_gate): AUC guards, the off-policy value of the schedule judges."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ml.evaluation.metrics import auc, paired_auc_difference
from ml.evaluation.schedule_ope import paired_difference, schedule_rounds
from ml.evaluation.value_gate import auc_guard, beats_trivial_scorers, value_verdict

DAY = pd.Timestamp("2026-11-10")
# Five CPC ads (bid 1) and one CPA ad (bid 20, CTR 0.05, CVR 0.3: worth 0.30 per impression, twice
# the best CPC ad's 0.15).
CTR = np.array([0.02, 0.05, 0.08, 0.11, 0.15, 0.05])
CVR = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.3])
BID = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 20.0])
BID_TYPE = np.array(["cpc"] * 5 + ["cpa"])


def logged_uniform_day(n_users: int = 1500, per_user: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_users * per_user
    ad = rng.integers(0, len(CTR), n)
    click = rng.random(n) < CTR[ad]
    return pd.DataFrame({
        "impression_id": np.arange(n), "user_key": np.repeat([f"u{i}" for i in range(n_users)], per_user),
        "ad_id": ad, "campaign_id": ad, "impression_ts": DAY + pd.to_timedelta(rng.integers(0, 86_400, n), "s"),
        "hour": 12, "slot": 1, "bid": BID[ad], "bid_type": BID_TYPE[ad], "label_click": click.astype(int),
        "label_conversion": (click & (rng.random(n) < CVR[ad])).astype(int), "propensity": 1 / len(CTR),
    })


def model_scores(users, pctr_by_ad, pcvr_by_ad) -> pd.DataFrame:
    pairs = pd.MultiIndex.from_product([users, np.arange(len(CTR))], names=["user_key", "ad_id"]).to_frame(index=False)
    return pairs.assign(campaign_id=pairs["ad_id"], bid=BID[pairs["ad_id"]], bid_type=BID_TYPE[pairs["ad_id"]],
                        pctr=np.asarray(pctr_by_ad)[pairs["ad_id"]], pcvr=np.asarray(pcvr_by_ad)[pairs["ad_id"]])


def best_ad_schedule(scored: pd.DataFrame) -> pd.DataFrame:
    value = scored["bid"] * scored["pctr"] * np.where(scored["bid_type"] == "cpa", scored["pcvr"], 1.0)
    return scored.assign(value=value).sort_values(["user_key", "value"], ascending=[True, False]).groupby(
        "user_key").head(1)


def test_a_higher_auc_ranker_with_a_lower_value_schedule_is_refused():
    logged = logged_uniform_day()
    users = logged["user_key"].unique()
    campaigns = pd.Series(np.arange(len(CTR)), index=np.arange(len(CTR)))
    # Challenger: the exact CTR of every ad (the best click ordering) but blind to conversions.
    challenger = model_scores(users, CTR, np.full(len(CTR), 0.01))
    # Champion: two CPC ads' CTRs swapped (a worse click ordering) but the right pCVR.
    champion = model_scores(users, CTR[[0, 1, 2, 4, 3, 5]], CVR)
    labels = logged["label_click"].to_numpy()
    challenger_pctr, champion_pctr = CTR[logged["ad_id"]], CTR[[0, 1, 2, 4, 3, 5]][logged["ad_id"]]
    challenger_auc, champion_auc = auc(labels, challenger_pctr), auc(labels, champion_pctr)
    difference, se = paired_auc_difference(labels, challenger_pctr, champion_pctr)
    assert challenger_auc > champion_auc and difference > 0
    assert auc_guard(difference, se).passed

    rounds = {name: schedule_rounds(logged, best_ad_schedule(scores), scores, campaigns)
              for name, scores in (("challenger", challenger), ("champion", champion))}
    value_difference = paired_difference(rounds["challenger"], rounds["champion"])
    verdict = value_verdict(value_difference)
    assert not verdict.passed, verdict.reason
    assert value_difference["ci_high"] < 0  # the champion's schedule (the CPA ad) is worth more
    assert "not worth more" in verdict.reason
    # And the other way round the better schedule wins on value, whatever its AUC.
    assert value_verdict(paired_difference(rounds["champion"], rounds["challenger"])).passed


def test_auc_guard_refuses_a_challenger_worse_beyond_noise_only():
    assert not auc_guard(-0.02, 0.005).passed
    assert auc_guard(-0.005, 0.005).passed  # within noise: value decides


def test_first_version_must_beat_constant_and_popularity_beyond_noise():
    # The seed-7 demo's first CVR ranker: AUC 0.474 on its holdout. Refused.
    refused = beats_trivial_scorers(0.474, 0.03, -0.13, 0.035)
    assert not refused.passed and "constant" in refused.reason
    assert not beats_trivial_scorers(0.60, 0.02, 0.01, 0.02).passed  # not above popularity beyond noise
    assert beats_trivial_scorers(0.68, 0.005, 0.10, 0.01).passed
