"""Turn raw ids and event types into embedding indices. Index 0 is always padding / missing.

Ids are hashed into a fixed number of buckets rather than looked up in a fitted dictionary, so an
item or ad first seen after training still maps to a (shared) bucket instead of failing.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

PAD = 0
# Known event types; anything else maps to UNKNOWN_EVENT so a new type in the logs is not an error.
EVENT_TYPES = ("view", "click", "cart", "fav", "buy", "impression", "ad_click", "conversion")
UNKNOWN_EVENT = len(EVENT_TYPES) + 1
N_EVENT_TYPE_TOKENS = len(EVENT_TYPES) + 2

# Namespaces keep item 7 and ad 7 in different buckets; ads share the item table with behaviour
# items so an ad the user clicked before and the same ad as a target share one embedding.
ITEM_NAMESPACE = 0x1F3A_5C7E_9B2D_4F61
AD_NAMESPACE = 0x6A09_E667_F3BC_C908
CATEGORY_NAMESPACE = 0x3C6E_F372_FE94_F82B
BRAND_NAMESPACE = 0x510E_527F_ADE6_82D1


def hash_ids(ids, buckets: int, namespace: int) -> np.ndarray:
    """Hash integer (or string) ids into [1, buckets - 1]; nulls become PAD."""
    if isinstance(ids, np.ndarray) and ids.dtype.kind in "iuf":  # numbers (NaN: null) without pandas' overhead
        missing = np.isnan(ids) if ids.dtype.kind == "f" else np.zeros(len(ids), dtype=bool)
        raw = np.where(missing, 0, ids).astype(np.int64).view(np.uint64) ^ np.uint64(namespace)
        tokens = (pd.util.hash_array(raw) % np.uint64(buckets - 1)).astype(np.int64) + 1
        tokens[missing] = PAD
        return tokens
    values = pd.Series(ids).reset_index(drop=True)
    missing = values.isna().to_numpy()
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.isna().to_numpy().sum() == missing.sum():
        raw = numeric.fillna(0).astype("int64").to_numpy().view(np.uint64) ^ np.uint64(namespace)
        hashed = pd.util.hash_array(raw)
    else:  # non-numeric ids: hash their text with the namespace as key
        key = f"{namespace:016x}"[:16]
        hashed = pd.util.hash_array(values.astype(str).to_numpy(dtype=object), hash_key=key)
    tokens = (hashed % np.uint64(buckets - 1)).astype(np.int64) + 1
    tokens[missing] = PAD
    return tokens


_EVENT_TYPE_TOKEN = {name: i + 1 for i, name in enumerate(EVENT_TYPES)}


def event_type_tokens(event_types) -> np.ndarray:
    codes, kinds = pd.factorize(np.asarray(event_types, dtype=object))  # the few distinct types looked up once
    tokens = np.array([_EVENT_TYPE_TOKEN.get(kind, UNKNOWN_EVENT) for kind in kinds] + [PAD], dtype=np.int64)
    return tokens[codes]  # code -1 (null) takes the last entry, PAD


def gap_bucket_tokens(gap_seconds: np.ndarray, gap_buckets: int) -> np.ndarray:
    """Log2 buckets of the gap in minutes: recent events are told apart finely, old ones coarsely."""
    minutes = np.maximum(np.asarray(gap_seconds, dtype=np.float64), 0.0) / 60.0
    return np.clip(1 + np.floor(np.log2(1.0 + minutes)), 1, gap_buckets - 1).astype(np.int64)
