"""Candidate retrieval and the daily per-user ad schedule (budgets, pacing, caps, diversity, flights).

Pure Python + numpy/pandas; the Dagster delivery assets call `retrieve_candidates`, `allocate` and
`validate_schedule`. See `allocator.py` for the method and its pacing carry-over rule.
"""
from ml.allocation.config import AllocationConfig

__all__ = ["AllocationConfig"]
