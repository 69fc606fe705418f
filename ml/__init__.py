"""Plain-Python core of the ad delivery product: no Dagster imports here."""
