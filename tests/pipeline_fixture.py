"""The whole graph materialized on tiny simulated data in a temporary data root (shared by the
integration and serving tests; each module builds its own, so neither depends on the other)."""
from __future__ import annotations

import datetime as dt
import importlib
import os
import sys

TINY_ENCODER = {"max_len": 20, "d_model": 16, "n_layers": 1, "n_heads": 2, "max_epochs": 1,
                "batch_size": 256, "max_train_examples": 5000}


def materialized_pipeline(tmp_path_factory, env: dict[str, str] | None = None, persistent_instance: bool = False):
    """Yields (settings, instance, ingest results, daily result, days); restores the environment.
    `env` adds settings (e.g. the team profile's servers); `persistent_instance` runs on the instance
    the settings configure (orchestration/instance.py) instead of an in-memory one."""
    data_root = tmp_path_factory.mktemp("adflow")
    saved_env = dict(os.environ)
    os.environ.update({
        "AD_DATA_ROOT": str(data_root),
        "AD_PARTITION_START": "2026-11-01",
        "AD_PSEUDONYM_KEY": "test-pseudonym-key",
        # 10 tiny days: a 2-day window leaves 8 days with final labels (train, validation, test).
        "AD_ATTRIBUTION_WINDOW_DAYS": "2",
    })
    os.environ.pop("AD_WAREHOUSE_PATH", None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.update(env or {})
    from ml.settings import Settings
    from ml.simulator import SimulationConfig, simulate

    settings = Settings.from_env()
    # 1000 users: enough clicks on the holdout day for the first CTR ranker to beat popularity beyond
    # noise (AUC 0.683 vs 0.619, paired SE 0.023); the first CVR ranker (23 conversions) is refused.
    simulate(SimulationConfig(n_users=1000, n_ads=60, n_campaigns=8, n_advertisers=4, n_days=10, seed=7,
                              start_date=dt.date(2026, 11, 1)), data_root, progress=False)

    import dagster as dg

    for module in [m for m in sys.modules if m.startswith("orchestration")]:
        del sys.modules[module]
    definitions = importlib.import_module("orchestration.definitions")
    if persistent_instance:
        from orchestration.instance import local_instance

        instance = local_instance(settings)
    else:
        instance = dg.DagsterInstance.ephemeral()
    days = [(dt.date(2026, 11, 1) + dt.timedelta(days=i)).isoformat() for i in range(10)]
    ingest_results = [
        definitions.defs.resolve_job_def("ingest_job").execute_in_process(partition_key=d, instance=instance)
        for d in days[:-1]
    ]
    daily = definitions.defs.resolve_job_def("daily_pipeline").execute_in_process(
        partition_key=days[-1], instance=instance,
        run_config={"ops": {"interest_encoder": {"config": TINY_ENCODER}}},
    )
    yield settings, instance, ingest_results, daily, days
    os.environ.clear()
    os.environ.update(saved_env)
