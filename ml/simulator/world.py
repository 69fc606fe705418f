"""The static world (catalog, users, advertisers, campaigns, ads) and the true behavior model.

Everything random here is drawn once from the seed; everything that changes over time (interest
drift) is a closed-form function of the day index, so the same world answers questions about any
day, including days after the last simulated one.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.simulator.config import SimulationConfig
from ml.simulator.creatives import draw_creatives

# Distinct id ranges per entity so a join on the wrong key finds nothing instead of garbage.
ID_OFFSETS = {
    "category": 1,
    "brand": 1_001,
    "advertiser": 501,
    "campaign": 5_001,
    "ad": 50_001,
    "item": 100_001,
    "creative": 5_000_001,
    "user": 10_000_001,
}
GENDERS = np.array(["M", "F", "U"])
AGE_BANDS = np.array(["18-24", "25-34", "35-44", "45-54", "55+"])
OCCUPATIONS = np.array(["student", "office", "service", "manual", "self_employed", "retired", "homemaker", "other"])
OBJECTIVES = np.array(["click", "conversion"])
BID_TYPES = np.array(["cpc", "cpa"])
CATEGORY_NAMES = [
    "shoes", "dresses", "phones", "laptops", "headphones", "skincare", "makeup", "snacks", "coffee", "tea",
    "toys", "books", "furniture", "bedding", "kitchenware", "cameras", "watches", "bags", "jewelry", "sportswear",
    "bicycles", "camping", "pet food", "baby care", "vitamins", "garden", "tools", "car parts", "games", "music",
    "stationery", "lighting", "appliances", "fragrance", "hair care", "outerwear", "swimwear", "eyewear", "wine", "travel",
]
# Title phrases and how strongly each one goes with a high-quality ad (log-odds per unit of quality):
# real titles say "best seller" or "clearance" for a reason. Each ad's title carries two of them,
# drawn more often the better they fit its quality, so a title hints at an ad's appeal before any
# impression of it is logged (cold start), as noisily as a copywriter's words do.
TITLE_TERMS = (
    ("best seller", 1.2), ("top rated", 1.0), ("award winning", 0.9), ("premium quality", 0.7),
    ("customer favourite", 0.8), ("new season", 0.0), ("free shipping", 0.0), ("just arrived", 0.0),
    ("limited offer", 0.0), ("members save more", 0.0), ("clearance", -0.9), ("basic", -0.7),
    ("budget pick", -0.8), ("last units", -1.0),
)
HOURS_PER_DAY = 24
DRIFT_COMPONENTS = 2
LATENT_DIM = 8
POLICY_NOISE_DIM = 4


@dataclass(frozen=True)
class TrueModel:
    """Coefficients of the true click and conversion probabilities (the oracle)."""

    ctr_intercept: float = -4.55
    ctr_interest: float = 0.9  # per unit of log1p(n_categories * interest share)
    ctr_brand_affinity: float = 0.45
    ctr_quality: float = 0.35
    ctr_session_intent: float = 0.8  # ad category equals the current session's intent
    ctr_personal_hour: float = 0.3  # users click more inside their own active hours
    ctr_evening: float = 0.15
    position_bias: tuple[float, ...] = (1.0, 0.7, 0.5, 0.35)  # slots 1..4
    cvr_intercept: float = -2.3
    cvr_interest: float = 0.35
    cvr_brand_affinity: float = 0.4
    cvr_price_fit: float = 0.8
    cvr_quality: float = 0.2
    price_fit_width: float = 1.0  # log-price distance at which the price fit costs one unit
    drift_strength: float = 0.7  # std of the daily log-interest drift
    # Logging policy: softmax over (log bid value + noisy click logit) / temperature, mixed with uniform.
    policy_temperature: float = 1.5
    policy_uniform_share: float = 0.05
    policy_noise_scale: float = 0.5
    policy_cpa_cvr_guess: float = 0.08

    @property
    def n_slots(self) -> int:
        return len(self.position_bias)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class World:
    """Static arrays indexed by dense position (0..n-1); public ids are position + ID_OFFSETS[kind]."""

    config: SimulationConfig
    model: TrueModel
    category_popularity: np.ndarray  # (C,)
    brand_category: np.ndarray  # (B,) category position
    brand_latent: np.ndarray  # (B, LATENT_DIM)
    item_category: np.ndarray  # (I,), items sorted by category
    item_brand: np.ndarray  # (I,)
    item_price: np.ndarray  # (I,)
    category_item_start: np.ndarray  # (C+1,) CSR offsets into the item arrays
    item_popularity_cumsum: np.ndarray  # (I,) cumulative popularity in item order
    user_gender: np.ndarray
    user_age_band: np.ndarray
    user_city_tier: np.ndarray
    user_occupation: np.ndarray
    user_first_seen_day: np.ndarray  # (U,) day index
    user_activity_level: np.ndarray  # (U,) mean 1
    user_log_base_interest: np.ndarray  # (U, C)
    user_drift_phase: np.ndarray  # (U, C, DRIFT_COMPONENTS)
    category_drift_frequency: np.ndarray  # (C, DRIFT_COMPONENTS) radians per day
    user_latent: np.ndarray  # (U, LATENT_DIM)
    user_log_price_preference: np.ndarray  # (U,)
    user_peak_hour: np.ndarray  # (U,)
    user_hour_concentration: np.ndarray  # (U,)
    user_policy_noise: np.ndarray  # (U, POLICY_NOISE_DIM)
    campaign_advertiser: np.ndarray  # (N,) advertiser position
    campaign_is_cpa: np.ndarray  # (N,) bool
    campaign_bid: np.ndarray
    campaign_daily_budget: np.ndarray
    campaign_start_day: np.ndarray  # day index, inclusive
    campaign_end_day: np.ndarray  # day index, inclusive; may lie past the last simulated day
    ad_campaign: np.ndarray  # (A,)
    ad_category: np.ndarray
    ad_brand: np.ndarray
    ad_price: np.ndarray
    ad_quality: np.ndarray
    ad_policy_noise: np.ndarray  # (A, POLICY_NOISE_DIM)
    ad_policy_bias: np.ndarray  # (A,)
    # Worlds saved before ads launched mid-flight or had title terms load without them (None).
    ad_launch_day: np.ndarray | None = None  # (A,) first day the ad can be served, >= its campaign's start
    ad_title_terms: np.ndarray | None = None  # (A, 2) positions in TITLE_TERMS
    # Creatives (title variants), sorted by ad; None in worlds saved before ads had them.
    creative_ad: np.ndarray | None = None  # (M,) ad position
    creative_phrase: np.ndarray | None = None  # (M,) position in creatives.CREATIVE_PHRASES
    creative_appeal: np.ndarray | None = None  # (M,) click-logit offset, centred within its ad

    # ---- sizes and ids -------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.user_first_seen_day)

    @property
    def n_ads(self) -> int:
        return len(self.ad_campaign)

    @property
    def n_categories(self) -> int:
        return len(self.category_popularity)

    @staticmethod
    def ids(kind: str, positions: np.ndarray) -> np.ndarray:
        return np.asarray(positions, dtype=np.int64) + ID_OFFSETS[kind]

    # ---- time-varying user state ---------------------------------------------------------------
    def interest(self, user_idx: np.ndarray, day_index: np.ndarray | int) -> np.ndarray:
        """Category interest shares (rows sum to 1) of each user on each (row-wise) day index."""
        user_idx = np.asarray(user_idx)
        day = np.broadcast_to(np.asarray(day_index, dtype=np.float64), user_idx.shape)
        # Random Fourier features of the day index: a smooth, stationary drift defined for every day.
        angle = self.category_drift_frequency[None, :, :] * day[:, None, None] + self.user_drift_phase[user_idx]
        drift = np.sqrt(2.0 / DRIFT_COMPONENTS) * np.cos(angle).sum(axis=2)
        log_interest = self.user_log_base_interest[user_idx] + self.model.drift_strength * drift
        log_interest -= log_interest.max(axis=1, keepdims=True)
        shares = np.exp(log_interest)
        return shares / shares.sum(axis=1, keepdims=True)

    def hour_profile(self, user_idx: np.ndarray) -> np.ndarray:
        """(n, 24) probability that an activity of the user starts in each hour."""
        hours = np.arange(HOURS_PER_DAY)
        angle = 2 * np.pi * (hours[None, :] - self.user_peak_hour[user_idx, None]) / HOURS_PER_DAY
        weights = np.exp(self.user_hour_concentration[user_idx, None] * np.cos(angle))
        weights /= weights.sum(axis=1, keepdims=True)
        return 0.95 * weights + 0.05 / HOURS_PER_DAY

    def brand_affinity(self, user_idx: np.ndarray, brand_idx: np.ndarray) -> np.ndarray:
        """Row-wise affinity of user i for brand i, roughly standard normal."""
        return np.einsum("nk,nk->n", self.user_latent[user_idx], self.brand_latent[brand_idx]) / np.sqrt(LATENT_DIM)

    def price_fit(self, user_idx: np.ndarray, price: np.ndarray) -> np.ndarray:
        """0 at the user's preferred price, -1 one `price_fit_width` away in log price, floored at -3."""
        distance = (np.log1p(price) - self.user_log_price_preference[user_idx]) / self.model.price_fit_width
        # The floor keeps far-off prices unlikely rather than impossible.
        return np.maximum(-(distance**2), -3.0)

    # ---- true probabilities --------------------------------------------------------------------
    def interest_feature(self, interest_share: np.ndarray) -> np.ndarray:
        return np.log1p(self.n_categories * interest_share)

    def click_logit(self, interest_share: np.ndarray, user_idx: np.ndarray, ad_idx: np.ndarray, hour: np.ndarray) -> np.ndarray:
        """Click logit before session intent and position, given the user's interest in the ad's category."""
        m = self.model
        personal_hour = np.cos(2 * np.pi * (np.asarray(hour) - self.user_peak_hour[user_idx]) / HOURS_PER_DAY)
        evening = np.cos(2 * np.pi * (np.asarray(hour) - 20.0) / HOURS_PER_DAY)
        return (
            m.ctr_intercept
            + m.ctr_interest * self.interest_feature(interest_share)
            + m.ctr_brand_affinity * self.brand_affinity(user_idx, self.ad_brand[ad_idx])
            + m.ctr_quality * self.ad_quality[ad_idx]
            + m.ctr_personal_hour * personal_hour
            + m.ctr_evening * evening
        )

    def position_factor(self, slot: np.ndarray) -> np.ndarray:
        slot = np.asarray(slot)
        if slot.size and (slot.min() < 1 or slot.max() > self.model.n_slots):
            raise ValueError(f"slot must be in 1..{self.model.n_slots}, got values {np.unique(slot)[:10]}")
        return np.asarray(self.model.position_bias)[slot - 1]

    def pctr_given_intent(self, click_logit: np.ndarray, intent_matches: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """The click probability a shown impression was actually drawn with (session intent known)."""
        return self.position_factor(slot) * _sigmoid(click_logit + self.model.ctr_session_intent * intent_matches)

    def expected_pctr(self, click_logit: np.ndarray, interest_share: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """Click probability averaged over the session intent, which is drawn from the day's interest."""
        with_intent = _sigmoid(click_logit + self.model.ctr_session_intent)
        without_intent = _sigmoid(click_logit)
        return self.position_factor(slot) * (interest_share * with_intent + (1 - interest_share) * without_intent)

    def pcvr(self, interest_share: np.ndarray, user_idx: np.ndarray, ad_idx: np.ndarray) -> np.ndarray:
        """Probability that a click converts (eventually, within the conversion delay)."""
        m = self.model
        logit = (
            m.cvr_intercept
            + m.cvr_interest * self.interest_feature(interest_share)
            + m.cvr_brand_affinity * self.brand_affinity(user_idx, self.ad_brand[ad_idx])
            + m.cvr_price_fit * self.price_fit(user_idx, self.ad_price[ad_idx])
            + m.cvr_quality * self.ad_quality[ad_idx]
        )
        return _sigmoid(logit)

    # ---- logging policy ------------------------------------------------------------------------
    def policy_scores(self, interest: np.ndarray, user_idx: np.ndarray, ads: np.ndarray) -> np.ndarray:
        """(n_users, len(ads)) softmax logits of the logging policy: log bid value + its noisy click model.

        float32 and factored (interest feature per category, one matmul for taste and noise) because
        this runs for every impression against every eligible ad.
        """
        m = self.model
        category_feature = (m.ctr_interest * self.interest_feature(interest)).astype(np.float32)
        user_factors = np.hstack([
            m.ctr_brand_affinity / np.sqrt(LATENT_DIM) * self.user_latent[user_idx],
            m.policy_noise_scale * self.user_policy_noise[user_idx],
        ]).astype(np.float32)
        ad_factors = np.hstack([self.brand_latent[self.ad_brand[ads]], self.ad_policy_noise[ads]]).astype(np.float32)
        bid = self.campaign_bid[self.ad_campaign[ads]]
        value = np.where(self.campaign_is_cpa[self.ad_campaign[ads]], bid * m.policy_cpa_cvr_guess, bid)
        ad_static = (np.log(value) + m.ctr_quality * self.ad_quality[ads] + m.policy_noise_scale * self.ad_policy_bias[ads])
        scores = user_factors @ ad_factors.T
        scores += category_feature[:, self.ad_category[ads]]
        scores += ad_static.astype(np.float32)[None, :]
        scores *= np.float32(1.0 / m.policy_temperature)
        return scores

    def creative_ranges(self) -> tuple[np.ndarray, np.ndarray]:
        """(A,) first creative position of each ad and its number of creatives (0: the ad has none)."""
        count = np.bincount(self.creative_ad, minlength=self.n_ads) if self.creative_ad is not None \
            else np.zeros(self.n_ads, dtype=np.int64)
        return np.cumsum(count) - count, count

    def appeal_of(self, creative_idx: np.ndarray) -> np.ndarray:
        """Click-logit offset of each shown creative (0 where none, -1)."""
        creative_idx = np.asarray(creative_idx, dtype=np.int64)
        if self.creative_appeal is None or not len(self.creative_appeal):
            return np.zeros(len(creative_idx))
        return np.where(creative_idx >= 0, self.creative_appeal[np.maximum(creative_idx, 0)], 0.0)

    def campaign_active(self, day_index: int) -> np.ndarray:
        return (self.campaign_start_day <= day_index) & (self.campaign_end_day >= day_index)

    def ad_launched(self, day_index: int) -> np.ndarray:
        """(A,) bool: has the ad launched by this day (its campaign's flight and budget aside)?"""
        if self.ad_launch_day is None:
            return np.ones(self.n_ads, dtype=bool)
        return self.ad_launch_day <= day_index

    def campaign_landing_day(self) -> np.ndarray:
        """Campaigns land on day 0 or on their start day if later."""
        return np.maximum(self.campaign_start_day, 0)

    def ad_landing_day(self) -> np.ndarray:
        """Ads land on the day they launch (day 0 for those live from the start)."""
        launch = self.campaign_start_day[self.ad_campaign] if self.ad_launch_day is None else self.ad_launch_day
        return np.maximum(launch, 0)

    # ---- persistence ---------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name not in ("config", "model") and getattr(self, f.name) is not None}
        np.savez_compressed(directory / "world.npz", **arrays)
        payload = {"simulation": self.config.to_json_dict(), "true_model": dataclasses.asdict(self.model)}
        (directory / "config.json").write_text(json.dumps(payload, indent=2))

    @classmethod
    def load(cls, directory: Path) -> "World":
        directory = Path(directory)
        world_file, config_file = directory / "world.npz", directory / "config.json"
        for required in (world_file, config_file):
            if not required.exists():
                raise FileNotFoundError(f"{required} is missing: run the simulator (adflow-simulate) to create the ground truth")
        payload = json.loads(config_file.read_text())
        config = SimulationConfig.from_json_dict(payload["simulation"])
        model_values = dict(payload["true_model"])
        model_values["position_bias"] = tuple(model_values["position_bias"])
        with np.load(world_file) as arrays:
            fields = {name: arrays[name] for name in arrays.files}
        return cls(config=config, model=TrueModel(**model_values), **fields)


def build_world(config: SimulationConfig, model: TrueModel | None = None) -> World:
    """Draw the static world from the seed."""
    model = model or TrueModel(policy_uniform_share=config.exploration_share)
    rng = np.random.default_rng([config.seed, 0])
    C, B, I, U = config.n_categories, config.n_brands, config.n_items, config.n_users
    N, A, K = config.n_campaigns, config.n_ads, config.n_advertisers

    # Catalog: skewed category popularity, every category has at least one brand and one item.
    category_popularity = rng.dirichlet(np.full(C, 1.0)) * 0.8 + 0.2 / C
    brand_category = np.concatenate([np.arange(C), rng.choice(C, size=B - C, p=category_popularity)])
    brand_category.sort()
    brand_start = np.searchsorted(brand_category, np.arange(C + 1))
    brand_latent = rng.normal(size=(B, LATENT_DIM))
    brand_price_offset = rng.normal(0.0, 0.3, size=B)
    category_price_mu = rng.normal(3.2, 0.8, size=C)  # log price level per category

    # The first item of each brand guarantees coverage; the rest pick a brand of their category.
    extra_category = rng.choice(C, size=I - B, p=category_popularity)
    n_brands_in_category = brand_start[extra_category + 1] - brand_start[extra_category]
    extra_brand = brand_start[extra_category] + (rng.random(I - B) * n_brands_in_category).astype(np.int64)
    item_category = np.concatenate([brand_category, extra_category])
    item_brand = np.concatenate([np.arange(B), extra_brand])
    order = np.lexsort((item_brand, item_category))
    item_category, item_brand = item_category[order], item_brand[order]
    category_item_start = np.searchsorted(item_category, np.arange(C + 1))
    item_price = np.round(np.exp(category_price_mu[item_category] + brand_price_offset[item_brand] + rng.normal(0, 0.4, I)), 2)
    item_popularity = rng.pareto(1.5, size=I) + 0.05

    # Users: demographic segments shape the interest prior so profile features carry signal.
    user_gender = rng.choice(len(GENDERS), size=U, p=[0.47, 0.47, 0.06])
    user_age_band = rng.choice(len(AGE_BANDS), size=U, p=[0.18, 0.32, 0.24, 0.15, 0.11])
    user_city_tier = rng.choice(4, size=U, p=[0.2, 0.3, 0.3, 0.2]) + 1
    user_occupation = rng.choice(len(OCCUPATIONS), size=U)
    segment = user_gender * len(AGE_BANDS) + user_age_band
    segment_preference = rng.dirichlet(np.full(C, 0.7), size=len(GENDERS) * len(AGE_BANDS))
    segment_preference = 0.5 * segment_preference + 0.5 * category_popularity
    alpha = 0.4 * C * segment_preference[segment]  # sparse personal interests around the segment's taste
    raw_interest = rng.gamma(alpha)
    raw_interest /= raw_interest.sum(axis=1, keepdims=True)
    base_interest = 0.95 * raw_interest + 0.05 * category_popularity
    user_log_base_interest = np.log(base_interest).astype(np.float32)
    user_drift_phase = rng.uniform(0, 2 * np.pi, size=(U, C, DRIFT_COMPONENTS)).astype(np.float32)
    category_drift_frequency = 2 * np.pi / rng.uniform(6.0, 30.0, size=(C, DRIFT_COMPONENTS))
    late = rng.random(U) >= config.initial_user_share
    user_first_seen_day = np.where(late & (config.n_days > 1), rng.integers(1, max(config.n_days, 2), size=U), 0)
    user_activity_level = rng.gamma(2.0, 0.5, size=U)
    user_latent = rng.normal(size=(U, LATENT_DIM))
    user_log_price_preference = rng.normal(3.3, 0.8, size=U)
    peak_centers = np.array([8.5, 12.5, 20.5])
    user_peak_hour = (peak_centers[rng.choice(3, size=U, p=[0.2, 0.25, 0.55])] + rng.normal(0, 1.5, U)) % HOURS_PER_DAY
    user_hour_concentration = rng.uniform(1.0, 3.0, size=U)
    user_policy_noise = rng.normal(size=(U, POLICY_NOISE_DIM)) / np.sqrt(POLICY_NOISE_DIM)

    # Advertisers sell a few brands of one home category; campaigns belong to advertisers.
    advertiser_category = rng.choice(C, size=K, p=category_popularity)
    advertiser_brands = []
    for category in advertiser_category:
        candidates = np.arange(brand_start[category], brand_start[category + 1])
        advertiser_brands.append(rng.choice(candidates, size=min(3, len(candidates)), replace=False))
    campaign_advertiser = np.concatenate([np.arange(K), rng.integers(0, K, size=N - K)])
    rng.shuffle(campaign_advertiser)
    campaign_is_cpa = rng.random(N) < 0.45
    campaign_bid = np.where(campaign_is_cpa, rng.lognormal(np.log(12.0), 0.4, N), rng.lognormal(np.log(0.8), 0.4, N)).round(2)
    campaign_bid = np.maximum(campaign_bid, 0.01)
    campaign_start_day, campaign_end_day = _flight_dates(rng, N, config.n_days)

    ad_campaign = np.concatenate([np.arange(N), rng.integers(0, N, size=A - N)])
    rng.shuffle(ad_campaign)
    ad_brand = np.array([rng.choice(advertiser_brands[campaign_advertiser[c]]) for c in ad_campaign], dtype=np.int64)
    ad_category = brand_category[ad_brand]
    ad_price = np.round(np.exp(category_price_mu[ad_category] + brand_price_offset[ad_brand] + rng.normal(0, 0.4, A)), 2)
    ad_quality = rng.normal(size=A)
    ad_policy_noise = rng.normal(size=(A, POLICY_NOISE_DIM)) / np.sqrt(POLICY_NOISE_DIM)
    ad_policy_bias = rng.normal(size=A)

    ad_launch_day, ad_title_terms = _ad_launches_and_titles(config, campaign_start_day[ad_campaign],
                                                            campaign_end_day[ad_campaign], ad_quality)

    # Budgets around each campaign's fair share of expected spend, so some run out and some do not.
    expected_impressions = U * config.daily_active_prob * config.impressions_per_active_day
    clicks_per_campaign = expected_impressions * 0.035 / N
    expected_units = np.where(campaign_is_cpa, clicks_per_campaign * 0.09, clicks_per_campaign)
    # At least three charges per day, so one conversion cannot overshoot a budget several times over.
    campaign_daily_budget = (campaign_bid * np.maximum(expected_units * rng.uniform(0.6, 2.5, N), 3.0)).round(2)

    return World(
        config=config, model=model, category_popularity=category_popularity, brand_category=brand_category,
        brand_latent=brand_latent, item_category=item_category, item_brand=item_brand, item_price=item_price,
        category_item_start=category_item_start, item_popularity_cumsum=np.cumsum(item_popularity),
        user_gender=user_gender, user_age_band=user_age_band, user_city_tier=user_city_tier,
        user_occupation=user_occupation, user_first_seen_day=user_first_seen_day,
        user_activity_level=user_activity_level, user_log_base_interest=user_log_base_interest,
        user_drift_phase=user_drift_phase, category_drift_frequency=category_drift_frequency,
        user_latent=user_latent, user_log_price_preference=user_log_price_preference, user_peak_hour=user_peak_hour,
        user_hour_concentration=user_hour_concentration, user_policy_noise=user_policy_noise,
        campaign_advertiser=campaign_advertiser, campaign_is_cpa=campaign_is_cpa, campaign_bid=campaign_bid,
        campaign_daily_budget=campaign_daily_budget, campaign_start_day=campaign_start_day,
        campaign_end_day=campaign_end_day, ad_campaign=ad_campaign, ad_category=ad_category, ad_brand=ad_brand,
        ad_price=ad_price, ad_quality=ad_quality, ad_policy_noise=ad_policy_noise, ad_policy_bias=ad_policy_bias,
        ad_launch_day=ad_launch_day, ad_title_terms=ad_title_terms,
        **dict(zip(("creative_ad", "creative_phrase", "creative_appeal"), draw_creatives(config, A))),
    )


def _ad_launches_and_titles(config: SimulationConfig, flight_start: np.ndarray, flight_end: np.ndarray,
                            quality: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Launch days (a share of ads launch after their campaign started, so new ads with no history
    keep arriving) and two title terms per ad. From their own random stream: the rest of the world
    is drawn exactly as before they existed."""
    rng = np.random.default_rng([config.seed, 3])
    last_day = config.n_days - 1
    first, last = flight_start + 1, np.minimum(flight_end, last_day)
    late = (rng.random(len(quality)) < config.late_ad_share) & (first <= last)
    offset = (rng.random(len(quality)) * np.maximum(last - first + 1, 1)).astype(np.int64)
    launch = np.where(late, first + offset, flight_start).astype(np.int64)
    loadings = np.array([loading for _, loading in TITLE_TERMS])
    weights = np.exp(quality[:, None] * loadings[None, :])
    # Two distinct terms per ad, drawn without replacement in proportion to their weights (Gumbel top-2).
    keys = np.log(weights) - np.log(-np.log(rng.random(weights.shape)))
    terms = np.argsort(-keys, axis=1)[:, :2]
    return launch, terms


def _flight_dates(rng: np.random.Generator, n_campaigns: int, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Most campaigns cover every day; some start late, some end early, some run past the last day."""
    last = n_days - 1
    kind = rng.choice(3, size=n_campaigns, p=[0.7, 0.15, 0.15])  # full, late start, early end
    start = np.where(kind == 1, rng.integers(1, max(n_days // 2, 1) + 1, size=n_campaigns), 0)
    start = np.minimum(start, last)
    early_end = rng.integers(max(n_days // 2, 1) - 1, max(last - 1, 1), size=n_campaigns, endpoint=True)
    end = np.where(kind == 2, np.maximum(early_end, start), last)
    runs_past = (kind != 2) & (rng.random(n_campaigns) < 0.35)
    end = np.where(runs_past, last + rng.integers(7, 31, size=n_campaigns), end)
    return start.astype(np.int64), end.astype(np.int64)
