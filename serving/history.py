"""Users' events as the request path reads them: per encoder, the tokens of each user's sequence
(`ml.encoder.sequences.UserTokens`) and the arrays the live behavior features count
(`ml.rankers.live_features.UserEvents`). Built once for the loaded event stream and once per posted
batch, so a request slices and merges small arrays instead of rebuilding frames."""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from ml.encoder.sequences import EventIndex, UserTokens
from ml.encoder.vocab import AD_NAMESPACE, BRAND_NAMESPACE, CATEGORY_NAMESPACE, ITEM_NAMESPACE, PAD, event_type_tokens, hash_ids
from ml.rankers.live_features import AD_CLICK, UserEvents


@dataclass(frozen=True)
class UserHistory:
    tokens: dict[str, UserTokens]  # encoder run id -> the user's tokens in sequence order
    events: UserEvents

    def __len__(self) -> int:
        return len(self.events.ts_ns)

    def merged(self, other: "UserHistory") -> "UserHistory":
        return UserHistory({run: tokens.merged(other.tokens[run]) for run, tokens in self.tokens.items()},
                           UserEvents(**{f.name: np.concatenate([getattr(self.events, f.name),
                                                                 getattr(other.events, f.name)])
                                         for f in fields(UserEvents)}))

    @property
    def latest_ns(self) -> int | None:
        return int(self.events.ts_ns.max()) if len(self) else None


class StreamHistories:
    """Every user's history in an event stream (user_event_stream rows), indexed once."""

    def __init__(self, stream: pd.DataFrame, encoders: dict):
        self.indexes = {run: EventIndex.from_event_stream(stream, encoder.config) for run, encoder in encoders.items()}
        self.token_rows = {run: _ranges(index.user_code, index.user_keys) for run, index in self.indexes.items()}
        # The live-feature arrays grouped by user (their order within a user does not matter).
        codes, keys = pd.factorize(stream["user_key"], sort=True)
        order = np.argsort(codes, kind="stable")
        events = UserEvents.of(stream)  # arrays reordered, not the frame: a stream can hold tens of millions of rows
        self.events = UserEvents(*(getattr(events, f.name)[order] for f in fields(UserEvents)))
        self.event_rows = _ranges(codes[order], keys)
        self.n_events = len(stream)

    def __contains__(self, user_key: str) -> bool:
        return user_key in self.event_rows

    def users(self) -> list[str]:
        return list(self.event_rows)

    def of(self, user_key: str) -> UserHistory:
        rows = self.event_rows.get(user_key, slice(0, 0))
        return UserHistory({run: index.user_tokens(self.token_rows[run].get(user_key, slice(0, 0)))
                            for run, index in self.indexes.items()},
                           UserEvents(**{f.name: getattr(self.events, f.name)[rows] for f in fields(UserEvents)}))


def _ranges(sorted_codes: np.ndarray, keys) -> dict[str, slice]:
    """key -> its rows, for rows sorted by code (code i stands for keys[i])."""
    bounds = np.searchsorted(sorted_codes, np.arange(len(keys) + 1), side="left")
    return {str(key): slice(int(bounds[code]), int(bounds[code + 1])) for code, key in enumerate(keys)}


def posted_histories(frames: dict[str, pd.DataFrame], user_keys: dict[int, str], ad_catalog: pd.DataFrame,
                     encoders: dict) -> dict[str, UserHistory]:
    """Posted contract rows (behavior events, and ad clicks as user_event_stream's 'ad_click' rows
    carrying the ad's category and brand) as each user's history: the tokens EventIndex would make
    of the same rows in user_event_stream, in its order, computed with arrays for the whole batch.
    `user_keys` maps each user_id to its pseudonym."""
    behavior, ad_events = frames["behavior_events"], frames["ad_events"]
    clicks = ad_events[(ad_events["event_type"] == "click").to_numpy()]
    catalog = ad_catalog.reindex(clicks["ad_id"].to_numpy())
    n_behavior = len(behavior)

    def joined(behavior_values, click_values, dtype) -> np.ndarray:
        return np.concatenate([np.asarray(behavior_values, dtype=dtype), np.asarray(click_values, dtype=dtype)])

    def ids(values: pd.Series) -> np.ndarray:  # nullable ids as float (NaN: none), as the stream's nullable columns
        return values.to_numpy(dtype=float, na_value=np.nan)

    user_id = joined(behavior["user_id"], clicks["user_id"], np.int64)
    ts_ns = joined(behavior["ts"].to_numpy(dtype="datetime64[ns]").view(np.int64),
                   clicks["ts"].to_numpy(dtype="datetime64[ns]").view(np.int64), np.int64)
    kinds = joined(behavior["event_type"], [AD_CLICK] * len(clicks), object)
    category = np.concatenate([ids(behavior["category_id"]), ids(catalog["category_id"])])
    brand = np.concatenate([ids(behavior["brand_id"]), ids(catalog["brand_id"])])
    item = np.concatenate([ids(behavior["item_id"]), np.full(len(clicks), np.nan)])
    ad = np.concatenate([np.full(n_behavior, np.nan), ids(clicks["ad_id"])])
    event_id = joined(behavior["event_id"], clicks["event_id"], np.int64)
    events = UserEvents(ts_ns, kinds != AD_CLICK, kinds == "buy", category, brand)
    tokens = {}
    for run, encoder in encoders.items():
        config = encoder.config
        ad_tokens = hash_ids(ad, config.item_buckets, AD_NAMESPACE)
        tokens[run] = UserTokens(ts_ns, np.where(ad_tokens != PAD, ad_tokens,  # an ad click is its ad's token
                                                 hash_ids(item, config.item_buckets, ITEM_NAMESPACE)),
                                 hash_ids(category, config.category_buckets, CATEGORY_NAMESPACE),
                                 hash_ids(brand, config.brand_buckets, BRAND_NAMESPACE),
                                 event_type_tokens(kinds), event_id)
    histories = {}
    for user in np.unique(user_id):
        rows = np.flatnonzero(user_id == user)
        histories[user_keys[int(user)]] = UserHistory(
            {run: _take(user_tokens, rows).in_order() for run, user_tokens in tokens.items()},
            UserEvents(*(getattr(events, f.name)[rows] for f in fields(UserEvents))))
    return histories


def _take(tokens: UserTokens, rows: np.ndarray) -> UserTokens:
    return UserTokens(*(getattr(tokens, f.name)[rows] for f in fields(UserTokens)))
