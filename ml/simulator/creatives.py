"""Creatives: title variants of a share of the ads, each with a true appeal, and the logging policy's
choice among them.

An ad with variants is always shown through one of them; its other ads keep their single title
(no creative). A creative's appeal is an offset on the click logit, centred within its ad so the
ad's own truth (what the oracle and the schedule evaluation use) is its creatives' mean.
Everything here comes from its own random streams: the rest of the world and of each day is
drawn exactly as before creatives existed.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from ml.simulator.config import SimulationConfig
    from ml.simulator.world import World

# The phrase a variant adds to its ad's title; which one says nothing of its appeal (copy is tested, not known).
CREATIVE_PHRASES = ("shop now", "see why people love it", "limited time", "a new look", "save today",
                    "discover more", "made to last", "treat yourself")
CREATIVES_STREAM = 4  # world stream of the creatives themselves
CREATIVE_CHOICE_STREAM = 5  # day stream of the logging policy's creative draws


def draw_creatives(config: "SimulationConfig", n_ads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(creative_ad, creative_phrase, creative_appeal), creatives sorted by ad: `creative_ad_share` of the
    ads get 2 or 3 variants with distinct phrases and appeals ~ N(0, creative_appeal_sd) centred per ad."""
    rng = np.random.default_rng([config.seed, CREATIVES_STREAM])
    with_variants = rng.random(n_ads) < config.creative_ad_share
    per_ad = np.where(with_variants, rng.integers(2, 4, size=n_ads), 0)
    creative_ad = np.repeat(np.arange(n_ads), per_ad)
    keys = rng.random((n_ads, len(CREATIVE_PHRASES)))
    rank_in_ad = np.arange(len(creative_ad)) - np.repeat(np.cumsum(per_ad) - per_ad, per_ad)
    creative_phrase = np.argsort(keys, axis=1)[creative_ad, rank_in_ad]
    appeal = rng.normal(0.0, config.creative_appeal_sd, size=len(creative_ad))
    ad_mean = np.bincount(creative_ad, weights=appeal, minlength=n_ads) / np.maximum(per_ad, 1)
    return creative_ad.astype(np.int64), creative_phrase.astype(np.int64), appeal - ad_mean[creative_ad]


class ChooseCreatives(Protocol):
    """A creative per served impression (-1: the ad has none) and its selection probability (NaN then)."""

    def __call__(self, world: "World", user_idx: np.ndarray, ad_idx: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]: ...


def uniform_creatives(world: "World", user_idx: np.ndarray, ad_idx: np.ndarray,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The logging policy: one of the ad's creatives uniformly at random (a ChooseCreatives)."""
    first, count = world.creative_ranges()
    ad_idx = np.asarray(ad_idx, dtype=np.int64)
    k = count[np.maximum(ad_idx, 0)] * (ad_idx >= 0)
    draws = rng.random(len(ad_idx))
    creative = np.where(k > 0, first[np.maximum(ad_idx, 0)] + (draws * k).astype(np.int64), -1)
    probability = np.divide(1.0, k, out=np.full(len(k), np.nan), where=k > 0)
    return creative, probability


class ScheduledCreatives:
    """The schedule's creative for each (user, ad) pair it planned, with the probability its selector drew
    it (a ChooseCreatives); the logging policy's uniform draw for anything else it serves."""

    def __init__(self, world: "World", user_idx: np.ndarray, ad_idx: np.ndarray, creative_idx: np.ndarray,
                 probability: np.ndarray) -> None:
        planned = np.asarray(creative_idx) >= 0
        keys = np.asarray(user_idx, np.int64)[planned] * world.n_ads + np.asarray(ad_idx, np.int64)[planned]
        self.keys, first = np.unique(keys, return_index=True)  # the first planned row of a repeated pair
        self.creative = np.asarray(creative_idx, np.int64)[planned][first]
        self.probability = np.asarray(probability, float)[planned][first]

    def __call__(self, world: "World", user_idx: np.ndarray, ad_idx: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        creative, probability = uniform_creatives(world, user_idx, ad_idx, rng)
        keys = np.asarray(user_idx, np.int64) * world.n_ads + np.asarray(ad_idx, np.int64)
        at = np.minimum(np.searchsorted(self.keys, keys), max(len(self.keys) - 1, 0))
        planned = (self.keys[at] == keys) if len(self.keys) else np.zeros(len(keys), bool)
        creative[planned], probability[planned] = self.creative[at[planned]], self.probability[at[planned]]
        return creative, probability
