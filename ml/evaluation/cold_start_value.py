"""What the title features are worth to the schedule, under the simulator's truth.

The schedule day's candidates (as the daily run scored them) are re-scored by two CTR rankers fitted
as the daily run fits its challenger (same days), with and without the title's terms, keeping the
champion's pCVR for both; each is allocated by the product's allocator with the same settings and
valued under the true probabilities: the expected value of the impressions planned for ads younger
than 2 days and of all, paired over users (each user's value with one ranker minus with the other),
and the total within campaign budgets.

Both rankers use the encoder's features when the candidates carry them (a CTR champion scored the
day); without a CTR champion (a young log whose first ranker was refused) the candidates hold no
encoder scores and both are fitted without them: the comparison stays paired, titles against none.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd

from ml.allocation import AllocationConfig
from ml.allocation.allocator import allocate
from ml.allocation.value import schedule_value
from ml.evaluation.paired_value import paired_bootstrap_total, value_by_user
from ml.evaluation.policy import true_probabilities_for
from ml.rankers.cold_start import YOUNG_AD_DAYS
from ml.rankers.features import ENCODER_FEATURES
from ml.rankers.splits import DaySplit
from ml.rankers.training import fit_ranker

VARIANTS = {"with titles": True, "without titles": False}


def new_ads_of(scored: pd.DataFrame) -> set:
    """Ads younger than YOUNG_AD_DAYS on the schedule day (no age: landed that day)."""
    age = scored.drop_duplicates("ad_id").set_index("ad_id")["ad_age_days"].fillna(0)
    return set(age.index[age < YOUNG_AD_DAYS])


def carries_encoder_features(scored: pd.DataFrame) -> bool:
    """Did the daily run keep the encoder's scores with the candidates (only a CTR champion's do)?"""
    return all(name in scored.columns and scored[name].notna().any() for name in ENCODER_FEATURES)


def schedule_values_with_and_without_titles(
    split: DaySplit, scored: pd.DataFrame, campaigns: pd.DataFrame, user_hours: pd.DataFrame,
    hourly_traffic: pd.DataFrame, schedule_date: dt.date, allocation: AllocationConfig, truth, user_ids: pd.Series,
) -> tuple[pd.DataFrame, dict[str, float], dict[str, int]]:
    """(per user: '<variant>: all' / ': new ads' / ': new-ad impressions'; per variant the total within
    budgets; per variant the impressions planned for new ads)."""
    budgets = campaigns.drop_duplicates("campaign_id").set_index("campaign_id")["daily_budget"]
    new_ads = new_ads_of(scored)
    with_encoder = carries_encoder_features(scored)
    per_user, capped, new_impressions = [], {}, {}
    for name, content in VARIANTS.items():
        ranker = fit_ranker(split.train, split.valid, "ctr", use_encoder_features=with_encoder,
                            use_content_features=content)
        candidates = scored.assign(pctr=ranker.predict(scored))
        schedule = allocate(candidates, campaigns, user_hours, schedule_date, allocation,
                            hourly_traffic=hourly_traffic).schedule
        true_pctr, true_pcvr = true_probabilities_for(truth, schedule, user_ids, schedule_date)
        values = value_by_user(schedule, true_pctr, true_pcvr, new_ads)
        per_user.append(values.set_axis(["all", "new ads", "new-ad impressions"], axis=1).add_prefix(f"{name}: "))
        capped[name] = schedule_value(schedule, true_pctr, true_pcvr, daily_budget_by_campaign=budgets)["capped_spend"]
        new_impressions[name] = int(values["flagged_impressions"].sum())
    return pd.concat(per_user, axis=1).fillna(0.0), capped, new_impressions


def value_comparison(per_user: pd.DataFrame, capped: dict[str, float]) -> pd.DataFrame:
    """Rows: new ads, all (paired bootstrap 95% over users), all within budgets (no interval)."""
    rows = []
    for part in ("new ads", "all"):
        with_titles, without = per_user[f"with titles: {part}"], per_user[f"without titles: {part}"]
        gain, low, high = paired_bootstrap_total(with_titles.to_numpy(), without.to_numpy())
        rows.append({"planned impressions of": part, "value with titles": with_titles.sum(),
                     "value without titles": without.sum(), "gain": gain, "gain_ci95_low": low,
                     "gain_ci95_high": high})
    rows.append({"planned impressions of": "all, within budgets", "value with titles": capped["with titles"],
                 "value without titles": capped["without titles"],
                 "gain": capped["with titles"] - capped["without titles"]})
    return pd.DataFrame(rows)
