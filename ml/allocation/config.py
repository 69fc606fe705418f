"""Knobs of candidate retrieval and allocation, in one small dataclass."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AllocationConfig:
    slots_per_user: int = 4                      # K: ad slots per user per day
    max_impressions_per_user_ad: int = 1         # frequency cap per (user, ad) per day
    max_impressions_per_user_campaign: int = 2   # frequency cap per (user, campaign) per day
    max_ads_per_advertiser_per_user: int = 2     # m: diversity, impressions of one advertiser per user
    candidates_per_user: int = 50                # N: interest candidates from retrieval
    exploration_per_user: int = 5                # fresh / under-delivered ads added per user
    category_per_user: int = 20                  # ads of the user's most viewed categories added (non-learned)
    active_window_days: int = 7                  # an ad younger than this counts as fresh for exploration
    pacing_tolerance: float = 0.10               # hourly spend may run this far ahead of the plan
    seed: int = 0
    dual_iterations: int = 30                    # bisection steps on the budget dual prices
    refill_rounds: int = 6                       # greedy passes that refill slots freed by the repair
    retrieval_chunk_users: int = 8192            # users per matmul block (memory: chunk x n_ads floats)

    def __post_init__(self) -> None:
        for name in ("slots_per_user", "max_impressions_per_user_ad", "max_impressions_per_user_campaign",
                     "max_ads_per_advertiser_per_user", "candidates_per_user", "retrieval_chunk_users"):
            if getattr(self, name) < 1:
                raise ValueError(f"AllocationConfig.{name} must be >= 1, got {getattr(self, name)}")
        if min(self.exploration_per_user, self.category_per_user, self.dual_iterations, self.refill_rounds) < 0:
            raise ValueError("exploration_per_user, category_per_user, dual_iterations and refill_rounds must be >= 0")
        if self.pacing_tolerance < 0:
            raise ValueError(f"pacing_tolerance must be >= 0, got {self.pacing_tolerance}")
