"""MovieLens-100k → landing contract, with a SYNTHETIC ad layer so the ad tables are not empty.

MovieLens has ratings, movies and users; it has no ads. Mapping decisions (also returned in
`AdapterReport.notes`):

* Ratings are sorted by (timestamp, user_id, item_id) and numbered r = 1, 2, ...; times are UTC
  and each event lands in the partition of its own UTC day.
* Movies are items: item_id = movie id, category_id = index of the movie's first genre in
  `GENRES` (ML-100k's 19 genres, "unknown" = 0), brand_id = release year (-1 when unknown).
* Organic behavior: a rating of a non-ad movie is a `view` (event_id 2r); a rating >=
  `STRONG_RATING` adds a `fav` one second later (event_id 2r + 1): the user liked it.
* SYNTHETIC ads: every movie whose id is a multiple of `AD_EVERY_NTH_MOVIE` is also an ad
  (ad_id = movie id, so ads and behavior items share one id space). Each ad-movie genre is one
  campaign (campaign_id = 1 + category_id) of one of `SYNTHETIC_ADVERTISERS` advertisers,
  objective click, bid_type cpc, bid from `SYNTHETIC_BIDS`, daily_budget =
  `SYNTHETIC_CLICKS_PER_DAY` x bid, running from the first landed day to `CAMPAIGN_DAYS_PAST_LOG`
  days after the last (so the day after the log can be scheduled); ad price 0.0
  (movies carry none), title = movie title.
* SYNTHETIC ad events: a rating of an ad-movie is an impression instead of a view
  (impression_id r, event_id 2r, slot 1 + r mod 2, cost 0) and a rating >= `STRONG_RATING` adds a
  click one second later (event_id 2r + 1, cost = campaign bid). Propensity is null. A rating is
  either organic or an impression, never both, so no behavior event leaks an ad outcome.
* Users: gender M/F as published; age_band from age with the MovieLens-1M bands
  (`AGE_BANDS`); occupation as published; city_tier = `UNKNOWN_CITY_TIER` (0): only zip codes are
  published; first_seen = UTC day of the first rating. Only users with a landed rating land.
* Dimension tables land once, on the first landed day; `max_days` keeps the first N calendar days
  counted from the first rating's day.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from ml.datasets.taobao import (
    SECONDS_PER_DAY,
    AdapterReport,
    LandingWriter,
    campaign_end_date,
    epoch_day_to_date,
)

GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)
CATEGORY_BY_GENRE = {genre: index for index, genre in enumerate(GENRES)}
# (lower age bound, band) as in MovieLens-1M's published age groups.
AGE_BANDS = ((0, "under_18"), (18, "18-24"), (25, "25-34"), (35, "35-44"), (45, "45-49"),
             (50, "50-55"), (56, "56+"))
STRONG_RATING = 4
FOLLOW_UP_DELAY_SECONDS = 1
AD_EVERY_NTH_MOVIE = 10
SYNTHETIC_ADVERTISERS = 5
SYNTHETIC_BIDS = (0.5, 0.75, 1.0, 1.25)
SYNTHETIC_CLICKS_PER_DAY = 200
UNKNOWN_CITY_TIER = 0
UNKNOWN_ID = -1
LANDING_FILE_NAME = "movielens"


class MovieLensFrameError(ValueError):
    """The loader's frames lack the columns or values this adapter maps."""


def _require_columns(frame: pd.DataFrame, name: str, required: tuple[str, ...]) -> pd.DataFrame:
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise MovieLensFrameError(f"MovieLens {name} lack columns {missing}; got {list(frame.columns)}")
    return frame


def _as_int64(values: pd.Series, what: str) -> np.ndarray:
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.isna().any():
        raise MovieLensFrameError(f"MovieLens {what} has non-numeric values, e.g. "
                                  f"{values[numeric.isna()].iloc[0]!r}")
    return numeric.to_numpy(dtype=np.int64)


def age_band(age: pd.Series) -> pd.Series:
    lower_bounds = [bound for bound, _ in AGE_BANDS]
    labels = np.array([band for _, band in AGE_BANDS], dtype=object)
    band_index = np.searchsorted(lower_bounds, pd.to_numeric(age).to_numpy(), side="right") - 1
    return pd.Series(labels[np.clip(band_index, 0, None)], index=age.index)


def movie_items(items: pd.DataFrame) -> pd.DataFrame:
    """item_id, title, category_id (first genre), brand_id (release year) per movie."""
    items = _require_columns(items, "items", ("item_id", "movie_title", "release_year", "class"))
    first_genre = items["class"].fillna("unknown").astype(str).str.split().str[0].fillna("unknown")
    unknown_genres = sorted(set(first_genre) - set(GENRES))
    if unknown_genres:
        raise MovieLensFrameError(f"MovieLens items have genres outside ML-100k's: {unknown_genres}")
    year = pd.to_numeric(items["release_year"], errors="coerce")
    return pd.DataFrame({
        "item_id": _as_int64(items["item_id"], "item_id"),
        "title": items["movie_title"].fillna("").astype(str).to_numpy(dtype=object),
        "category_id": first_genre.map(CATEGORY_BY_GENRE).to_numpy(dtype=np.int64),
        "brand_id": year.fillna(UNKNOWN_ID).to_numpy(dtype=np.int64),
    })


def numbered_ratings(interactions: pd.DataFrame, max_days: int | None) -> tuple[pd.DataFrame, int]:
    """Ratings in a stable order with rating number r, epoch second and UTC epoch day."""
    interactions = _require_columns(interactions, "interactions", ("user_id", "item_id", "rating", "timestamp"))
    ratings = pd.DataFrame({
        "user_id": _as_int64(interactions["user_id"], "user_id"),
        "item_id": _as_int64(interactions["item_id"], "item_id"),
        "rating": pd.to_numeric(interactions["rating"]).to_numpy(dtype=np.float64),
        "second": _as_int64(interactions["timestamp"], "timestamp"),
    })
    if ratings.empty:
        raise MovieLensFrameError("MovieLens interactions are empty")
    ratings = ratings.sort_values(["second", "user_id", "item_id"], ignore_index=True)
    ratings["r"] = np.arange(1, len(ratings) + 1, dtype=np.int64)
    ratings["day"] = ratings["second"] // SECONDS_PER_DAY
    dropped = 0
    if max_days is not None:
        if max_days < 1:
            raise ValueError(f"max_days must be positive, got {max_days}")
        kept = ratings["day"] < ratings["day"].iloc[0] + max_days
        dropped = int((~kept).sum())
        ratings = ratings[kept].reset_index(drop=True)
    return ratings, dropped


def synthetic_campaigns(ad_items: pd.DataFrame, first_day: dt.date, last_day: dt.date) -> pd.DataFrame:
    campaign_id = np.unique(ad_items["category_id"].to_numpy()) + 1
    bid = np.array(SYNTHETIC_BIDS)[campaign_id % len(SYNTHETIC_BIDS)]
    return pd.DataFrame({
        "campaign_id": campaign_id,
        "advertiser_id": 1 + campaign_id % SYNTHETIC_ADVERTISERS,
        "objective": "click",
        "bid_type": "cpc",
        "bid": bid,
        "daily_budget": bid * SYNTHETIC_CLICKS_PER_DAY,
        "start_date": first_day,
        "end_date": campaign_end_date(last_day),
    })


def _with_follow_ups(rows: pd.DataFrame, strong: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows (event_id 2r at the rating second) plus, for strong ratings, a copy at +1s (2r + 1)."""
    follow_ups = rows[strong].assign(
        event_id=lambda f: f["event_id"] + 1, second=lambda f: f["second"] + FOLLOW_UP_DELAY_SECONDS
    )
    events = pd.concat([rows, follow_ups], keys=["first", "follow_up"]).reset_index(level=0, names="kind")
    events["ts"] = pd.to_datetime(events["second"].to_numpy(), unit="s")
    return events, events["second"].to_numpy() // SECONDS_PER_DAY


def behavior_events(organic: pd.DataFrame, items: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    rows = organic.merge(items[["item_id", "category_id", "brand_id"]], on="item_id", how="left")
    rows = rows.assign(event_id=2 * rows["r"])
    events, days = _with_follow_ups(rows, (rows["rating"] >= STRONG_RATING).to_numpy())
    events["event_type"] = np.where(events["kind"] == "first", "view", "fav")
    events[["category_id", "brand_id"]] = events[["category_id", "brand_id"]].fillna(UNKNOWN_ID)
    return events, days


def ad_events(on_ads: pd.DataFrame, ads: pd.DataFrame, campaigns: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    bid_by_ad = ads.merge(campaigns, on="campaign_id").set_index("ad_id")["bid"]
    rows = on_ads.assign(
        event_id=2 * on_ads["r"], impression_id=on_ads["r"], ad_id=on_ads["item_id"],
        slot=(1 + on_ads["r"] % 2).astype(np.int32), propensity=np.nan,
    )
    events, days = _with_follow_ups(rows, (rows["rating"] >= STRONG_RATING).to_numpy())
    is_click = (events["kind"] == "follow_up").to_numpy()
    events["event_type"] = np.where(is_click, "click", "impression")
    events["cost"] = np.where(is_click, bid_by_ad.reindex(events["ad_id"]).to_numpy(), 0.0)
    return events, days


def users_from_loader(users: pd.DataFrame, ratings: pd.DataFrame) -> pd.DataFrame:
    users = _require_columns(users, "users", ("user_id", "age", "gender", "occupation"))
    user_id = _as_int64(users["user_id"], "user_id")
    first_day = ratings.groupby("user_id")["day"].min().reindex(user_id)
    landed = first_day.notna().to_numpy()
    gender = users["gender"].astype(str).str.upper().where(lambda g: g.isin(["M", "F"]), "U")
    return pd.DataFrame({
        "user_id": user_id,
        "gender": gender.to_numpy(dtype=object),
        "age_band": age_band(users["age"]).to_numpy(dtype=object),
        "city_tier": np.int32(UNKNOWN_CITY_TIER),
        "occupation": users["occupation"].astype(str).to_numpy(dtype=object),
        "first_seen": first_day.fillna(0).to_numpy(dtype="int64").astype("datetime64[D]"),
    })[landed]


def movielens_frames_to_landing(
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    users: pd.DataFrame,
    data_root: Path,
    max_days: int | None = None,
    source: str = "movielens-100k",
) -> AdapterReport:
    """Map loader frames (ratings, movies, users) to landing files; see the module docstring."""
    ratings, dropped_ratings = numbered_ratings(interactions, max_days)
    movies = movie_items(items)
    unknown_movies = ~ratings["item_id"].isin(movies["item_id"])
    if unknown_movies.any():
        raise MovieLensFrameError(
            f"MovieLens ratings refer to movies missing from the items, e.g. "
            f"{ratings.loc[unknown_movies, 'item_id'].iloc[0]}"
        )
    first_day = epoch_day_to_date(ratings["day"].min())
    last_day = epoch_day_to_date(ratings["day"].max())

    ad_movies = movies[movies["item_id"] % AD_EVERY_NTH_MOVIE == 0]
    campaigns = synthetic_campaigns(ad_movies, first_day, last_day)
    ads = pd.DataFrame({
        "ad_id": ad_movies["item_id"], "campaign_id": ad_movies["category_id"] + 1,
        "category_id": ad_movies["category_id"], "brand_id": ad_movies["brand_id"],
        "price": 0.0, "title": ad_movies["title"],
    })
    is_ad_rating = ratings["item_id"].isin(ads["ad_id"])

    report = AdapterReport(source=source, data_root=Path(data_root))
    writer = LandingWriter(data_root, LANDING_FILE_NAME)
    try:
        landed_users = users_from_loader(users, ratings)
        writer.write_on_day("users", landed_users, first_day)
        writer.write_on_day("campaigns", campaigns, first_day)
        writer.write_on_day("ads", ads, first_day)
        writer.write("behavior_events", *behavior_events(ratings[~is_ad_rating], movies))
        writer.write("ad_events", *ad_events(ratings[is_ad_rating], ads, campaigns))
        writer.commit(report)
    except BaseException:
        writer.abort()
        raise

    strong = ratings["rating"] >= STRONG_RATING
    report.counts.update({
        "ratings_landed": len(ratings),
        "organic_ratings": int((~is_ad_rating).sum()),
        "impressions": int(is_ad_rating.sum()),
        "clicks": int((is_ad_rating & strong).sum()),
        "users": len(landed_users),
    })
    if dropped_ratings:
        report.dropped[f"ratings after the first {max_days} days"] = dropped_ratings
    report.notes += [
        "times are UTC; ratings are numbered r in (timestamp, user_id, item_id) order",
        f"behavior: a rating is a view, a rating >= {STRONG_RATING} adds a fav "
        f"{FOLLOW_UP_DELAY_SECONDS}s later; item = movie, category = first genre, brand = release year",
        f"SYNTHETIC ad layer: movies with id % {AD_EVERY_NTH_MOVIE} == 0 are ads, one cpc campaign "
        f"per genre, bids {SYNTHETIC_BIDS}, daily_budget = {SYNTHETIC_CLICKS_PER_DAY} x bid, "
        f"{SYNTHETIC_ADVERTISERS} advertisers, price 0",
        f"SYNTHETIC ad events: a rating of an ad-movie is an impression (slot 1 + r mod 2) instead "
        f"of a view; rating >= {STRONG_RATING} adds a click {FOLLOW_UP_DELAY_SECONDS}s later "
        "costing the bid; propensity null",
        f"users: city_tier {UNKNOWN_CITY_TIER} (only zip codes are published), MovieLens-1M age bands",
        f"dimension tables land on the first day {first_day}",
    ]
    return report


def movielens_to_landing(data_root: Path, max_days: int | None = None, max_users: int | None = None,
                         source: Path | None = None) -> AdapterReport:
    """MovieLens-100k (via ml.datasets.movielens) → landing files under `data_root`.

    `max_users` keeps the users with the lowest ids (a slice for tests and quick looks)."""
    from ml.datasets.movielens import (  # the loader finds or downloads the data on call
        find_ml100k,
        load_ml100k_interactions,
        load_ml100k_items,
        load_ml100k_users,
    )

    source = source if source is not None else find_ml100k()
    interactions = load_ml100k_interactions(source)
    if max_users is not None:
        interactions = interactions[interactions["user_id"] <= max_users]
    return movielens_frames_to_landing(
        interactions, load_ml100k_items(source), load_ml100k_users(source), data_root, max_days
    )
