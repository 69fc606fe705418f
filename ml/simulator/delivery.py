"""Ad delivery under the logging policy: impressions with known propensities, clicks, conversions.

The day is served in 15-minute pacing blocks so campaign budgets bind the way they do in a real ad
server: once a campaign has spent its daily budget its ads leave the eligible set for the rest of
the day (overspend is bounded by one block's clicks and conversions).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ml.simulator.creatives import CREATIVE_CHOICE_STREAM, ChooseCreatives, uniform_creatives
from ml.simulator.sessions import MICROS_PER_HOUR, MICROS_PER_SECOND, DaySessions, repeat_rows
from ml.simulator.world import World

SLOT_SHARES = np.array([0.4, 0.3, 0.2, 0.1])
PACING_BLOCK_US = 15 * 60 * MICROS_PER_SECOND
BLOCKS_PER_DAY = 24 * MICROS_PER_HOUR // PACING_BLOCK_US
POLICY_CHUNK_ROWS = 4096  # bounds the (impressions x ads) score matrix held at once
MAX_CONVERSION_DELAY_DAYS = 7
SAME_SESSION_CONVERSION_SHARE = 0.55
MEAN_QUICK_CONVERSION_MINUTES = 30.0
MEAN_SLOW_CONVERSION_DAYS = 1.5


@dataclass(frozen=True)
class DayDelivery:
    """Impressions of one day (sorted by ts) and the clicks/conversions they caused (any later day)."""

    user_idx: np.ndarray
    ad_idx: np.ndarray
    ts_us: np.ndarray
    slot: np.ndarray
    propensity: np.ndarray
    creative_idx: np.ndarray  # creative shown (-1: the ad has none)
    creative_propensity: np.ndarray  # its selection probability (NaN without a creative)
    true_pctr: np.ndarray  # the probability the click was drawn with (session intent known, creative shown)
    true_pcvr: np.ndarray
    click_impression: np.ndarray  # row into the impression arrays
    click_ts_us: np.ndarray
    click_cost: np.ndarray
    conversion_impression: np.ndarray
    conversion_ts_us: np.ndarray
    conversion_cost: np.ndarray
    campaign_spend: np.ndarray  # (n_campaigns,) charged today for budget pacing

    @property
    def n_impressions(self) -> int:
        return len(self.ts_us)


def choose_ads(
    world: World, interest_rows: np.ndarray, user_idx: np.ndarray, eligible: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:  # the logging policy (a ChooseAds)
    """Sample one eligible ad per row from the logging policy; return (ad positions, propensities).

    The policy is a mixture: with probability `policy_uniform_share` a uniform eligible ad, else a
    softmax draw; the recorded propensity is the mixture probability of the ad actually shown.
    """
    share = world.model.policy_uniform_share
    candidates = np.flatnonzero(eligible)
    scores = world.policy_scores(interest_rows, user_idx, candidates)
    scores -= scores.max(axis=1, keepdims=True)
    np.exp(scores, out=scores)
    totals = scores.sum(axis=1, dtype=np.float64)
    cumulative = np.cumsum(scores, axis=1)
    draws = rng.random(len(user_idx)) * cumulative[:, -1]
    picked = np.minimum((cumulative < draws[:, None].astype(np.float32)).sum(axis=1), len(candidates) - 1)
    explore = rng.random(len(user_idx)) < share
    picked[explore] = rng.integers(0, len(candidates), size=int(explore.sum()))
    softmax_probability = scores[np.arange(len(picked)), picked] / totals
    propensity = (1 - share) * softmax_probability + share / len(candidates)
    return candidates[picked], propensity


def conversion_delays_us(n: int, rng: np.random.Generator) -> np.ndarray:
    """Most conversions follow within the hour; the rest over days, never later than the attribution cap."""
    quick = rng.random(n) < SAME_SESSION_CONVERSION_SHARE
    seconds = np.where(
        quick,
        60 + rng.exponential(MEAN_QUICK_CONVERSION_MINUTES * 60, n),
        rng.exponential(MEAN_SLOW_CONVERSION_DAYS * 86400, n),
    )
    seconds = np.clip(seconds, 1.0, MAX_CONVERSION_DELAY_DAYS * 86400 - 1)
    return (seconds * MICROS_PER_SECOND).astype(np.int64)


@dataclass(frozen=True)
class Opportunities:
    """Impression opportunities of one day (sorted by ts): who, when, in which session and slot."""

    rows: np.ndarray  # active-user row of DaySessions
    session: np.ndarray
    ts_us: np.ndarray
    slot: np.ndarray

    def take(self, keep: np.ndarray) -> "Opportunities":
        return Opportunities(self.rows[keep], self.session[keep], self.ts_us[keep], self.slot[keep])


def draw_opportunities(world: World, sessions: DaySessions, rng: np.random.Generator) -> Opportunities:
    impressions_per_row = rng.poisson(sessions.activity_level * world.config.impressions_per_active_day)
    rows = repeat_rows(impressions_per_row)
    session = sessions.pick_sessions(rows, rng)
    ts = sessions.times_within(session, rng) // 1000 * 1000
    order = np.argsort(ts, kind="stable")
    rows, session, ts = rows[order], session[order], ts[order]
    slot = rng.choice(len(SLOT_SHARES), size=len(rows), p=SLOT_SHARES) + 1
    return Opportunities(rows, session, ts, slot)


class ChooseAds(Protocol):
    """A serving policy: one ad per opportunity among the eligible ones, with its probability.

    Returns (ad positions, propensities); an ad position of -1 leaves the opportunity unfilled.
    """

    def __call__(self, world: World, interest_rows: np.ndarray, user_idx: np.ndarray, eligible: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]: ...


def generate_delivery(world: World, sessions: DaySessions, rng: np.random.Generator) -> DayDelivery:
    """The day served by the logging policy under the campaigns' full daily budgets."""
    opportunities = draw_opportunities(world, sessions, rng)
    budget = np.where(world.campaign_active(sessions.day_index), world.campaign_daily_budget, 0.0)
    return serve(world, sessions, opportunities, choose_ads, budget, rng)


def serve(world: World, sessions: DaySessions, opportunities: Opportunities, choose: ChooseAds,
          budget: np.ndarray, rng: np.random.Generator,
          choose_creatives: ChooseCreatives = uniform_creatives) -> DayDelivery:
    """Fill the opportunities with `choose` (the creative of each ad shown with `choose_creatives`), draw
    clicks and conversions from the truth, pace `budget` (per campaign; 0 for campaigns out of flight)
    in 15-minute blocks."""
    config = world.config
    rows, session, ts, slot = opportunities.rows, opportunities.session, opportunities.ts_us, opportunities.slot
    hour = (ts - sessions.day_start_us) // MICROS_PER_HOUR

    remaining_budget = np.asarray(budget, dtype=np.float64).copy()
    ad_idx = np.full(len(rows), -1, dtype=np.int64)
    propensity = np.zeros(len(rows))
    creative = np.full(len(rows), -1, dtype=np.int64)
    creative_propensity = np.full(len(rows), np.nan)
    # Its own stream, so the day's other draws are the same with or without creatives.
    creative_rng = np.random.default_rng([world.config.seed, CREATIVE_CHOICE_STREAM, sessions.day_index])
    click_bid = np.where(world.campaign_is_cpa, 0.0, world.campaign_bid)
    conversion_bid = np.where(world.campaign_is_cpa, world.campaign_bid, 0.0)
    clicked = np.zeros(len(rows), dtype=bool)
    converted = np.zeros(len(rows), dtype=bool)
    pctr = np.zeros(len(rows))
    pcvr = np.zeros(len(rows))
    users = sessions.active_users[rows]

    launched = world.ad_launched(sessions.day_index)
    block_of_row = (ts - sessions.day_start_us) // PACING_BLOCK_US
    block_bounds = np.searchsorted(block_of_row, np.arange(BLOCKS_PER_DAY + 1))
    for b in range(BLOCKS_PER_DAY):
        eligible = (remaining_budget > 0)[world.ad_campaign] & launched
        if not eligible.any():
            break
        for lo in range(block_bounds[b], block_bounds[b + 1], POLICY_CHUNK_ROWS):
            part = slice(lo, min(lo + POLICY_CHUNK_ROWS, block_bounds[b + 1]))
            ad_idx[part], propensity[part] = choose(world, sessions.interest[rows[part]], users[part], eligible, rng)
            filled = np.flatnonzero(ad_idx[part] >= 0) + lo
            chosen = ad_idx[filled]
            creative[filled], creative_propensity[filled] = choose_creatives(world, users[filled], chosen, creative_rng)
            interest_share = sessions.interest[rows[filled], world.ad_category[chosen]]
            logit = world.click_logit(interest_share, users[filled], chosen, hour[filled]) + world.appeal_of(creative[filled])
            intent_matches = sessions.session_intent[session[filled]] == world.ad_category[chosen]
            pctr[filled] = world.pctr_given_intent(logit, intent_matches, slot[filled])
            pcvr[filled] = world.pcvr(interest_share, users[filled], chosen)
        block = slice(block_bounds[b], block_bounds[b + 1])
        clicked[block] = rng.random(block.stop - block.start) < pctr[block]
        converted[block] = clicked[block] & (rng.random(block.stop - block.start) < pcvr[block])
        campaign = world.ad_campaign[ad_idx[block]]
        served_in_block = ad_idx[block] >= 0
        spend = np.bincount(campaign[served_in_block], weights=(clicked[block] * click_bid[campaign])[served_in_block],
                            minlength=config.n_campaigns)
        # Conversions are charged when they happen, but pacing reserves their cost at click time.
        spend += np.bincount(campaign[served_in_block],
                             weights=(converted[block] * conversion_bid[campaign])[served_in_block],
                             minlength=config.n_campaigns)
        remaining_budget -= spend

    served = ad_idx >= 0  # opportunities after every budget ran out (or that a policy left empty) go unfilled
    keep = np.flatnonzero(served)
    ad_idx, users, ts, slot = ad_idx[keep], users[keep], ts[keep], slot[keep]
    propensity, pctr, pcvr = propensity[keep], pctr[keep], pcvr[keep]
    creative, creative_propensity = creative[keep], creative_propensity[keep]
    clicked, converted = clicked[keep], converted[keep]

    click_rows = np.flatnonzero(clicked)
    click_ts = ts[click_rows] + ((1.0 + rng.exponential(15.0, len(click_rows))) * MICROS_PER_SECOND).astype(np.int64)
    click_ts = click_ts // 1000 * 1000
    conversion_rows = np.flatnonzero(converted)
    conversion_ts = click_ts[np.searchsorted(click_rows, conversion_rows)] + conversion_delays_us(len(conversion_rows), rng)
    conversion_ts = conversion_ts // 1000 * 1000
    campaign = world.ad_campaign[ad_idx]
    return DayDelivery(
        user_idx=users, ad_idx=ad_idx, ts_us=ts, slot=slot, propensity=propensity, creative_idx=creative,
        creative_propensity=creative_propensity, true_pctr=pctr, true_pcvr=pcvr,
        click_impression=click_rows, click_ts_us=click_ts, click_cost=click_bid[campaign[click_rows]],
        conversion_impression=conversion_rows, conversion_ts_us=conversion_ts,
        conversion_cost=conversion_bid[campaign[conversion_rows]],
        campaign_spend=np.asarray(budget, dtype=np.float64) - remaining_budget,
    )
