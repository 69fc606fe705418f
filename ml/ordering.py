"""Canonical row order for frames read from the warehouse.

DuckDB returns rows without an ORDER BY in whatever order its threads finish (the warehouse runs
with `preserve_insertion_order=false`, which keeps large writes fast), so anything that draws seeded
random numbers per row, breaks ties by position, keeps the "first" duplicate or sums floats in row
order must first put its input in an order that depends on the content alone. Sorting here, where
the order matters, costs milliseconds on the frames involved (hundreds of thousands of rows); keeping
insertion order in every table would cost every large write 2-5x.
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def in_key_order(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """`frame` sorted by the `keys` present in it (stable, so equal keys keep their order), index reset.

    Pass keys that identify a row; where they do not, rows equal on every key must be
    interchangeable for the caller (e.g. copies of one option), or its result still depends on order.
    """
    present = [key for key in keys if key in frame.columns]
    if not present:
        raise ValueError(f"none of the key columns {list(keys)} is in the frame ({list(frame.columns)[:10]})")
    return frame.sort_values(present, kind="stable", ignore_index=True)
