"""How the creative selector does on the log: each day's impressions replayed against the selector
built from the days before (what the schedule would have drawn), its off-policy value from the logged
creative propensities, and, on the simulator, its regret against the best creative.

Works on any log with creatives; the regret and the learned-vs-true table need the simulator's truth.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.creatives.selector import ThompsonSelector, creative_stats

# Impressions of ads that have creatives, with what the selector and the estimate need.
CREATIVE_LOG_SQL = """
select i.impression_id, i.impression_ts, i.impression_date, i.ad_id, i.creative_id, i.creative_propensity,
       i.clicked, i.click_ts, i.click_label_final, coalesce(s.segment, 'unknown') as segment
from main.int_attributed_impressions i
join (select distinct ad_id from main.stg_raw__creatives) c using (ad_id)
left join main.user_segments s using (user_key)
order by i.impression_ts, i.impression_id
"""
BOOTSTRAP_RESAMPLES = 1000


def read_creative_log(conn) -> pd.DataFrame:
    return conn.sql(CREATIVE_LOG_SQL).df().astype({"creative_id": "Int64"})


def replay_selector(log: pd.DataFrame, catalog: pd.DataFrame, **selector_options) -> pd.DataFrame:
    """For every impression after the log's first day: the selection probability of each creative of its
    ad by the selector built from the impressions of earlier days (a click counts once it happened
    before the day began). Rows: impression_id, day, creative_id, probability. `selector_options`
    go to ThompsonSelector (e.g. segment_prior_strength)."""
    days = np.sort(log["impression_date"].unique())
    catalog = catalog[["ad_id", "creative_id"]]
    parts = []
    for day in days[1:]:
        before = log[log["impression_date"] < day]
        known = before.assign(clicked=before["clicked"] & (before["click_ts"] < pd.Timestamp(day)))
        selector = ThompsonSelector(creative_stats(known), catalog, **selector_options)
        today = log[log["impression_date"] == day]
        pairs = selector.selection_probabilities(today["ad_id"].to_numpy(), today["segment"].to_numpy(object))
        rows = today[["impression_id", "ad_id", "segment"]].merge(pairs, on=["ad_id", "segment"], how="inner")
        parts.append(rows.assign(day=day, creative_id=rows["creative_id"].astype("Int64"))[
            ["impression_id", "day", "creative_id", "probability"]])
    columns = ["impression_id", "day", "creative_id", "probability"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


@dataclass(frozen=True)
class OffPolicyCtr:
    impressions: int
    logged_ctr: float
    selector_ctr: float  # self-normalised IPS
    interval: tuple[float, float]  # 95% bootstrap
    lift_interval: tuple[float, float]  # selector - logged, paired over the same resamples


def selector_ctr_off_policy(log: pd.DataFrame, replay: pd.DataFrame, seed: int = 0) -> OffPolicyCtr | None:
    """The selector's CTR estimated from impressions whose creative was logged with its propensity and
    whose click label is final: self-normalised IPS with weight P(selector picks the logged creative) /
    logged propensity. None when no impression qualifies (a log without creative propensities)."""
    logged = log[log["creative_propensity"].notna() & log["creative_id"].notna() & log["click_label_final"]]
    rows = logged[["impression_id", "creative_id", "creative_propensity", "clicked"]].merge(
        replay[["impression_id", "creative_id", "probability"]], on=["impression_id", "creative_id"], how="inner")
    if rows.empty:
        return None
    weight = rows["probability"].to_numpy(float) / rows["creative_propensity"].to_numpy(float)
    clicked = rows["clicked"].to_numpy(float)
    rng = np.random.default_rng(seed)
    resample = rng.integers(0, len(rows), size=(BOOTSTRAP_RESAMPLES, len(rows)))
    snips = (weight[resample] * clicked[resample]).sum(1) / np.maximum(weight[resample].sum(1), 1e-12)
    lift = snips - clicked[resample].mean(1)
    return OffPolicyCtr(
        impressions=len(rows), logged_ctr=float(clicked.mean()),
        selector_ctr=float((weight * clicked).sum() / weight.sum()),
        interval=tuple(np.quantile(snips, [0.025, 0.975]).tolist()),
        lift_interval=tuple(np.quantile(lift, [0.025, 0.975]).tolist()),
    )


def expected_regret(replay: pd.DataFrame, true_ctr: np.ndarray, log: pd.DataFrame) -> pd.DataFrame:
    """Per replayed impression, in time order: the best creative's true CTR, the selector's expected true
    CTR (sum of its probabilities x truth) and a uniform draw's (the logging policy's).
    `true_ctr`: one value per row of `replay` (that impression with that creative)."""
    pairs = replay.assign(true_ctr=np.asarray(true_ctr, dtype=float))
    pairs["weighted"] = pairs["probability"] * pairs["true_ctr"]
    per_impression = pairs.groupby("impression_id", sort=False).agg(
        best_ctr=("true_ctr", "max"), selector_ctr=("weighted", "sum"), uniform_ctr=("true_ctr", "mean"))
    order = log[["impression_id", "impression_ts"]].merge(per_impression, on="impression_id")
    return order.sort_values(["impression_ts", "impression_id"], kind="stable").reset_index(drop=True)


def true_creative_ctr(replay: pd.DataFrame, true_ctr: np.ndarray, log: pd.DataFrame) -> pd.DataFrame:
    """ad_id, creative_id, true_ctr: each creative's true CTR averaged over its ad's replayed impressions."""
    pairs = replay.assign(true_ctr=np.asarray(true_ctr, dtype=float)).merge(
        log[["impression_id", "ad_id"]], on="impression_id")
    return pairs.groupby(["ad_id", "creative_id"], as_index=False)["true_ctr"].mean()
