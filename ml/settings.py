"""The one place for paths and settings, read from the environment with repo-local defaults."""
from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTRACT_TABLES = ("users", "campaigns", "ads", "behavior_events", "ad_events")


@dataclass(frozen=True)
class Settings:
    data_root: Path
    warehouse_path: Path
    mlflow_tracking_uri: str
    pseudonym_salt: str
    partition_start: dt.date
    # A conversion counts for the last click within this many days; labels are final after it.
    attribution_window_days: int = 7

    @property
    def landing_dir(self) -> Path:
        return self.data_root / "landing"

    @property
    def ground_truth_dir(self) -> Path:
        return self.data_root / "ground_truth"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        return self.data_root / "mlflow" / "artifacts"

    @property
    def dagster_home(self) -> Path:
        return self.data_root / "dagster_home"

    def landing_partition_dir(self, table: str, day: dt.date) -> Path:
        return self.landing_dir / table / f"date={day.isoformat()}"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        data_root = Path(env.get("AD_DATA_ROOT", REPO_ROOT / ".data")).resolve()
        warehouse = Path(env.get("AD_WAREHOUSE_PATH", data_root / "warehouse.duckdb")).resolve()
        tracking = env.get("MLFLOW_TRACKING_URI", f"sqlite:///{data_root / 'mlflow' / 'mlflow.db'}")
        return cls(
            data_root=data_root,
            warehouse_path=warehouse,
            mlflow_tracking_uri=tracking,
            pseudonym_salt=env.get("AD_PSEUDONYM_SALT", "dev-salt-change-me"),
            partition_start=dt.date.fromisoformat(env.get("AD_PARTITION_START", "2026-11-01")),
            attribution_window_days=int(env.get("AD_ATTRIBUTION_WINDOW_DAYS", "7")),
        )

    def export_env(self) -> dict[str, str]:
        """Variables child processes (dbt, MLflow UI) need to see the same locations."""
        return {
            "AD_DATA_ROOT": str(self.data_root),
            "AD_WAREHOUSE_PATH": str(self.warehouse_path),
            "MLFLOW_TRACKING_URI": self.mlflow_tracking_uri,
            "AD_PSEUDONYM_SALT": self.pseudonym_salt,
            "AD_PARTITION_START": self.partition_start.isoformat(),
            "AD_ATTRIBUTION_WINDOW_DAYS": str(self.attribution_window_days),
        }


def pseudonymize(user_id: int | str, salt: str) -> str:
    """Same value as dbt's staging `md5(salt || cast(user_id as varchar))`."""
    return hashlib.md5(f"{salt}{user_id}".encode()).hexdigest()
