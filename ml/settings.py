"""The one place for paths and settings, read from the environment with repo-local defaults."""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

from ml.privacy.pseudonyms import KEY_VARIABLE, pseudonym_key

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTRACT_TABLES = ("users", "campaigns", "ads", "creatives", "behavior_events", "ad_events")


@dataclass(frozen=True)
class Settings:
    data_root: Path
    warehouse_path: Path
    mlflow_tracking_uri: str
    pseudonym_key: str = field(repr=False)  # a secret: kept out of reprs and logs
    partition_start: dt.date
    # A conversion counts for the last click within this many days; labels are final after it.
    attribution_window_days: int = 7
    # Candidate retrieval: "exact" brute force, "ann" (faiss IVF index), or "auto" = ann from
    # `retrieval_ann_min_ads` eligible ads up (ml/allocation/ann_index.py).
    retrieval_index: str = "auto"
    retrieval_ann_min_ads: int = 200_000
    retrieval_ann_probe_share: float = 0.03
    # A dask.distributed scheduler address ("tcp://host:8786"): rankers train on that cluster.
    dask_scheduler: str | None = None
    # More than 1: the interest encoder trains data-parallel in this many torchrun processes
    # (ml/encoder/distributed.py: gloo on CPU, one GPU each with nccl).
    encoder_processes: int = 1
    # Set: the Dagster instance (runs, event log, schedules) lives in this PostgreSQL database
    # (dagster-postgres) instead of SQLite files under the data root; the password is read from
    # AD_POSTGRES_PASSWORD by Dagster itself, never stored here (deploy/local_services.py).
    dagster_postgres_db: str | None = None
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_user: str = "adflow"

    @property
    def landing_dir(self) -> Path:
        return self.data_root / "landing"

    @property
    def ground_truth_dir(self) -> Path:
        return self.data_root / "ground_truth"

    @property
    def has_ground_truth(self) -> bool:
        """Is the data the simulator's (its world saved beside the logs), so answers can be checked?"""
        return (self.ground_truth_dir / "world.npz").exists()

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
            pseudonym_key=pseudonym_key(env),
            partition_start=dt.date.fromisoformat(env.get("AD_PARTITION_START", "2026-11-01")),
            attribution_window_days=int(env.get("AD_ATTRIBUTION_WINDOW_DAYS", "7")),
            retrieval_index=_one_of(env.get("AD_RETRIEVAL_INDEX", "auto"), ("auto", "exact", "ann"), "AD_RETRIEVAL_INDEX"),
            retrieval_ann_min_ads=int(env.get("AD_RETRIEVAL_ANN_MIN_ADS", "200000")),
            retrieval_ann_probe_share=float(env.get("AD_RETRIEVAL_ANN_PROBE_SHARE", "0.03")),
            dask_scheduler=env.get("AD_DASK_SCHEDULER") or None,
            encoder_processes=int(env.get("AD_ENCODER_PROCESSES", "1")),
            dagster_postgres_db=env.get("AD_DAGSTER_POSTGRES_DB") or None,
            postgres_host=env.get("AD_POSTGRES_HOST", "127.0.0.1"),
            postgres_port=int(env.get("AD_POSTGRES_PORT", "5432")),
            postgres_user=env.get("AD_POSTGRES_USER", "adflow"),
        )

    def export_env(self) -> dict[str, str]:
        """Variables child processes (dbt, MLflow UI) need to see the same locations."""
        return {
            "AD_DATA_ROOT": str(self.data_root),
            "AD_WAREHOUSE_PATH": str(self.warehouse_path),
            "MLFLOW_TRACKING_URI": self.mlflow_tracking_uri,
            KEY_VARIABLE: self.pseudonym_key,
            "AD_PARTITION_START": self.partition_start.isoformat(),
            "AD_ATTRIBUTION_WINDOW_DAYS": str(self.attribution_window_days),
            "AD_RETRIEVAL_INDEX": self.retrieval_index,
            "AD_RETRIEVAL_ANN_MIN_ADS": str(self.retrieval_ann_min_ads),
            "AD_RETRIEVAL_ANN_PROBE_SHARE": str(self.retrieval_ann_probe_share),
            **({"AD_DASK_SCHEDULER": self.dask_scheduler} if self.dask_scheduler else {}),
            "AD_ENCODER_PROCESSES": str(self.encoder_processes),
            **({"AD_DAGSTER_POSTGRES_DB": self.dagster_postgres_db, "AD_POSTGRES_HOST": self.postgres_host,
                "AD_POSTGRES_PORT": str(self.postgres_port), "AD_POSTGRES_USER": self.postgres_user}
               if self.dagster_postgres_db else {}),
        }


def _one_of(value: str, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value
