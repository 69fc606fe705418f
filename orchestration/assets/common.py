"""Helpers the asset modules share: partition dates, run tags, model storage paths."""
from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import dagster as dg

from ml.settings import REPO_ROOT, Settings


def partition_day(context: dg.AssetExecutionContext) -> dt.date:
    return dt.date.fromisoformat(context.partition_key)


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_tags(context: dg.AssetExecutionContext) -> dict[str, str]:
    """Tags every registered model version carries, to trace it back to its data and code."""
    return {"partition": context.partition_key, "git_commit": git_commit(), "dagster_run_id": context.run.run_id}


def model_dir(settings: Settings, model: str, day: dt.date) -> Path:
    """Local copy of a model trained for a partition (MLflow holds the registered one)."""
    return settings.data_root / "models" / model / day.isoformat()
