"""What to simulate: scale, calendar, activity rates and output format, validated up front."""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

FILE_FORMATS = ("parquet", "csv")


@dataclass(frozen=True)
class SimulationConfig:
    n_users: int = 5000
    n_ads: int = 500
    n_campaigns: int = 60
    n_advertisers: int = 25
    n_days: int = 14
    start_date: dt.date = dt.date(2026, 11, 1)
    n_categories: int = 40
    n_brands: int = 200
    n_items: int = 20000
    seed: int = 42
    # Share of users present on day 1; the rest arrive uniformly over the later days.
    initial_user_share: float = 0.85
    # Probability that a present user is active on a given day (scaled by personal activity level).
    daily_active_prob: float = 0.9
    sessions_per_active_day: float = 2.5
    # Item views per active user-day; the funnel (click/cart/fav/buy) adds ~40% more events on top.
    views_per_active_day: float = 10.0
    impressions_per_active_day: float = 6.0
    # The logging policy's uniform-exploration share: every eligible ad has at least share / n_eligible
    # propensity, so off-policy estimates of any schedule have support (larger: more exploration traffic).
    exploration_share: float = 0.05
    # Share of ads launched after their campaign started (on a uniform later day of its flight):
    # ads with no history keep arriving, the cold start content features are for.
    late_ad_share: float = 0.3
    # Share of ads with 2-3 creatives (title variants) and the spread of their true appeal (click-logit
    # offsets centred per ad): what dynamic creative selection has to find.
    creative_ad_share: float = 0.4
    creative_appeal_sd: float = 0.3
    file_format: str = "parquet"

    def __post_init__(self) -> None:
        if isinstance(self.start_date, str):
            object.__setattr__(self, "start_date", dt.date.fromisoformat(self.start_date))
        positive = ("n_users", "n_ads", "n_campaigns", "n_advertisers", "n_days", "n_categories", "n_brands", "n_items")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"SimulationConfig.{name} must be a positive integer, got {value!r}")
        if self.n_advertisers > self.n_campaigns:
            raise ValueError(
                f"n_advertisers ({self.n_advertisers}) must not exceed n_campaigns ({self.n_campaigns}): "
                "every advertiser runs at least one campaign"
            )
        if self.n_campaigns > self.n_ads:
            raise ValueError(f"n_campaigns ({self.n_campaigns}) must not exceed n_ads ({self.n_ads}): every campaign needs an ad")
        if self.n_categories > self.n_brands:
            raise ValueError(f"n_brands ({self.n_brands}) must be >= n_categories ({self.n_categories}): each category needs a brand")
        if self.n_brands > self.n_items:
            raise ValueError(f"n_items ({self.n_items}) must be >= n_brands ({self.n_brands}): each brand needs an item")
        for name in ("late_ad_share", "creative_ad_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SimulationConfig.{name} must be in [0, 1], got {getattr(self, name)!r}")
        if not self.creative_appeal_sd >= 0.0:
            raise ValueError(f"SimulationConfig.creative_appeal_sd must be >= 0, got {self.creative_appeal_sd!r}")
        for name in ("initial_user_share", "daily_active_prob", "exploration_share"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"SimulationConfig.{name} must be in (0, 1], got {value!r}")
        for name in ("sessions_per_active_day", "views_per_active_day", "impressions_per_active_day"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"SimulationConfig.{name} must be > 0, got {value!r}")
        if self.file_format not in FILE_FORMATS:
            raise ValueError(f"file_format must be one of {FILE_FORMATS}, got {self.file_format!r}")

    @property
    def end_date(self) -> dt.date:
        """Last simulated day (inclusive)."""
        return self.start_date + dt.timedelta(days=self.n_days - 1)

    def day(self, day_index: int) -> dt.date:
        return self.start_date + dt.timedelta(days=day_index)

    def to_json_dict(self) -> dict[str, object]:
        values = dataclasses.asdict(self)
        values["start_date"] = self.start_date.isoformat()
        return values

    @classmethod
    def from_json_dict(cls, values: dict[str, object]) -> "SimulationConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
