"""Dagster layer: thin assets over `ml/` and the dbt project, assembled in `definitions`."""
