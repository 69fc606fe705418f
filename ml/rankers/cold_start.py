"""How well the ranker scores ads that have no history yet, with and without content features.

An ad younger than two days has (almost) no impressions: its delivery features are empty and only
what it is (category, brand, price, title) can rank it. The comparison is paired: the same holdout
impressions scored by the ranker and by the same recipe fitted without title features, so DeLong's
paired standard error of the AUC difference applies (ml.evaluation.metrics).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ml.evaluation.metrics import auc, paired_auc_difference
from ml.rankers.features import labels_for
from ml.rankers.why import NEW_AD_DAYS

YOUNG_AD_DAYS = NEW_AD_DAYS  # "new" as the explanations say it: landed less than 2 days before the day
Z95 = 1.96


def young_ad_rows(holdout: pd.DataFrame) -> np.ndarray:
    """Per row: is the ad younger than YOUNG_AD_DAYS (no age: it landed on the day itself)?"""
    return (holdout["ad_age_days"].fillna(0.0) < YOUNG_AD_DAYS).to_numpy()


def cold_start_comparison(holdout: pd.DataFrame, with_content: np.ndarray, without_content: np.ndarray,
                          task: str = "ctr") -> pd.DataFrame:
    """AUC with and without content features on young ads, on the other ads and on all, with the
    paired difference and its 95% interval. One row per slice."""
    labels = labels_for(holdout, task)
    young = young_ad_rows(holdout)
    rows = []
    for name, mask in (("ads younger than 2 days", young), ("older ads", ~young), ("all ads", np.ones_like(young))):
        y, a, b = labels[mask], np.asarray(with_content)[mask], np.asarray(without_content)[mask]
        difference, se = paired_auc_difference(y, a, b)
        rows.append({"ads": name, "impressions": int(mask.sum()), "positives": int(y.sum()),
                     "auc_with_content": auc(y, a), "auc_without_content": auc(y, b),
                     "auc_gain": difference, "gain_ci95_low": difference - Z95 * se,
                     "gain_ci95_high": difference + Z95 * se})
    return pd.DataFrame(rows)
