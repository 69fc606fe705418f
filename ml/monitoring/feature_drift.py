"""Which ranker features the drift check compares between training rows and tomorrow's candidates.

Reference: the CTR ranker's training impressions. Current: `candidate_features` of the schedule
date, the rows the champions score next. That is the population whose scores decide tomorrow's
budgets, and it is the newest one (features as of the schedule date's start); the newest logged
day is a day older and already judged by the holdout AUC. Candidates are not logged impressions,
though: retrieval shows ads the logging policy rarely chose, so part of a feature's PSI can be
that selection rather than time (ARCHITECTURE.md, "Scoring pairs nobody logged").

Left out, because they differ between any training window and any single day by construction:
hour and slot (a candidate is scored at the user's most active hour, slot 1), day_of_week (one
weekday against a week), and the clocks user_tenure_days and ad_age_days (they grow a day a day).
"""
from __future__ import annotations

import pandas as pd

from ml.monitoring.psi import psi_table
from ml.rankers.features import CATEGORICAL, NUMERIC

NOT_COMPARED = {
    "hour": "candidates are scored at the user's most active hour",
    "slot": "candidates are scored in slot 1",
    "day_of_week": "one weekday against the training week",
    "user_tenure_days": "a clock: grows by one every day",
    "ad_age_days": "a clock: grows by one every day",
}
DRIFT_NUMERIC = [name for name in NUMERIC if name not in NOT_COMPARED]
DRIFT_CATEGORICAL = [name for name in CATEGORICAL if name not in NOT_COMPARED]
DRIFT_FEATURES = DRIFT_NUMERIC + DRIFT_CATEGORICAL


def feature_drift(training: pd.DataFrame, scoring: pd.DataFrame) -> pd.DataFrame:
    """PSI per compared feature (ml.monitoring.psi.psi_table), largest first."""
    return psi_table(training, scoring, DRIFT_NUMERIC, DRIFT_CATEGORICAL)
