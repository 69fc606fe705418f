"""Organic behavior: item views driven by session intent and interest, and the funnel after a view."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.simulator.sessions import MICROS_PER_DAY, MICROS_PER_SECOND, DaySessions, repeat_rows, sample_rows_categorical
from ml.simulator.world import World

BEHAVIOR_TYPES = np.array(["view", "click", "cart", "fav", "buy"])
VIEW, CLICK, CART, FAV, BUY = range(5)
INTENT_FOCUS = 0.6  # share of a session's views inside its intent category
ITEM_CANDIDATES = 4  # popular items a user looks over before picking one by taste
ITEM_CHUNK_ROWS = 100_000  # bounds the (views x candidates x latent) temporaries at benchmark scale
P_CLICK_AFTER_VIEW = 0.3
P_CART_AFTER_CLICK = 0.22
P_FAV_AFTER_CLICK = 0.1
P_BUY_AFTER_CART = 0.35


@dataclass(frozen=True)
class BehaviorEvents:
    user_idx: np.ndarray
    ts_us: np.ndarray
    event_type: np.ndarray  # index into BEHAVIOR_TYPES
    item_idx: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_us)


def sample_items(world: World, categories: np.ndarray, user_idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Popular items of the category, the one picked among a few candidates by brand and price taste."""
    start = world.category_item_start[categories]
    end = world.category_item_start[categories + 1]
    cum = world.item_popularity_cumsum
    below = np.where(start > 0, cum[np.maximum(start - 1, 0)], 0.0)
    total = cum[end - 1] - below
    n = len(categories)
    targets = below[:, None] + rng.random((n, ITEM_CANDIDATES)) * total[:, None]
    candidates = np.searchsorted(cum, targets, side="right")
    candidates = np.clip(candidates, start[:, None], (end - 1)[:, None])
    users = np.repeat(user_idx, ITEM_CANDIDATES)
    taste = world.brand_affinity(users, world.item_brand[candidates.ravel()]) + 0.5 * world.price_fit(
        users, world.item_price[candidates.ravel()]
    )
    gumbel = rng.gumbel(size=taste.shape)
    best = np.argmax((taste + gumbel).reshape(n, ITEM_CANDIDATES), axis=1)
    return candidates[np.arange(n), best]


def generate_behavior(world: World, sessions: DaySessions, rng: np.random.Generator) -> BehaviorEvents:
    config = world.config
    views_per_row = rng.poisson(sessions.activity_level * config.views_per_active_day)
    rows = repeat_rows(views_per_row)
    session = sessions.pick_sessions(rows, rng)
    users = sessions.active_users[rows]

    from_intent = rng.random(len(rows)) < INTENT_FOCUS
    wandering = sample_rows_categorical(np.cumsum(sessions.interest, axis=1), rows, rng)
    category = np.where(from_intent, sessions.session_intent[session], wandering)
    item = np.concatenate([
        sample_items(world, category[lo : lo + ITEM_CHUNK_ROWS], users[lo : lo + ITEM_CHUNK_ROWS], rng)
        for lo in range(0, len(users), ITEM_CHUNK_ROWS)
    ] or [np.zeros(0, dtype=np.int64)])
    view_ts = sessions.times_within(session, rng)

    # Funnel: taste raises the odds of carting and buying; every step follows the previous one in time.
    affinity = world.brand_affinity(users, world.item_brand[item])
    price_fit = world.price_fit(users, world.item_price[item])
    clicked = rng.random(len(item)) < P_CLICK_AFTER_VIEW
    carted = clicked & (rng.random(len(item)) < P_CART_AFTER_CLICK * (1 + 0.5 * np.tanh(affinity)))
    faved = clicked & (rng.random(len(item)) < P_FAV_AFTER_CLICK * (1 + 0.5 * np.tanh(affinity)))
    bought = carted & (rng.random(len(item)) < P_BUY_AFTER_CART * np.exp(0.3 * price_fit))

    def later(ts: np.ndarray, mean_seconds: float) -> np.ndarray:
        return ts + ((1.0 + rng.exponential(mean_seconds, len(ts))) * MICROS_PER_SECOND).astype(np.int64)

    click_ts = later(view_ts, 20)
    cart_ts = later(click_ts, 60)
    fav_ts = later(click_ts, 45)
    buy_ts = later(cart_ts, 120)
    parts = [
        (view_ts, VIEW, np.ones_like(clicked)),
        (click_ts, CLICK, clicked),
        (cart_ts, CART, carted),
        (fav_ts, FAV, faved),
        (buy_ts, BUY, bought),
    ]
    ts = np.concatenate([times[mask] for times, _, mask in parts])
    event_type = np.concatenate([np.full(mask.sum(), code, dtype=np.int8) for _, code, mask in parts])
    event_user = np.concatenate([users[mask] for _, _, mask in parts])
    event_item = np.concatenate([item[mask] for _, _, mask in parts])
    # Sessions end >= 10 minutes before midnight; the clamp only catches the rare long funnel tail.
    ts = np.minimum(ts, sessions.day_start_us + MICROS_PER_DAY - MICROS_PER_SECOND)
    ts = ts // 1000 * 1000  # millisecond precision, as logs usually carry
    order = np.argsort(ts, kind="stable")
    return BehaviorEvents(user_idx=event_user[order], ts_us=ts[order], event_type=event_type[order], item_idx=event_item[order])
