"""Off-policy value of a daily schedule on a logged day: "had we served this schedule that day, what
would it have earned, and how sure are we?"

Target policy. A schedule gives each user up to K ads; on each logged impression opportunity of a
user (a time and a slot the logging policy filled), the target shows one of the user's scheduled ads,
each with the share of the user's scheduled rows it holds: pi(a | user) = rows(user, a) / rows(user).
Users the schedule does not serve get nothing there (value 0). Slots are treated as independent
rounds with their own logged propensity (per-slot independence, see ml.evaluation.ope), and the
target does not depend on the hour or slot, as the schedule's scores do not.

Reward. Advertiser value of the logged impression: the bid on a click (CPC) or on a conversion (CPA),
so labels must be final (conversions: the attribution window has closed).

Reward model (DM, DR). The expected value the rankers gave the pair (bid x pCTR [x pCVR]) where the
pair was scored, else the ad's mean over the users it was scored for, else the mean over all pairs.

Support. The logger can only show ads of campaigns with budget left; an ad is counted as on the
logger's support at an opportunity when its campaign served an impression at or after that moment
of the day (an approximation: logs do not record the eligible set).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ml.allocation.value import expected_value

LOGGED_COLUMNS = ["impression_id", "user_key", "ad_id", "campaign_id", "impression_ts", "hour", "slot", "bid",
                  "bid_type", "label_click", "label_conversion", "propensity"]


def logged_value(logged: pd.DataFrame) -> np.ndarray:
    """Advertiser value realised by each logged impression: bid x click (CPC) or bid x conversion (CPA)."""
    cpa = logged["bid_type"].astype(str).str.lower().eq("cpa").to_numpy()
    outcome = np.where(cpa, logged["label_conversion"].to_numpy(float), logged["label_click"].to_numpy(float))
    return logged["bid"].to_numpy(float) * outcome


def target_shares(schedule: pd.DataFrame) -> pd.DataFrame:
    """user_key, ad_id, target_share: each ad's share of its user's scheduled rows."""
    counts = schedule.groupby(["user_key", "ad_id"], sort=True).size().rename("rows").reset_index()
    counts["target_share"] = counts["rows"] / counts.groupby("user_key")["rows"].transform("sum")
    return counts[["user_key", "ad_id", "target_share"]]


def pair_value_model(scored_candidates: pd.DataFrame) -> tuple[pd.Series, pd.Series, float]:
    """(value by (user_key, ad_id), value by ad_id, overall mean) from the rankers' scores of the pairs."""
    value = expected_value(scored_candidates["bid"], scored_candidates["bid_type"], scored_candidates["pctr"],
                           scored_candidates["pcvr"])
    frame = scored_candidates[["user_key", "ad_id"]].assign(q=value)
    by_pair = frame.groupby(["user_key", "ad_id"], sort=True)["q"].mean()
    by_ad = frame.groupby("ad_id", sort=True)["q"].mean()
    return by_pair, by_ad, float(value.mean()) if len(value) else 0.0


def _lookup(by_pair: pd.Series, by_ad: pd.Series, overall: float, user_keys, ad_ids) -> np.ndarray:
    pairs = pd.MultiIndex.from_arrays([np.asarray(user_keys), np.asarray(ad_ids)])
    q = by_pair.reindex(pairs).to_numpy(float, copy=True)
    missing = np.isnan(q)
    q[missing] = by_ad.reindex(np.asarray(ad_ids)[missing]).fillna(overall).to_numpy(float)
    return q


def _campaign_last_impression(logged: pd.DataFrame) -> pd.Series:
    return logged.groupby("campaign_id")["impression_ts"].max()


def schedule_rounds(logged: pd.DataFrame, schedule: pd.DataFrame, scored_candidates: pd.DataFrame,
                    ad_campaigns: pd.Series) -> pd.DataFrame:
    """One row per logged impression in ml.evaluation.ope.estimate_frame's column contract.

    `logged`: LOGGED_COLUMNS of one day; `schedule`: the target schedule (user_key, ad_id);
    `scored_candidates`: pairs with bid, bid_type, pctr, pcvr (the reward model);
    `ad_campaigns`: campaign_id by ad_id for the target's ads (support check).
    """
    missing = [c for c in LOGGED_COLUMNS if c not in logged.columns]
    if missing:
        raise ValueError(f"logged impressions are missing columns {missing}")
    logged = logged.sort_values("impression_id", ignore_index=True)
    if logged["propensity"].isna().any():
        raise ValueError("logged impressions without a propensity: off-policy estimates need the logging "
                         "policy's probability of every logged ad")
    by_pair, by_ad, overall = pair_value_model(scored_candidates)
    shares = target_shares(schedule)

    # Expand each opportunity to the user's scheduled ads: sum_a pi(a|u) q(u, a) and the support mass.
    expanded = logged[["impression_id", "user_key", "impression_ts"]].merge(shares, on="user_key", how="inner")
    expanded["q"] = _lookup(by_pair, by_ad, overall, expanded["user_key"], expanded["ad_id"])
    last_seen = _campaign_last_impression(logged)
    campaign = ad_campaigns.reindex(expanded["ad_id"].to_numpy()).to_numpy()
    served_until = last_seen.reindex(campaign).to_numpy()
    expanded["on_support"] = pd.notna(served_until) & (served_until >= expanded["impression_ts"].to_numpy())
    per_round = expanded.assign(weighted_q=expanded["target_share"] * expanded["q"],
                                mass_on_support=expanded["target_share"] * expanded["on_support"]).groupby(
        "impression_id", sort=True)[["weighted_q", "mass_on_support", "target_share"]].sum()

    target_of_logged = logged[["user_key", "ad_id"]].merge(shares, on=["user_key", "ad_id"], how="left")
    served = per_round.reindex(logged["impression_id"]).fillna(0.0)
    total_mass = served["target_share"].to_numpy()
    return pd.DataFrame({
        "impression_id": logged["impression_id"].to_numpy(),
        "user_key": logged["user_key"].to_numpy(),
        "position": logged["slot"].to_numpy(np.int64) - 1,
        "reward": logged_value(logged),
        "propensity": logged["propensity"].to_numpy(float),
        "target_probability": target_of_logged["target_share"].fillna(0.0).to_numpy(float),
        "q_logged": _lookup(by_pair, by_ad, overall, logged["user_key"], logged["ad_id"]),
        "q_target_expected": served["weighted_q"].to_numpy(),
        # Users the target does not serve put no mass anywhere: count them as fully supported.
        "target_mass_on_support": np.where(total_mass > 0, served["mass_on_support"].to_numpy()
                                           / np.where(total_mass > 0, total_mass, 1.0), 1.0),
    })


def true_value_per_impression(rounds: pd.DataFrame, logged: pd.DataFrame, schedule: pd.DataFrame,
                              true_probabilities) -> float:
    """The target's expected value per logged opportunity under the TRUE probabilities (simulator only).

    `true_probabilities(rows)` takes rows with user_key, ad_id, hour, slot and returns (pctr, pcvr).
    """
    opportunities = logged.sort_values("impression_id", ignore_index=True)[["impression_id", "user_key", "hour",
                                                                            "slot"]]
    scheduled = schedule.drop_duplicates(["user_key", "ad_id"])[["user_key", "ad_id", "bid", "bid_type"]]
    expanded = opportunities.merge(target_shares(schedule), on="user_key").merge(scheduled, on=["user_key", "ad_id"])
    if expanded.empty:
        return 0.0
    pctr, pcvr = true_probabilities(expanded)
    value = expected_value(expanded["bid"], expanded["bid_type"], pctr, pcvr)
    return float((expanded["target_share"].to_numpy() * value).sum() / len(rounds))


def dr_terms(rounds: pd.DataFrame) -> np.ndarray:
    """Per-round doubly robust terms; their mean is the DR value of the target policy."""
    weight = rounds["target_probability"].to_numpy() / rounds["propensity"].to_numpy()
    return rounds["q_target_expected"].to_numpy() + weight * (rounds["reward"].to_numpy() - rounds["q_logged"].to_numpy())


def paired_difference(rounds_a: pd.DataFrame, rounds_b: pd.DataFrame, level_z: float = 1.959964) -> dict:
    """Doubly robust value of target A minus target B on the same logged rounds, with a cluster-robust
    (per-user) interval: the difference of two DR estimates is the mean of per-round differences."""
    if not rounds_a["impression_id"].equals(rounds_b["impression_id"]):
        raise ValueError("paired comparison needs the same logged rounds in the same order")
    return clustered_mean(dr_terms(rounds_a) - dr_terms(rounds_b), rounds_a["user_key"].to_numpy(), level_z)


def lift_over_logging_policy(rounds: pd.DataFrame, level_z: float = 1.959964) -> dict:
    """DR value of the target minus the logging policy's own mean reward on the same rounds (the lift
    an A/B test against the logging policy would measure there), with a per-user interval."""
    return clustered_mean(dr_terms(rounds) - rounds["reward"].to_numpy(), rounds["user_key"].to_numpy(), level_z)


def clustered_mean(values: np.ndarray, users: np.ndarray, level_z: float = 1.959964) -> dict:
    """Mean of per-round values with a cluster-robust (CR1, user as the unit) normal interval."""
    n = len(values)
    estimate = float(values.mean()) if n else float("nan")
    per_user = pd.DataFrame({"user": users, "d": values, "one": 1.0}).groupby("user", sort=True)[["d", "one"]].sum()
    groups = len(per_user)
    if groups < 2:
        return {"difference": estimate, "ci_low": float("nan"), "ci_high": float("nan"), "standard_error": float("nan")}
    residual = per_user["d"].to_numpy() - estimate * per_user["one"].to_numpy()
    se = float(np.sqrt((residual**2).sum() * groups / (groups - 1)) / n)
    return {"difference": estimate, "ci_low": estimate - level_z * se, "ci_high": estimate + level_z * se,
            "standard_error": se}
