"""Dagster layer: thin assets over `ml/` and the dbt project, assembled in `definitions`."""
import warnings

import dagster as dg

# backfill_policy on @asset is marked beta in dagster 1.13; we rely on its documented behaviour.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
