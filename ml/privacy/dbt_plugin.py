"""dbt-duckdb plugin (profiles.yml `plugins:`): registers user_pseudonym on dbt's connections, with
the key read from the environment here, so it never appears in a model, a compiled file or a log."""
from __future__ import annotations

from dbt.adapters.duckdb.plugins import BasePlugin

from ml.privacy.pseudonyms import register_pseudonym_function


class Plugin(BasePlugin):
    def configure_connection(self, conn) -> None:
        register_pseudonym_function(conn)
