"""Expected value and cost of an impression, and the value of a whole schedule under true probabilities.

The advertiser pays its bid per click (CPC) or per conversion (CPA), so the platform's expected
revenue from an impression equals the advertiser's expected bid value: value and cost share one formula.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def _is_cpa(bid_type) -> np.ndarray:
    kinds = pd.Series(np.asarray(bid_type, dtype=object)).astype(str).str.lower().to_numpy()
    unknown = ~np.isin(kinds, ["cpc", "cpa"])
    if unknown.any():
        raise ValueError(f"bid_type must be 'cpc' or 'cpa', got {sorted(set(kinds[unknown]))[:5]}")
    return kinds == "cpa"


def expected_value(bid, bid_type, pctr, pcvr) -> np.ndarray:
    """bid x pCTR for CPC, bid x pCTR x pCVR for CPA (element-wise)."""
    bid = np.asarray(bid, dtype=float)
    pctr = np.asarray(pctr, dtype=float)
    pcvr = np.asarray(pcvr, dtype=float)
    return np.where(_is_cpa(bid_type), bid * pctr * pcvr, bid * pctr)


def expected_cost(bid, bid_type, pctr, pcvr) -> np.ndarray:
    """What the advertiser is expected to pay: the same as the value (pay per click / per conversion)."""
    return expected_value(bid, bid_type, pctr, pcvr)


def schedule_value(schedule: pd.DataFrame, true_pctr, true_pcvr, bid=None, bid_type=None,
                   daily_budget_by_campaign: pd.Series | None = None) -> dict[str, float]:
    """Value of a schedule under the TRUE probabilities the caller passes (one entry per schedule row).

    `bid` / `bid_type` default to the schedule's columns. With `daily_budget_by_campaign` the spend is
    also reported capped per campaign (an advertiser never pays past its budget), as `capped_spend`.
    """
    true_pctr = np.asarray(true_pctr, dtype=float)
    true_pcvr = np.asarray(true_pcvr, dtype=float)
    if len(true_pctr) != len(schedule) or len(true_pcvr) != len(schedule):
        raise ValueError(f"true_pctr/true_pcvr need one value per schedule row ({len(schedule)})")
    bid = schedule["bid"].to_numpy(float) if bid is None else np.asarray(bid, dtype=float)
    bid_type = schedule["bid_type"].to_numpy(object) if bid_type is None else np.asarray(bid_type, dtype=object)
    spend = expected_cost(bid, bid_type, true_pctr, true_pcvr)
    result = {
        "impressions": float(len(schedule)),
        "expected_clicks": float(true_pctr.sum()),
        "expected_conversions": float((true_pctr * true_pcvr).sum()),
        "advertiser_value": float(expected_value(bid, bid_type, true_pctr, true_pcvr).sum()),
        "spend": float(spend.sum()),
    }
    if daily_budget_by_campaign is not None:
        per_campaign = pd.Series(spend).groupby(schedule["campaign_id"].to_numpy()).sum()
        budgets = daily_budget_by_campaign.reindex(per_campaign.index).fillna(np.inf)
        result["capped_spend"] = float(np.minimum(per_campaign, budgets).sum())
    return result
