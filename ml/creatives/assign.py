"""A creative for every scheduled (or served) ad: one Thompson draw per row from the day's creative
evidence, with the probability of the creative picked, which the impression logs as
`creative_propensity` so off-policy evaluation can judge the selector later."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.creatives.selector import ThompsonSelector

CREATIVE_COLUMNS = ["creative_id", "creative_title", "creative_probability"]
UNKNOWN_SEGMENT = "unknown"
CANONICAL_ORDER = ["user_key", "ad_id", "hour", "slot"]  # a user without a segment row (as dbt's user_segments names it)


@dataclass(frozen=True)
class CreativeInputs:
    """The warehouse's creative state as of its last dbt run (all empty for a log without creatives)."""

    stats: pd.DataFrame  # creative_stats: ad_id, segment, creative_id, impressions, clicks
    catalog: pd.DataFrame  # creative_id, ad_id, title
    segments: pd.DataFrame  # user_key, segment

    @classmethod
    def read(cls, conn) -> "CreativeInputs":
        return cls(
            # Ordered: a creative's position within its ad decides which posterior draw is its own.
            stats=conn.sql("select ad_id, segment, creative_id, impressions, clicks from main.creative_stats "
                           "order by ad_id, segment, creative_id").df(),
            catalog=conn.sql("select creative_id, ad_id, title from main.stg_raw__creatives "
                             "order by ad_id, creative_id").df(),
            segments=conn.sql("select user_key, segment from main.user_segments order by user_key").df(),
        )

    def selector(self) -> ThompsonSelector:
        return ThompsonSelector(self.stats, self.catalog[["ad_id", "creative_id"]])


def draw_seed(day: dt.date) -> int:
    """Seed of one day's draws: a rerun of the same day picks the same creatives."""
    return day.toordinal()


def assign_creatives(rows: pd.DataFrame, creatives: CreativeInputs, rng: np.random.Generator) -> pd.DataFrame:
    """`rows` (user_key, ad_id, ...) with creative_id, creative_title, creative_probability appended.

    Ads without creatives keep their own title: creative_id, creative_title and creative_probability
    are null on those rows (the contract's empty creative_id).
    """
    if rows.empty:
        return rows.assign(creative_id=pd.Series(dtype="Int64"), creative_title=pd.Series(dtype=object),
                           creative_probability=pd.Series(dtype=float))
    # Draws in a canonical row order, so the same rows in any physical order get the same creatives.
    order = rows.sort_values([c for c in CANONICAL_ORDER if c in rows.columns], kind="stable").index
    segment = (rows.loc[order, ["user_key"]].merge(creatives.segments[["user_key", "segment"]].drop_duplicates("user_key"),
                                                   on="user_key", how="left")["segment"]
               .fillna(UNKNOWN_SEGMENT).to_numpy(object))
    drawn = creatives.selector().choose(rows.loc[order, "ad_id"].to_numpy(), segment, rng)
    picks = drawn.set_axis(order).reindex(rows.index)
    creative = pd.array(picks["creative_id"].to_numpy(object), dtype="Int64")
    titles = dict(zip(creatives.catalog["creative_id"].tolist(), creatives.catalog["title"].tolist()))
    has_creative = ~pd.isna(creative)
    return rows.assign(
        creative_id=creative,
        creative_title=np.array([titles.get(c) if known else None for c, known in zip(creative, has_creative)],
                                dtype=object),
        creative_probability=np.where(has_creative, picks["probability"].to_numpy(float), np.nan),
    )
