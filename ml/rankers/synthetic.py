"""Synthetic ctr_training_set-shaped frames with a planted signal, for tests and benchmarks.

Not the simulator (ml/simulator builds the real marketplace): this only fills the mart's columns
so rankers can be tested without dbt. The click log-odds depend on user x category affinity,
ad quality, slot and a hidden session intent that only `encoder_logit` sees, so a model with
encoder features should beat one without. Conversions follow clicks (ESMM funnel).
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


def synthetic_impressions(
    n_impressions: int = 20_000,
    n_users: int = 800,
    n_ads: int = 120,
    n_days: int = 5,
    start_date: dt.date = dt.date(2026, 11, 1),
    seed: int = 0,
    with_titles: bool = False,
) -> pd.DataFrame:
    """`with_titles`: also a `title` per ad whose words hint at its hidden quality, and a third of the
    ads new (no delivery history), for the content features (ml.rankers.content)."""
    rng = np.random.default_rng(seed)
    n_categories, n_brands = 12, 40

    user_gender = rng.choice(np.array(["M", "F", "U"], dtype=object), n_users, p=[0.48, 0.48, 0.04])
    user_age_band = rng.choice(np.array(["18-24", "25-34", "35-44", "45+"], dtype=object), n_users)
    user_city_tier = rng.integers(1, 5, n_users)
    user_occupation = rng.choice(np.array(["student", "office", "service", "retired"], dtype=object), n_users)
    user_tenure = rng.integers(1, 900, n_users)
    user_activity = rng.gamma(2.0, 10.0, n_users)
    user_affinity = rng.dirichlet(np.full(n_categories, 0.4), n_users)  # latent category interests
    user_buy_propensity = rng.normal(0, 0.6, n_users)

    ad_category = rng.integers(0, n_categories, n_ads)
    ad_brand = rng.integers(0, n_brands, n_ads)
    ad_quality = rng.normal(0, 0.5, n_ads)
    ad_price = np.round(rng.lognormal(3.5, 0.8, n_ads), 2)
    ad_bid_type = rng.choice(np.array(["cpc", "cpa"], dtype=object), n_ads)
    ad_objective = np.where(ad_bid_type == "cpa", "conversion", "click").astype(object)
    ad_bid = np.round(np.where(ad_bid_type == "cpa", rng.uniform(5, 20, n_ads), rng.uniform(0.2, 2.0, n_ads)), 2)
    ad_age = rng.integers(0, 60, n_ads)
    ad_campaign = rng.integers(0, max(n_ads // 3, 1), n_ads)

    user = rng.integers(0, n_users, n_impressions)
    ad = rng.integers(0, n_ads, n_impressions)
    day = rng.integers(0, n_days, n_impressions)
    hour = rng.integers(0, 24, n_impressions)
    slot = rng.integers(1, 6, n_impressions)
    affinity = user_affinity[user, ad_category[ad]]
    category_events = rng.poisson(user_activity[user] * affinity)
    brand_events = rng.poisson(0.3 * category_events)
    session_intent = rng.normal(0, 0.8, n_impressions)  # short-term interest the profile cannot see

    click_logit = (
        -3.0 + 2.5 * np.sqrt(affinity) + 0.35 * np.log1p(category_events) + ad_quality[ad]
        - 0.25 * (slot - 1) + 0.3 * (user_gender[user] == "F") * (ad_category[ad] % 2 == 0)
        + session_intent
    )
    true_pctr = _sigmoid(click_logit)
    label_click = rng.random(n_impressions) < true_pctr
    conversion_logit = -1.5 + user_buy_propensity[user] - 0.4 * np.log(ad_price[ad] / 30.0) + 0.5 * session_intent
    true_pcvr = _sigmoid(conversion_logit)
    label_conversion = label_click & (rng.random(n_impressions) < true_pcvr)

    impression_date = np.array([start_date + dt.timedelta(days=int(d)) for d in range(n_days)])[day]
    user_impressions_7d = rng.poisson(20, n_impressions)
    ad_impressions_7d = rng.poisson(500, n_impressions)
    ad_clicks_7d = rng.binomial(ad_impressions_7d, _sigmoid(-3.0 + ad_quality[ad]))
    user_clicks_7d = rng.binomial(user_impressions_7d, 0.05)
    ad_conversions_7d = rng.binomial(ad_clicks_7d, 0.1)
    frame = pd.DataFrame({
        "impression_id": np.arange(1, n_impressions + 1, dtype=np.int64),
        "user_key": np.array([f"u{u:06d}" for u in range(n_users)], dtype=object)[user],
        "ad_id": ad.astype(np.int64) + 1000,
        "campaign_id": ad_campaign[ad].astype(np.int64) + 100,
        "advertiser_id": (ad_campaign[ad] // 3).astype(np.int64) + 10,
        "impression_ts": pd.to_datetime(impression_date) + pd.to_timedelta(hour, unit="h"),
        "impression_date": impression_date,
        "propensity": rng.uniform(0.05, 1.0, n_impressions),
        "label_click": label_click.astype(np.int64),
        "label_conversion": label_conversion.astype(np.int64),
        "conversion_label_final": np.ones(n_impressions, dtype=bool),
        "hour": hour, "slot": slot,
        "day_of_week": np.array([d.weekday() for d in impression_date]),
        "gender": user_gender[user], "age_band": user_age_band[user], "city_tier": user_city_tier[user],
        "occupation": user_occupation[user], "user_tenure_days": user_tenure[user],
        "user_events_7d": rng.poisson(user_activity[user] * 7),
        "user_buys_7d": rng.poisson(np.exp(user_buy_propensity[user])),
        "user_ad_impressions_7d": user_impressions_7d, "user_ad_clicks_7d": user_clicks_7d,
        "user_ad_ctr_7d": user_clicks_7d / np.maximum(user_impressions_7d, 1),
        "category_id": ad_category[ad].astype(np.int64), "brand_id": ad_brand[ad].astype(np.int64),
        "price": ad_price[ad], "bid": ad_bid[ad], "bid_type": ad_bid_type[ad], "objective": ad_objective[ad],
        "ad_impressions_7d": ad_impressions_7d, "ad_clicks_7d": ad_clicks_7d,
        "ad_ctr_7d": ad_clicks_7d / np.maximum(ad_impressions_7d, 1), "ad_age_days": ad_age[ad],
        "ad_conversions_7d": ad_conversions_7d, "ad_cvr_7d": (ad_conversions_7d + 2.0) / (ad_clicks_7d + 20.0),
        "user_category_events_7d": category_events, "user_brand_events_7d": brand_events,
        "hours_since_user_category_event": np.where(category_events > 0, rng.exponential(30, n_impressions), np.nan),
        "hours_since_user_brand_event": np.where(brand_events > 0, rng.exponential(50, n_impressions), np.nan),
        "encoder_logit": session_intent + rng.normal(0, 0.4, n_impressions),
        "encoder_similarity": np.clip(np.sqrt(affinity) + rng.normal(0, 0.1, n_impressions), 0, 1),
        "true_pctr": true_pctr,
        "true_pcvr": true_pcvr,
    })
    return _with_titles_and_new_ads(frame, ad, ad_quality, click_logit, true_pcvr, seed) if with_titles else frame


GOOD_WORDS, POOR_WORDS, PLAIN_WORDS = ("bestseller", "favourite", "premium"), ("clearance", "basic", "budget"), \
    ("new", "offer", "shipping", "season")


def _with_titles_and_new_ads(frame: pd.DataFrame, ad: np.ndarray, ad_quality: np.ndarray, click_logit: np.ndarray,
                             true_pcvr: np.ndarray, seed: int) -> pd.DataFrame:
    """Titles of two quality words (good ones more likely the better the ad) and a plain word; a third
    of the ads new, launched on a day of the period (no rows before) and without delivery history for
    two days: only the title tells their quality then. Quality
    weighs three times as much in the clicks here (redrawn), so that knowing it is worth measuring.
    From their own random stream: the user and ad columns are the same as without titles."""
    rng = np.random.default_rng([seed, 1])
    true_pctr = _sigmoid(click_logit + 2.0 * ad_quality[ad])
    label_click = rng.random(len(frame)) < true_pctr
    label_conversion = label_click & (rng.random(len(frame)) < true_pcvr)
    frame = frame.assign(true_pctr=true_pctr, label_click=label_click.astype(np.int64),
                         label_conversion=label_conversion.astype(np.int64))
    n_ads = len(ad_quality)
    good = rng.random((n_ads, 2)) < _sigmoid(3.0 * ad_quality)[:, None]
    pick = rng.integers(0, 3, (n_ads, 2))
    words = np.where(good, np.array(GOOD_WORDS, dtype=object)[pick], np.array(POOR_WORDS, dtype=object)[pick])
    plain = np.array(PLAIN_WORDS, dtype=object)[rng.integers(0, len(PLAIN_WORDS), n_ads)]
    titles = np.array([f"brand{index} {first} {second} {extra}"
                       for index, ((first, second), extra) in enumerate(zip(words, plain))], dtype=object)
    # New ads launch on a day of the period (rows before it dropped) and have no history for two days.
    new = rng.random(n_ads) < 1 / 3
    first_day = frame["impression_date"].min()
    day_index = (frame["impression_date"] - first_day).map(lambda gap: gap.days).to_numpy()
    launch = np.where(new, rng.integers(0, day_index.max() + 1, n_ads), -99)
    age = day_index - launch[ad]
    frame = frame.assign(title=titles[ad], ad_age_days=np.where(new[ad], age, frame["ad_age_days"]))
    frame = frame[age >= 0].copy()
    young = (new[ad] & (age < 2))[frame.index]
    frame.loc[young, ["ad_impressions_7d", "ad_clicks_7d", "ad_conversions_7d"]] = 0
    frame.loc[young, "ad_ctr_7d"] = 0.0
    frame.loc[young, "ad_cvr_7d"] = 0.1
    return frame


def clicked(impressions: pd.DataFrame) -> pd.DataFrame:
    """cvr_training_set-shaped rows: the clicked impressions."""
    return impressions[impressions["label_click"] == 1].reset_index(drop=True)
