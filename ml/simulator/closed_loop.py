"""The closed loop: a served A/B day lands as the next day's logs, so the schedules adflow makes
produce the data it learns from next (treatment impressions carry the schedule's propensities)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path


from ml.settings import CONTRACT_TABLES
from ml.simulator.ab_test import load_served_day
from ml.simulator.continuation import Continuation
from ml.simulator.ground_truth import extra_impressions_path
from ml.simulator.writer import CONTRACT_SCHEMAS, write_partition
from ml.simulator.world import World


def land_served_day(data_root: Path, served_dir: Path) -> dt.date:
    """Write the served day's landing files (every contract table; no new users, campaigns or ads),
    its impressions' true probabilities and the simulator's state after it. Returns the day landed."""
    data_root = Path(data_root)
    ground_truth_dir = data_root / "ground_truth"
    served = load_served_day(served_dir)
    world = World.load(ground_truth_dir)
    expected = world.config.day(Continuation.load(ground_truth_dir).next_day_index)
    if served.day != expected:
        raise ValueError(f"{served_dir} serves {served.day}, but the simulator's next day is {expected}: serve that "
                         "day again from the current state (materialize ab_test_readout for the latest partition)")
    landing_dir = data_root / "landing"
    for table in CONTRACT_TABLES:
        rows = served.landing.get(table, CONTRACT_SCHEMAS[table].empty_table())
        write_partition(landing_dir, table, served.day, rows, world.config.file_format)
    served.truth.to_parquet(extra_impressions_path(ground_truth_dir, served.day), index=False)
    served.continuation.save(ground_truth_dir)
    return served.day
