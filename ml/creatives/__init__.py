"""Dynamic creative selection: Thompson sampling over an ad's creatives (title variants) per user segment,
logging each choice's probability for off-policy evaluation; its report, regret curve and a synthetic bandit.

Plain Python + numpy/pandas/scipy; the Dagster assets build a `ThompsonSelector` from the day's
`creative_stats` and call `choose` per scheduled slot.
"""
from ml.creatives.selector import (
    ALL_SEGMENTS,
    CREATIVE_STATS_COLUMNS,
    ThompsonSelector,
    creative_stats,
    thompson_probabilities,
)

__all__ = ["ALL_SEGMENTS", "CREATIVE_STATS_COLUMNS", "ThompsonSelector", "creative_stats", "thompson_probabilities"]
