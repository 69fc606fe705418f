"""Point-in-time behaviour sequences: the last L events of a user strictly before a query time.

Vectorized over all query rows: events are sorted by (user, ts) once, one searchsorted on a
(user, time-rank) key finds where each query's history ends, and fancy indexing gathers the last L.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
import torch

from ml.encoder.config import EncoderConfig
from ml.encoder.vocab import (
    AD_NAMESPACE, BRAND_NAMESPACE, CATEGORY_NAMESPACE, EVENT_TYPES, ITEM_NAMESPACE, PAD,
    event_type_tokens, gap_bucket_tokens, hash_ids,
)


@dataclass(frozen=True)
class SequenceArrays:
    """Left-padded token ids [N, L]; the most recent event sits in the last column."""
    item: np.ndarray
    category: np.ndarray
    brand: np.ndarray
    event_type: np.ndarray
    gap: np.ndarray
    valid: np.ndarray  # bool, False on padding

    def __len__(self) -> int:
        return len(self.item)

    def take(self, rows) -> "SequenceArrays":
        return SequenceArrays(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def to_tensors(self) -> dict[str, torch.Tensor]:
        return {f.name: torch.from_numpy(np.ascontiguousarray(getattr(self, f.name))) for f in fields(self)}


def _to_ns(timestamps) -> np.ndarray:
    return pd.to_datetime(pd.Series(timestamps)).astype("datetime64[ns]").to_numpy().view(np.int64)


def event_tokens(item_ids, ad_ids, category_ids, brand_ids, config: EncoderConfig) -> dict[str, np.ndarray]:
    """Events' item, category and brand tokens. An ad event is represented by its ad id, so it shares
    the embedding with that ad as a target."""
    item_tokens = hash_ids(item_ids, config.item_buckets, ITEM_NAMESPACE)
    ad_id_tokens = hash_ids(ad_ids, config.item_buckets, AD_NAMESPACE)
    return {"item": np.where(ad_id_tokens != PAD, ad_id_tokens, item_tokens),
            "category": hash_ids(category_ids, config.category_buckets, CATEGORY_NAMESPACE),
            "brand": hash_ids(brand_ids, config.brand_buckets, BRAND_NAMESPACE)}


@dataclass(frozen=True)
class EventIndex:
    """An event stream sorted by (user, ts) with its tokens computed once."""
    user_keys: pd.Index  # code -> user_key
    user_code: np.ndarray  # per event, sorted
    ts_ns: np.ndarray
    item: np.ndarray
    category: np.ndarray
    brand: np.ndarray
    event_type: np.ndarray
    gap_buckets: int
    event_id: np.ndarray  # -1 where the stream has none

    def user_rows(self, user_key: str) -> slice:
        """Where the user's events sit (empty if the user has none)."""
        code = self.user_keys.get_indexer([user_key])[0]
        if code < 0:
            return slice(0, 0)
        return slice(*np.searchsorted(self.user_code, [code, code + 1], side="left"))

    def user_tokens(self, rows: slice) -> "UserTokens":
        return UserTokens(self.ts_ns[rows], self.item[rows], self.category[rows], self.brand[rows],
                          self.event_type[rows], self.event_id[rows])

    @classmethod
    def from_event_stream(cls, event_stream: pd.DataFrame, config: EncoderConfig) -> "EventIndex":
        user_codes, user_keys = pd.factorize(event_stream["user_key"].astype(str), sort=True)
        ts_ns = _to_ns(event_stream["ts"])
        # Ties in ts are broken by event type and id, so the order never depends on how the
        # warehouse happened to return the rows.
        tie_breakers = [pd.factorize(event_stream[column], sort=True)[0] for column in ("event_id", "event_type")
                        if column in event_stream]
        order = np.lexsort((*tie_breakers, ts_ns, user_codes))
        n = len(event_stream)
        ad_ids = event_stream["ad_id"] if "ad_id" in event_stream else pd.Series([None] * n)
        tokens = event_tokens(event_stream["item_id"], ad_ids, event_stream["category_id"], event_stream["brand_id"],
                              config)
        return cls(
            user_keys=pd.Index(user_keys),
            user_code=user_codes[order].astype(np.int64),
            ts_ns=ts_ns[order],
            item=tokens["item"][order],
            category=tokens["category"][order],
            brand=tokens["brand"][order],
            event_type=event_type_tokens(event_stream["event_type"])[order],
            gap_buckets=config.gap_buckets,
            event_id=(event_stream["event_id"].fillna(-1).to_numpy(dtype=np.int64) if "event_id" in event_stream
                      else np.full(n, -1, dtype=np.int64))[order],
        )

    def cut(self, user_keys, query_ts, max_len: int) -> SequenceArrays:
        """For each (user_key, query_ts) row: the last `max_len` events with ts < query_ts."""
        query_codes = self.user_keys.get_indexer(pd.Series(user_keys).astype(str))
        query_ns = _to_ns(query_ts)
        n_queries = len(query_codes)
        # Dense time ranks over events and queries together make an int64 (user, time) key that
        # one searchsorted can use; side='left' stops before events at exactly query_ts.
        _, ranks = np.unique(np.concatenate([self.ts_ns, query_ns]), return_inverse=True)
        n_ranks = int(ranks.max()) + 2 if len(ranks) else 1
        event_key = self.user_code * n_ranks + ranks[: len(self.ts_ns)]
        known = query_codes >= 0
        query_key = np.where(known, query_codes, 0) * n_ranks + ranks[len(self.ts_ns):]
        end = np.searchsorted(event_key, query_key, side="left")
        start = np.searchsorted(self.user_code, np.where(known, query_codes, 0), side="left")
        end = np.where(known, end, start)  # unknown users: empty history

        positions = end[:, None] - max_len + np.arange(max_len)[None, :]
        valid = positions >= start[:, None]
        positions = np.where(valid, positions, 0)
        if len(self.ts_ns) == 0:
            valid = np.zeros((n_queries, max_len), dtype=bool)

        def gather(tokens: np.ndarray) -> np.ndarray:
            if len(tokens) == 0:
                return np.zeros((n_queries, max_len), dtype=np.int64)
            return np.where(valid, tokens[positions], PAD)

        gap_seconds = (query_ns[:, None] - gather(self.ts_ns)) / 1e9
        return SequenceArrays(
            item=gather(self.item),
            category=gather(self.category),
            brand=gather(self.brand),
            event_type=gather(self.event_type),
            gap=np.where(valid, gap_bucket_tokens(gap_seconds, self.gap_buckets), PAD),
            valid=valid,
        )


# EventIndex breaks ties in ts by the event type's name, then the event id: the same order from tokens.
_TYPE_NAME_RANK = np.argsort(np.argsort(["", *EVENT_TYPES, "~unknown"]))


@dataclass(frozen=True)
class UserTokens:
    """One user's events as EventIndex holds them, in its order: what real-time serving keeps, so a
    request cuts one sequence without rebuilding an index."""
    ts_ns: np.ndarray
    item: np.ndarray
    category: np.ndarray
    brand: np.ndarray
    event_type: np.ndarray
    event_id: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_ns)

    def merged(self, other: "UserTokens") -> "UserTokens":
        """Both users' (the same user's) events in EventIndex's order: ts, event type name, event id."""
        return UserTokens(**{f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                             for f in fields(self)}).in_order()

    def in_order(self) -> "UserTokens":
        order = np.lexsort((self.event_id, _TYPE_NAME_RANK[self.event_type], self.ts_ns))
        return UserTokens(**{f.name: getattr(self, f.name)[order] for f in fields(self)})

    def sequence_before(self, query_ns: int, max_len: int, gap_buckets: int) -> SequenceArrays:
        """EventIndex.cut for this user and one query time: the last `max_len` events strictly before it."""
        end = int(np.searchsorted(self.ts_ns, query_ns, side="left"))
        start = max(0, end - max_len)
        padding = max_len - (end - start)

        def padded(tokens: np.ndarray) -> np.ndarray:  # the last events, left-padded
            return np.concatenate([np.full(padding, PAD, dtype=np.int64), tokens.astype(np.int64)])[None, :]

        gaps = gap_bucket_tokens((query_ns - self.ts_ns[start:end]) / 1e9, gap_buckets)
        return SequenceArrays(item=padded(self.item[start:end]), category=padded(self.category[start:end]),
                              brand=padded(self.brand[start:end]), event_type=padded(self.event_type[start:end]),
                              gap=padded(gaps),
                              valid=(np.arange(max_len) >= padding)[None, :])


def ad_tokens(ad_ids, ads: pd.DataFrame, config: EncoderConfig) -> dict[str, np.ndarray]:
    """Target-ad tokens (ad id, category, brand); ads missing from `ads` keep only their id token."""
    ad_ids = pd.Series(ad_ids).reset_index(drop=True)
    catalog = ads.drop_duplicates("ad_id", keep="last").set_index("ad_id")
    return {
        "ad": hash_ids(ad_ids, config.item_buckets, AD_NAMESPACE),
        "category": hash_ids(ad_ids.map(catalog["category_id"]), config.category_buckets, CATEGORY_NAMESPACE),
        "brand": hash_ids(ad_ids.map(catalog["brand_id"]), config.brand_buckets, BRAND_NAMESPACE),
    }
