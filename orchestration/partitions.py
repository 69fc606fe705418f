"""Daily partitions: partition D is the day whose landing files arrived."""
import dagster as dg

from ml.settings import Settings

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=Settings.from_env().partition_start.isoformat(), timezone="UTC"
)

# Every asset computes "as of" its own day, so a backfill runs one partition per run.
ONE_PARTITION_PER_RUN = dg.BackfillPolicy.multi_run(1)
