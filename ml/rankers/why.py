"""'Why this ad' in words, from the ranker's own SHAP contributions.

For each row the features that pushed its predicted click rate up the most (LightGBM's TreeSHAP,
positive contributions only, largest first) are put in words with the row's own value of the
feature: "you viewed 5 items in this ad's category this week; this ad is new". The words change
when the model's reasons change; they are not a template chosen without it. A row no feature
pushed up gets a plain statement that nothing about the user stood out.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ml.rankers.content import title_term

NOTHING_STOOD_OUT = "shown for its bid and general appeal; nothing in your activity stood out"
NEW_AD_DAYS = 2  # an ad younger than this reads as "new"


def _count(value: float) -> int:
    return int(round(value))


def _ago(hours: float) -> str:
    if hours < 1:
        return "in the last hour"
    if hours < 48:
        return f"{_count(hours)} hour{'s' if _count(hours) != 1 else ''} ago"
    return f"{_count(hours / 24)} days ago"


def _percent(rate: float) -> str:
    return f"{100 * rate:.1f}%"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _ad_impressions(value: float) -> str:
    n = _count(value)
    return "this ad is new" if n == 0 else f"this ad has been shown {_plural(n, 'time', 'times')} this week"


def _ad_age(value: float) -> str:
    return "this ad is new" if value < NEW_AD_DAYS else f"this ad has run for {_count(value)} days"


# feature -> words for the row's value (NaN values never reach these: see _phrase).
PHRASES: dict[str, Callable[[float], str]] = {
    "user_category_events_7d": lambda v: f"you viewed {_plural(_count(v), 'item', 'items')} in this ad's category this week",
    "user_brand_events_7d": lambda v: f"you viewed {_plural(_count(v), 'item', 'items')} of this ad's brand this week",
    "hours_since_user_category_event": lambda v: f"you looked at this ad's category {_ago(v)}",
    "hours_since_user_brand_event": lambda v: f"you looked at this ad's brand {_ago(v)}",
    "user_events_7d": lambda v: f"you were active this week ({_plural(_count(v), 'event', 'events')})",
    "user_buys_7d": lambda v: f"you bought {_plural(_count(v), 'item', 'items')} this week",
    "user_ad_impressions_7d": lambda v: f"you saw {_plural(_count(v), 'ad', 'ads')} this week",
    "user_ad_clicks_7d": lambda v: f"you clicked {_plural(_count(v), 'ad', 'ads')} this week",
    "user_ad_ctr_7d": lambda v: f"you click {_percent(v)} of the ads you see",
    "user_tenure_days": lambda v: "you are new here" if v < 7 else f"you have been with us {_count(v)} days",
    "ad_ctr_7d": lambda v: f"this ad is clicked on {_percent(v)} of its views",
    "ad_clicks_7d": lambda v: f"this ad was clicked {_plural(_count(v), 'time', 'times')} this week",
    "ad_impressions_7d": _ad_impressions,
    "ad_conversions_7d": lambda v: f"this ad led to {_plural(_count(v), 'purchase', 'purchases')} this week",
    "ad_cvr_7d": lambda v: f"{_percent(v)} of this ad's clicks end in a purchase",
    "ad_age_days": _ad_age,
    "price": lambda v: f"its price ({v:,.2f}) suits you",
    "encoder_logit": lambda v: "it fits the pattern of your recent browsing",
    "encoder_similarity": lambda v: "it is close to what you browsed recently",
    "hour": lambda v: f"it is planned for {_count(v)}:00, when you are likely to look",
    "slot": lambda v: f"its position ({_count(v)}) on the page",
    "day_of_week": lambda v: "people click more on this day of the week",
    "bid": lambda v: f"the advertiser's bid ({v:,.2f})",
}
USER_COUNTS = {"user_category_events_7d", "user_brand_events_7d", "user_events_7d", "user_buys_7d",
               "user_ad_impressions_7d", "user_ad_clicks_7d"}
# Categorical features: the row's level, in words.
LEVEL_PHRASES: dict[str, Callable[[str], str]] = {
    "category_id": lambda level: f"ads in category {level} do well",
    "brand_id": lambda level: f"ads of brand {level} do well",
    "bid_type": lambda level: f"its {level} pricing",
    "objective": lambda level: f"its campaign aims at {level}s" if level else "its campaign's objective",
    "gender": lambda level: "people with your profile click it more",
    "age_band": lambda level: "people in your age group click it more",
    "city_tier": lambda level: "people in cities like yours click it more",
    "occupation": lambda level: "people with your occupation click it more",
}


def _phrase(feature: str, value: float, levels: list[str] | None) -> str | None:
    if (term := title_term(feature)) is not None:  # a title term's weight: only a word that is there speaks
        return f'its title says "{term}"' if value > 0 else None
    if levels is not None:  # a categorical feature: value is the level's code (NaN: unseen or missing)
        if value != value:
            return None
        return LEVEL_PHRASES.get(feature, lambda level: f"its {feature} ({level})")(levels[int(value)])
    if value != value or (feature in USER_COUNTS and value == 0):  # "nothing seen" is not a reason to show
        return None
    return PHRASES.get(feature, lambda v: f"its {feature} ({v:g})")(float(value))


def explain_in_words(contributions: np.ndarray, matrix: np.ndarray, features: list[str],
                     categorical_levels: dict[str, list[str]], top_k: int = 2) -> list[str]:
    """Per row of `matrix` (encoded as the ranker reads it), its up to `top_k` largest positive SHAP
    contributions in words, joined by '; '. `contributions` is pred_contrib's output (bias last)."""
    per_feature = contributions[:, :-1]
    order = np.argsort(-per_feature, axis=1, kind="stable")
    sentences = []
    for row in range(len(matrix)):
        phrases: list[str] = []
        for position in order[row]:
            if per_feature[row, position] <= 0 or len(phrases) == top_k:
                break
            phrase = _phrase(features[position], matrix[row, position], categorical_levels.get(features[position]))
            if phrase is not None and phrase not in phrases:
                phrases.append(phrase)
        sentences.append("; ".join(phrases) if phrases else NOTHING_STOOD_OUT)
    return sentences


def popular_ad_words(pctr: float) -> str:
    """Without a CTR ranker the schedule scores an ad by its own smoothed click rate: that is the reason."""
    return f"a popular ad: clicked on {_percent(pctr)} of its views this week"
