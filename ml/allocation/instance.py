"""Turn the candidates and campaigns frames into the arrays the allocator works on.

Rows of campaigns out of flight on the schedule date, with no budget, or with no positive expected
value are dropped here, so every later step sees only rows it may schedule.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.allocation.config import AllocationConfig
from ml.allocation.value import expected_cost, expected_value
from ml.ordering import in_key_order

REQUIRED_CANDIDATE_COLUMNS = ["user_key", "ad_id", "campaign_id", "pctr", "pcvr", "bid", "bid_type"]
REQUIRED_CAMPAIGN_COLUMNS = ["campaign_id", "advertiser_id", "daily_budget", "start_date", "end_date"]
# A candidate row is identified by its pair and where it came from (interest or exploration).
CANDIDATE_KEYS = ["user_key", "ad_id", "source"]


@dataclass
class AllocationInstance:
    rows: pd.DataFrame            # one row per schedulable impression option (user, ad, copy)
    user_keys: pd.Index           # user position -> user_key
    campaigns: pd.DataFrame       # in-flight campaigns; position = campaign index
    user_idx: np.ndarray
    campaign_idx: np.ndarray
    advertiser_idx: np.ndarray
    value: np.ndarray
    cost: np.ndarray
    options: np.ndarray           # (n_users, max options) row positions of each user's options, -1 = padding

    @property
    def n_users(self) -> int:
        return len(self.user_keys)

    @property
    def budgets(self) -> np.ndarray:
        return self.campaigns["daily_budget"].to_numpy(float)


def _missing(frame: pd.DataFrame, required: list[str], name: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} is missing columns {missing}; it has {list(frame.columns)}")


def in_flight(campaigns: pd.DataFrame, schedule_date: dt.date) -> pd.Series:
    """Campaigns running on the date (start_date <= date <= end_date) with a positive daily budget."""
    day = pd.Timestamp(schedule_date)
    start = pd.to_datetime(campaigns["start_date"]).dt.normalize()
    end = pd.to_datetime(campaigns["end_date"]).dt.normalize()
    return (start <= day) & (day <= end) & (campaigns["daily_budget"] > 0)


def build_instance(candidates: pd.DataFrame, campaigns: pd.DataFrame, schedule_date: dt.date,
                   config: AllocationConfig) -> AllocationInstance:
    _missing(candidates, REQUIRED_CANDIDATE_COLUMNS, "candidates")
    _missing(campaigns, REQUIRED_CAMPAIGN_COLUMNS, "campaigns")
    # Every later step draws seeded numbers, breaks ties and sums floats in row order: fix the order.
    candidates = in_key_order(candidates, CANDIDATE_KEYS)
    campaigns = in_key_order(campaigns, ["campaign_id"])
    live = campaigns.loc[in_flight(campaigns, schedule_date)].drop_duplicates("campaign_id").reset_index(drop=True)

    rows = candidates.drop(columns=[c for c in ("advertiser_id",) if c in candidates.columns])
    rows = rows[rows["campaign_id"].isin(live["campaign_id"])]
    rows = rows.merge(live[["campaign_id", "advertiser_id"]], on="campaign_id", how="left")
    rows["expected_value"] = expected_value(rows["bid"], rows["bid_type"], rows["pctr"], rows["pcvr"])
    rows["expected_cost"] = expected_cost(rows["bid"], rows["bid_type"], rows["pctr"], rows["pcvr"])
    usable = np.isfinite(rows["expected_value"]) & (rows["expected_value"] > 0) & (rows["expected_cost"] > 0)
    rows = rows[usable]
    # One option per (user, ad); the caller may pass an ad twice (interest and exploration). Each
    # user's options in value order, ties by ad id.
    rows = rows.sort_values(["user_key", "expected_value", "ad_id"], ascending=[True, False, True], kind="stable")
    rows = rows.drop_duplicates(["user_key", "ad_id"])
    copies = config.max_impressions_per_user_ad
    if copies > 1:  # each extra allowed impression of the same ad is another option with the same scores
        rows = rows.loc[rows.index.repeat(copies)]
    rows = rows.reset_index(drop=True)

    user_idx, user_keys = pd.factorize(rows["user_key"], sort=False)
    campaign_idx = pd.Index(live["campaign_id"]).get_indexer(rows["campaign_id"])
    advertiser_idx, _ = pd.factorize(rows["advertiser_id"])
    counts = np.bincount(user_idx, minlength=len(user_keys))
    width = int(counts.max()) if len(counts) else 0
    starts = np.r_[0, np.cumsum(counts)[:-1]] if len(counts) else np.zeros(0, dtype=np.int64)
    rank_in_user = np.arange(len(rows)) - np.repeat(starts, counts)
    options = np.full((len(user_keys), width), -1, dtype=np.int64)
    options[user_idx, rank_in_user] = np.arange(len(rows))
    return AllocationInstance(
        rows=rows, user_keys=pd.Index(user_keys), campaigns=live,
        user_idx=user_idx.astype(np.int64), campaign_idx=campaign_idx.astype(np.int64),
        advertiser_idx=advertiser_idx.astype(np.int64),
        value=rows["expected_value"].to_numpy(float), cost=rows["expected_cost"].to_numpy(float),
        options=options,
    )
