"""Users' events as the request path reads them: per encoder, the tokens of each user's sequence
(`ml.encoder.sequences.UserTokens`) and the arrays the live behavior features count
(`ml.rankers.live_features.UserEvents`). Built once for the loaded event stream and once per posted
batch, so a request slices and merges small arrays instead of rebuilding frames."""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
import pyarrow as pa

from ml.encoder.sequences import UserTokens, event_tokens
from ml.encoder.vocab import event_type_tokens
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


# The stream in the order EventIndex sorts it (user, ts, event type, event id; nulls first as
# pd.factorize ranks them), users numbered in user_key order, ids as float (NaN: none).
_STREAM_USERS = "select distinct user_key from main.user_event_stream order by user_key"
_STREAM_ROWS = """
with users as (select user_key, cast(row_number() over (order by user_key) - 1 as integer) as user_code
               from (select distinct user_key from main.user_event_stream))
select users.user_code, epoch_ns(stream.ts) as ts_ns, stream.event_type,
       cast(stream.item_id as double) as item_id, cast(stream.ad_id as double) as ad_id,
       cast(stream.category_id as double) as category_id, cast(stream.brand_id as double) as brand_id,
       coalesce(stream.event_id, -1) as event_id
from main.user_event_stream as stream join users using (user_key)
order by users.user_code, ts_ns, stream.event_type nulls first, stream.event_id nulls first
"""
_TOKEN_COLUMNS = ("item", "category", "brand", "event_type")


class StreamHistories:
    """Every user's history in the warehouse's event stream: columns sorted by user as EventIndex
    orders them, read in batches straight into arrays (a frame of tens of millions of events with its
    strings would cost several times the arrays), with each user's rows beside them."""

    def __init__(self, user_keys: list[str], user_code: np.ndarray, event_id: np.ndarray,
                 tokens: dict[str, UserTokens], events: UserEvents):
        self.rows = _ranges(user_code, user_keys)
        self.event_id = event_id  # -1 where the stream has none
        self.tokens, self.events = tokens, events
        self.n_events = len(user_code)

    @classmethod
    def read(cls, conn, encoders: dict, batch_rows: int = 1_000_000) -> "StreamHistories":
        """main.user_event_stream from an open warehouse connection, tokenized for every encoder in `encoders`."""
        user_keys = [key for (key,) in conn.sql(_STREAM_USERS).fetchall()]
        n = conn.sql("select count(*) from main.user_event_stream").fetchall()[0][0]
        user_code, ts_ns, event_id = np.empty(n, np.int32), np.empty(n, np.int64), np.empty(n, np.int64)
        is_behavior, is_buy = np.empty(n, bool), np.empty(n, bool)
        category_id, brand_id = np.empty(n, np.float64), np.empty(n, np.float64)
        # Token ids fit in int32 (bucket counts); requests widen the few they cut.
        token_columns = {run: {name: np.empty(n, np.int32) for name in _TOKEN_COLUMNS} for run in encoders}
        filled = 0
        for batch in conn.sql(_STREAM_ROWS).to_arrow_reader(batch_rows):
            rows = slice(filled, filled + batch.num_rows)
            column = {name: batch.column(name).to_numpy(zero_copy_only=False) for name in batch.schema.names}
            user_code[rows], ts_ns[rows], event_id[rows] = column["user_code"], column["ts_ns"], column["event_id"]
            kinds = column["event_type"]
            is_behavior[rows], is_buy[rows] = kinds != AD_CLICK, kinds == "buy"
            category_id[rows], brand_id[rows] = column["category_id"], column["brand_id"]
            type_tokens = event_type_tokens(kinds)
            for run, encoder in encoders.items():
                tokens = event_tokens(column["item_id"], column["ad_id"], column["category_id"], column["brand_id"],
                                      encoder.config)
                for name in ("item", "category", "brand"):
                    token_columns[run][name][rows] = tokens[name]
                token_columns[run]["event_type"][rows] = type_tokens
            filled += batch.num_rows
        if filled != n:
            raise RuntimeError(f"user_event_stream changed while read: {filled} rows, {n} counted")
        tokens = {run: UserTokens(ts_ns, columns["item"], columns["category"], columns["brand"],
                                  columns["event_type"], event_id) for run, columns in token_columns.items()}
        return cls(user_keys, user_code, event_id, tokens,
                   UserEvents(ts_ns, is_behavior, is_buy, category_id, brand_id))

    def __contains__(self, user_key: str) -> bool:
        return user_key in self.rows

    def users(self) -> list[str]:
        return list(self.rows)

    def of(self, user_key: str) -> UserHistory:
        rows = self.rows.get(user_key, slice(0, 0))
        return UserHistory({run: _take(tokens, rows) for run, tokens in self.tokens.items()},
                           UserEvents(**{f.name: getattr(self.events, f.name)[rows] for f in fields(UserEvents)}))


def _ranges(sorted_codes: np.ndarray, keys) -> dict[str, slice]:
    """key -> its rows, for rows sorted by code (code i stands for keys[i])."""
    bounds = np.searchsorted(sorted_codes, np.arange(len(keys) + 1), side="left")
    return {str(key): slice(int(bounds[code]), int(bounds[code + 1])) for code, key in enumerate(keys)}


def posted_histories(tables: dict[str, pa.Table], user_keys: dict[int, str], ad_catalog: pd.DataFrame,
                     encoders: dict) -> dict[str, UserHistory]:
    """Posted contract rows (serving.events.contract_tables: behavior events, and ad clicks as
    user_event_stream's 'ad_click' rows carrying the ad's category and brand) as each user's
    history: the tokens EventIndex would make of the same rows in user_event_stream, in its order,
    computed with arrays for the whole batch. `user_keys` maps each user_id to its pseudonym."""
    behavior, ad_events = tables["behavior_events"], tables["ad_events"]
    if ad_events.num_rows:
        clicks = ad_events.filter(pa.array(_values(ad_events, "event_type") == "click"))
    else:
        clicks = ad_events
    click_ads = _values(clicks, "ad_id")
    catalog = ad_catalog.reindex(click_ads) if len(click_ads) else None

    def joined(name: str, click_values, dtype) -> np.ndarray:
        return np.concatenate([np.asarray(_values(behavior, name), dtype=dtype), np.asarray(click_values, dtype=dtype)])

    def catalog_ids(name: str) -> np.ndarray:  # nullable ids as float (NaN: none), as the stream's nullable columns
        return catalog[name].to_numpy(dtype=float, na_value=np.nan) if catalog is not None else np.empty(0)

    n_behavior, n_clicks = behavior.num_rows, clicks.num_rows
    user_id = joined("user_id", _values(clicks, "user_id"), np.int64)
    ts_ns = joined("ts", _values(clicks, "ts"), "datetime64[ns]").view(np.int64)
    kinds = joined("event_type", [AD_CLICK] * n_clicks, object)
    category = joined("category_id", catalog_ids("category_id"), float)
    brand = joined("brand_id", catalog_ids("brand_id"), float)
    item = np.concatenate([np.asarray(_values(behavior, "item_id"), dtype=float), np.full(n_clicks, np.nan)])
    ad = np.concatenate([np.full(n_behavior, np.nan), np.asarray(click_ads, dtype=float)])
    event_id = joined("event_id", _values(clicks, "event_id"), np.int64)
    events = UserEvents(ts_ns, kinds != AD_CLICK, kinds == "buy", category, brand)
    tokens = {}
    for run, encoder in encoders.items():
        columns = event_tokens(item, ad, category, brand, encoder.config)
        tokens[run] = UserTokens(ts_ns, columns["item"], columns["category"], columns["brand"],
                                 event_type_tokens(kinds), event_id)
    histories = {}
    for user in np.unique(user_id):
        rows = np.flatnonzero(user_id == user)
        histories[user_keys[int(user)]] = UserHistory(
            {run: _take(user_tokens, rows).in_order() for run, user_tokens in tokens.items()},
            UserEvents(*(getattr(events, f.name)[rows] for f in fields(UserEvents))))
    return histories


def _values(rows: pa.Table, name: str) -> np.ndarray:
    """A column as numpy: nullable integers as float with NaN for null, strings as objects."""
    return rows.column(name).to_numpy()


def _take(tokens: UserTokens, rows: np.ndarray) -> UserTokens:
    return UserTokens(*(getattr(tokens, f.name)[rows] for f in fields(UserTokens)))
