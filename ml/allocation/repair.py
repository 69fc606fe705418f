"""Feasibility repair: drop the least valuable impressions until every campaign's cumulative spend
stays under its pacing caps (and so under its daily budget), hour by hour.

Hours are processed in clock order; an impression at hour h also uses room at every later hour, so
the room at h is the smallest slack over hours >= h. Rows already committed are never dropped.
"""
from __future__ import annotations

import numpy as np

from ml.allocation.pacing import HOURS

# Relative safety margin so float summation order can never tip a campaign over its cap.
_MARGIN = 1e-10


def trim_to_caps(campaign: np.ndarray, hour: np.ndarray, cost: np.ndarray, priority: np.ndarray,
                 protected: np.ndarray, caps: np.ndarray, committed_cumulative: np.ndarray):
    """Keep mask for new rows, and the cumulative spend (n_campaigns x 24) including the kept ones.

    Within a campaign-hour, protected rows (a user's only ad: coverage) go first, then by priority."""
    cumulative = committed_cumulative.copy()
    keep = np.zeros(len(cost), dtype=bool)
    if len(cost) == 0:
        return keep, cumulative
    margin = _MARGIN * caps[:, -1]
    order = np.lexsort((-priority, ~protected, campaign, hour))
    hour_sorted = hour[order]
    bounds = np.searchsorted(hour_sorted, np.arange(HOURS + 1))
    for h in range(HOURS):
        segment = order[bounds[h]:bounds[h + 1]]
        if len(segment) == 0:
            continue
        room = (caps[:, h:] - cumulative[:, h:]).min(axis=1) - margin
        seg_campaign, seg_cost = campaign[segment], cost[segment]
        running = np.cumsum(seg_cost)
        group_start = np.r_[True, seg_campaign[1:] != seg_campaign[:-1]]
        offset = np.maximum.accumulate(np.where(group_start, running - seg_cost, 0.0))
        kept = (running - offset) <= room[seg_campaign]
        keep[segment] = kept
        cumulative[:, h:] += np.bincount(seg_campaign[kept], weights=seg_cost[kept],
                                         minlength=caps.shape[0])[:, None]
    return keep, cumulative
