"""Seeded synthetic allocation inputs for tests and benchmarks (not a world model: the simulator is).

Campaigns get budgets as a fraction of the expected value their candidates could bring, so
`budget_tightness` < 1 makes budgets bind.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

SCHEDULE_DATE = dt.date(2026, 11, 15)


@dataclass
class SyntheticMarket:
    candidates: pd.DataFrame
    campaigns: pd.DataFrame
    ads: pd.DataFrame
    user_hours: pd.DataFrame
    schedule_date: dt.date = SCHEDULE_DATE


def synthetic_campaigns(n_campaigns: int, n_advertisers: int, rng: np.random.Generator,
                        schedule_date: dt.date = SCHEDULE_DATE) -> pd.DataFrame:
    return pd.DataFrame({
        "campaign_id": np.arange(1, n_campaigns + 1, dtype=np.int64),
        "advertiser_id": rng.integers(1, n_advertisers + 1, n_campaigns).astype(np.int64),
        "objective": np.where(np.arange(n_campaigns) % 3 == 0, "conversion", "click"),
        "bid_type": np.where(np.arange(n_campaigns) % 3 == 0, "cpa", "cpc"),
        "bid": np.where(np.arange(n_campaigns) % 3 == 0, rng.uniform(5, 20, n_campaigns), rng.uniform(0.2, 2.0, n_campaigns)),
        "daily_budget": 1.0,  # set from demand by the caller
        "start_date": schedule_date - dt.timedelta(days=5),
        "end_date": schedule_date + dt.timedelta(days=5),
    })


def synthetic_user_hours(user_keys: np.ndarray, rng: np.random.Generator, hours_per_user: int = 6) -> pd.DataFrame:
    """Each user active in a few hours around a personal peak, shares summing to 1."""
    n = len(user_keys)
    peak = rng.choice([8, 12, 19, 21], size=n)
    offsets = rng.integers(-3, 4, size=(n, hours_per_user))
    hours = (peak[:, None] + offsets) % 24
    weights = rng.gamma(2.0, 1.0, size=(n, hours_per_user))
    frame = pd.DataFrame({"user_key": np.repeat(user_keys, hours_per_user), "hour": hours.ravel(),
                          "share": weights.ravel()})
    frame = frame.groupby(["user_key", "hour"], as_index=False)["share"].sum()
    frame["share"] /= frame.groupby("user_key")["share"].transform("sum")
    return frame


def synthetic_market(n_users: int = 200, n_ads: int = 40, n_campaigns: int = 12, n_advertisers: int = 6,
                     candidates_per_user: int | None = None, budget_tightness: float = 0.4,
                     seed: int = 0) -> SyntheticMarket:
    rng = np.random.default_rng(seed)
    campaigns = synthetic_campaigns(n_campaigns, n_advertisers, rng)
    ads = pd.DataFrame({"ad_id": np.arange(1, n_ads + 1, dtype=np.int64),
                        "campaign_id": rng.integers(1, n_campaigns + 1, n_ads).astype(np.int64),
                        "category_id": rng.integers(1, 20, n_ads).astype(np.int64)})
    user_keys = np.array([f"u{i:06d}" for i in range(n_users)], dtype=object)
    per_user = n_ads if candidates_per_user is None else min(candidates_per_user, n_ads)
    ad_pos = np.argsort(rng.random((n_users, n_ads)), axis=1)[:, :per_user].ravel()
    candidates = pd.DataFrame({"user_key": np.repeat(user_keys, per_user), "ad_id": ads["ad_id"].to_numpy()[ad_pos]})
    candidates = candidates.merge(ads, on="ad_id").merge(
        campaigns[["campaign_id", "advertiser_id", "bid", "bid_type", "objective"]], on="campaign_id")
    candidates["pctr"] = rng.beta(1.5, 40.0, len(candidates))
    candidates["pcvr"] = rng.beta(2.0, 20.0, len(candidates))
    candidates["source"] = np.where(rng.random(len(candidates)) < 0.9, "interest", "exploration")
    candidates["top1_feature"] = "user_category_events_7d"
    candidates["top2_feature"] = "ad_ctr_7d"
    value = np.where(candidates["bid_type"] == "cpa", candidates["bid"] * candidates["pctr"] * candidates["pcvr"],
                     candidates["bid"] * candidates["pctr"])
    # Demand if every user took each campaign's options in proportion to K / options per user.
    share_taken = 4.0 / per_user
    demand = pd.Series(value * share_taken).groupby(candidates["campaign_id"].to_numpy()).sum()
    campaigns["daily_budget"] = (demand.reindex(campaigns["campaign_id"]).fillna(0).to_numpy()
                                 * budget_tightness * rng.uniform(0.3, 2.5, n_campaigns)).clip(min=1e-3)
    return SyntheticMarket(candidates=candidates.sort_values(["user_key", "ad_id"]).reset_index(drop=True),
                           campaigns=campaigns, ads=ads, user_hours=synthetic_user_hours(user_keys, rng))
