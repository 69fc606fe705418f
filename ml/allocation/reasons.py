"""Short human-readable reasons for scheduled rows, built from whatever explanation columns exist.

e.g. 'matched interest: category 12; top features: user_category_events_7d, ad_ctr_7d'.
"""
from __future__ import annotations

import pandas as pd

TOP_FEATURE_COLUMNS = ["top1_feature", "top2_feature", "top3_feature"]  # ml.rankers.explain output


def _text(column: pd.Series) -> pd.Series:
    # Ids with a missing value arrive as floats; print 12, not 12.0.
    if pd.api.types.is_float_dtype(column) and (column.dropna() % 1 == 0).all():
        column = column.astype("Int64")
    return column.astype("string").fillna("")


def build_reasons(rows: pd.DataFrame, top_features: int = 2) -> pd.Series:
    """One reason per row. Uses source ('interest' / 'category' / 'exploration'), category_id, the rankers'
    top{k}_feature columns, or a free-text 'explanation' column when no top-feature columns exist."""
    index = rows.index
    source = _text(rows["source"]) if "source" in rows else pd.Series("interest", index=index, dtype="string")
    head = pd.Series("high expected value", index=index, dtype="string")
    head = head.mask(source == "interest", "matched interest")
    head = head.mask(source == "exploration", "exploration: fresh or under-delivered ad")
    head = head.mask(source == "category", "a category you browsed most this week")
    if "category_id" in rows:
        category = _text(rows["category_id"])
        head = head.mask((source == "interest") & (category != ""), "matched interest: category " + category)
        head = head.mask((source == "category") & (category != ""), "a category you browsed most this week: " + category)
    features = [c for c in TOP_FEATURE_COLUMNS[:top_features] if c in rows]
    if features:
        joined = _text(rows[features[0]])
        for column in features[1:]:
            part = _text(rows[column])
            joined = joined.where(part == "", joined + ", " + part)
        detail = ("top features: " + joined).where(joined != "", "")
    elif "explanation" in rows:
        explanation = _text(rows["explanation"])
        detail = ("why: " + explanation).where(explanation != "", "")
    else:
        detail = pd.Series("", index=index, dtype="string")
    return head.where(detail == "", head + "; " + detail).astype(object)
