"""Who gets which ads: exposure, clicks, conversions and ad value per user group, and delivery per
advertiser against budget, for the planned schedule and for the outcomes the logs realised.

A group's gap is the ratio of its mean per user to the mean over everyone in the audience
(1.0: parity; 0.8: the group gets 20% less per user), with a 95% interval from a Poisson bootstrap
over users (each user's weight ~ Poisson(1), as in Hanley & MacGibbon 2006; vectorised). For a
restricted campaign the same ratio on its impressions is its delivery share by group against the
group's share of the eligible population.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

GROUP_COLUMNS = ("gender", "age_band", "city_tier")
UNKNOWN = "unknown"


def per_user(audience: pd.DataFrame, rows: pd.DataFrame, metrics: dict[str, pd.Series]) -> pd.DataFrame:
    """One row per audience user (user_key and GROUP_COLUMNS) with each metric summed over `rows`
    (aligned with `metrics`' values), 0 for users without rows; rows of users outside the audience are dropped."""
    summed = pd.DataFrame({name: values.to_numpy(dtype=float) for name, values in metrics.items()})
    summed["user_key"] = rows["user_key"].to_numpy()
    totals = summed.groupby("user_key").sum()
    out = audience[["user_key", *GROUP_COLUMNS]].drop_duplicates("user_key").reset_index(drop=True)
    for column in GROUP_COLUMNS:
        out[column] = out[column].astype(object).where(out[column].notna(), UNKNOWN).astype(str)
    return out.join(totals.reindex(out["user_key"]).fillna(0.0).reset_index(drop=True))


def group_gaps(users: pd.DataFrame, metrics: list[str], n_boot: int = 200, seed: int = 0) -> pd.DataFrame:
    """Per group column, level and metric: users, mean per user, ratio to the audience mean and its
    bootstrap interval. `users` is per_user's output."""
    rng = np.random.default_rng(seed)
    n = len(users)
    weights = rng.poisson(1.0, size=(n_boot, n)).astype(np.float32) if n else np.zeros((n_boot, 0), np.float32)
    records = []
    for metric in metrics:
        values = users[metric].to_numpy(dtype=np.float64)
        overall = values.mean() if n else np.nan
        boot_overall = (weights @ values) / np.maximum(weights.sum(axis=1), 1)
        for column in GROUP_COLUMNS:
            for level, members in users.groupby(column).indices.items():
                in_group = np.zeros(n, dtype=bool)
                in_group[members] = True
                mean = values[in_group].mean()
                group_weights = weights[:, in_group]
                boot_mean = (group_weights @ values[in_group]) / np.maximum(group_weights.sum(axis=1), 1)
                with np.errstate(divide="ignore", invalid="ignore"):
                    boot_ratio = boot_mean / boot_overall
                    ratio = mean / overall if overall else np.nan
                low, high = (np.nanpercentile(boot_ratio, [2.5, 97.5]) if np.isfinite(boot_ratio).any()
                             else (np.nan, np.nan))
                records.append({"group": column, "level": str(level), "metric": metric, "users": int(in_group.sum()),
                                "mean_per_user": mean, "ratio_to_overall": ratio, "ci_low": low, "ci_high": high})
    return pd.DataFrame(records)


def schedule_fairness(schedule: pd.DataFrame, audience: pd.DataFrame, restricted_campaigns: set[int],
                      n_boot: int = 200) -> pd.DataFrame:
    """The planned schedule's gaps: impressions, expected clicks, conversions and advertiser value, and
    the impressions of restricted campaigns."""
    pcvr = schedule["pcvr"].astype(float).fillna(0.0) if "pcvr" in schedule else 0.0
    restricted = schedule["campaign_id"].isin(restricted_campaigns).astype(float)
    users = per_user(audience, schedule, {
        "impressions": pd.Series(1.0, index=schedule.index),
        "expected_clicks": schedule["pctr"].astype(float),
        "expected_conversions": schedule["pctr"].astype(float) * pcvr,
        "expected_value": schedule["expected_value"].astype(float),
        "restricted_impressions": restricted,
    })
    metrics = ["impressions", "expected_clicks", "expected_conversions", "expected_value"]
    if restricted.sum() > 0:
        metrics.append("restricted_impressions")
    return group_gaps(users, metrics, n_boot).assign(source="schedule")


def realised_fairness(ad_events: pd.DataFrame, audience: pd.DataFrame, n_boot: int = 200) -> pd.DataFrame:
    """The logged day's gaps: impressions, clicks, conversions and advertiser spend (ad_events rows
    with user_key, event_type, cost)."""
    kind = ad_events["event_type"]
    users = per_user(audience, ad_events, {
        "impressions": (kind == "impression").astype(float),
        "clicks": (kind == "click").astype(float),
        "conversions": (kind == "conversion").astype(float),
        "spend": ad_events["cost"].astype(float).fillna(0.0),
    })
    return group_gaps(users, ["impressions", "clicks", "conversions", "spend"], n_boot).assign(source="realised")


def advertiser_delivery(schedule: pd.DataFrame, campaigns: pd.DataFrame) -> pd.DataFrame:
    """Per advertiser: its share of planned impressions and of expected spend against its share of the
    day's budget (ratio 1.0: delivered in proportion to what it pays for)."""
    budget = campaigns.groupby("advertiser_id")["daily_budget"].sum()
    planned = schedule.groupby("advertiser_id").agg(impressions=("ad_id", "size"), spend=("expected_cost", "sum"))
    table = pd.DataFrame({"budget_share": budget / budget.sum()}).join(planned, how="outer").fillna(0.0)
    table["impression_share"] = table["impressions"] / max(table["impressions"].sum(), 1)
    table["spend_share"] = table["spend"] / max(table["spend"].sum(), 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["impressions_per_budget_share"] = table["impression_share"] / table["budget_share"]
    return table.reset_index().rename(columns={"index": "advertiser_id"})


def largest_gaps(gaps: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """The k group/metric rows furthest from parity whose interval excludes 1."""
    clear = gaps[(gaps["ci_low"] > 1) | (gaps["ci_high"] < 1)]
    order = (clear["ratio_to_overall"] - 1).abs().sort_values(ascending=False).index
    return clear.loc[order].head(k)
