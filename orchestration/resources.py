"""Resources: the product's settings and the DuckDB warehouse, one place for both."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import dagster as dg
import duckdb

from ml.settings import Settings
from ml.warehouse import connect


class PlatformResource(dg.ConfigurableResource):
    """Paths and settings from the environment (see ml/settings.py), plus warehouse connections.

    DuckDB allows one writing process per file; Definitions use the in-process executor so steps
    run one at a time and each step closes its connection before dbt (a subprocess) opens the file.
    """

    @property
    def settings(self) -> Settings:
        settings = Settings.from_env()
        # dbt and other child processes read the same locations from the environment.
        os.environ.update(settings.export_env())
        return settings

    @contextmanager
    def warehouse(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        path = self.settings.warehouse_path
        path.parent.mkdir(parents=True, exist_ok=True)
        if read_only and not path.exists():
            raise FileNotFoundError(f"Warehouse {path} does not exist yet: materialize the ingest assets first.")
        conn = connect(path, read_only=read_only)
        try:
            yield conn
        finally:
            conn.close()
