"""Daily partitions: partition D is the day whose landing files arrived."""
import dagster as dg

from ml.settings import Settings

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=Settings.from_env().partition_start.isoformat(), timezone="UTC"
)
