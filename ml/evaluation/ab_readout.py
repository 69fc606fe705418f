"""The readout of an A/B test with a user-level split: per-arm totals and the lift, with 95% intervals
that treat the user as the unit (a user's impressions are not independent of each other).

Inputs are plain frames, whoever ran the test:
- impressions: arm, user_id, campaign_id, clicks, conversions, value (advertiser value = spend);
- users: user_id, arm, opportunities: every user of the test day, impressions or not (a user the
  arm served nothing still counts, with zeros, or the per-user means would be biased upwards);
- campaigns: campaign_id, arm, budget, spend (the arm's share of each daily budget).

Lift per user is the difference of two independent means (Welch's standard error); relative lift
uses the delta method. Value per opportunity (an impression slot, filled or not) and per impression
(a filled one) are ratios of sums per arm, with the cluster-robust standard error of
ml.evaluation.ope; value per impression is the unit off-policy estimates speak in (per logged
impression). When both arms spend their budgets, total value is capped by the budgets: the lift in
value then mostly says which campaigns ran out first, and clicks and conversions say more.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from ml.evaluation.ope.intervals import ratio_interval

ARMS = ("control", "treatment")
PER_USER_METRICS = ("value", "clicks", "conversions", "impressions")


def per_user_totals(impressions: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    """One row per user of the test (zeros where the arm showed them nothing)."""
    if users["user_id"].duplicated().any():
        raise ValueError("users lists a user twice: a user-level split puts each user in one arm")
    unknown = set(impressions["arm"]) - set(ARMS) | set(users["arm"]) - set(ARMS)
    if unknown:
        raise ValueError(f"unknown arms {sorted(unknown)}; expected {ARMS}")
    sums = impressions.assign(impressions=1).groupby("user_id", sort=True)[
        ["value", "clicks", "conversions", "impressions"]].sum()
    outside = sums.index.difference(users["user_id"])
    if len(outside):
        raise ValueError(f"{len(outside)} users have impressions but are not in the test's users, e.g. "
                         f"{outside[:5].tolist()}")
    return users.set_index("user_id").join(sums).fillna(0.0).reset_index()


def arm_table(impressions: pd.DataFrame, users: pd.DataFrame, campaigns: pd.DataFrame) -> pd.DataFrame:
    """Per arm: users, opportunities, impressions, clicks, conversions, spend, advertiser value, budget,
    the share of it spent, and the budget pacing error (budget-weighted mean |spend / budget - 1| over
    the arm's campaigns in flight: 0 when every campaign spent exactly its share)."""
    totals = per_user_totals(impressions, users)
    rows = []
    for arm in ARMS:
        mine = totals[totals["arm"] == arm]
        budgets = campaigns[(campaigns["arm"] == arm) & (campaigns["budget"] > 0)]
        budget = float(budgets["budget"].sum())
        spend = float(campaigns.loc[campaigns["arm"] == arm, "spend"].sum())
        deviation = (budgets["spend"] / budgets["budget"] - 1.0).abs()
        rows.append({
            "arm": arm, "users": len(mine), "opportunities": int(mine["opportunities"].sum()),
            "impressions": int(mine["impressions"].sum()), "clicks": int(mine["clicks"].sum()),
            "conversions": int(mine["conversions"].sum()), "spend": spend,
            "advertiser_value": float(mine["value"].sum()), "budget": budget,
            "budget_spent_share": spend / budget if budget > 0 else float("nan"),
            "pacing_error": float((deviation * budgets["budget"]).sum() / budget) if budget > 0 else float("nan"),
            "value_per_user": float(mine["value"].mean()) if len(mine) else float("nan"),
            "value_per_opportunity": float(mine["value"].sum() / max(mine["opportunities"].sum(), 1)),
        })
    return pd.DataFrame(rows)


def _mean_and_se(values: np.ndarray) -> tuple[float, float]:
    n = len(values)
    if n < 2:
        return (float(values.mean()) if n else float("nan")), float("nan")
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(n))


def lift_table(impressions: pd.DataFrame, users: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Treatment minus control, per user for each metric and per opportunity for value: absolute lift
    and relative lift (treatment / control - 1), each with its interval."""
    z = float(norm.ppf(0.5 + level / 2))
    totals = per_user_totals(impressions, users)
    rows = []
    for metric in PER_USER_METRICS:
        (mean_c, se_c), (mean_t, se_t) = (_mean_and_se(totals.loc[totals["arm"] == arm, metric].to_numpy(float))
                                          for arm in ARMS)
        rows.append(_lift_row(f"{metric} per user", mean_c, se_c, mean_t, se_t, z))
    for unit, denominator in (("opportunity", "opportunities"), ("impression", "impressions")):
        ratios = []
        for arm in ARMS:
            mine = totals[totals["arm"] == arm]
            interval = ratio_interval(mine["value"].to_numpy(float), mine[denominator].to_numpy(float),
                                      np.arange(len(mine)), len(mine), level)
            ratios += [interval.estimate, interval.standard_error]
        rows.append(_lift_row(f"value per {unit}", *ratios, z))
    return pd.DataFrame(rows)


def _lift_row(metric: str, mean_c: float, se_c: float, mean_t: float, se_t: float, z: float) -> dict:
    lift = mean_t - mean_c
    se = float(np.hypot(se_c, se_t))
    ratio = mean_t / mean_c if mean_c else float("nan")
    # Delta method for a ratio of independent means.
    se_ratio = abs(ratio) * float(np.hypot(se_t / mean_t, se_c / mean_c)) if mean_c and mean_t else float("nan")
    return {"metric": metric, "control": mean_c, "treatment": mean_t, "lift": lift, "ci_low": lift - z * se,
            "ci_high": lift + z * se, "relative_lift": ratio - 1.0, "relative_ci_low": ratio - 1.0 - z * se_ratio,
            "relative_ci_high": ratio - 1.0 + z * se_ratio,
            "significant": bool(lift - z * se > 0 or lift + z * se < 0)}
