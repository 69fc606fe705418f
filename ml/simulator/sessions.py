"""Who is active on a day, when their sessions happen and what each session is about."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.simulator.world import HOURS_PER_DAY, World

MICROS_PER_SECOND = 1_000_000
MICROS_PER_HOUR = 3600 * MICROS_PER_SECOND
MICROS_PER_DAY = HOURS_PER_DAY * MICROS_PER_HOUR
MEAN_SESSION_MINUTES = 12.0


@dataclass(frozen=True)
class DaySessions:
    """Active users of one day (rows) and their sessions, grouped by user row."""

    day_index: int
    day_start_us: int
    active_users: np.ndarray  # (n,) user positions
    interest: np.ndarray  # (n, C) the day's drifted interest of each active user
    activity_level: np.ndarray  # (n,)
    session_offsets: np.ndarray  # (n+1,) sessions of row r are session_offsets[r]:session_offsets[r+1]
    session_start_us: np.ndarray  # (S,)
    session_duration_us: np.ndarray  # (S,)
    session_intent: np.ndarray  # (S,) category position the session is about

    @property
    def n_sessions(self) -> int:
        return len(self.session_start_us)

    def pick_sessions(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A uniformly chosen session of each given active-user row."""
        counts = self.session_offsets[rows + 1] - self.session_offsets[rows]
        return self.session_offsets[rows] + (rng.random(len(rows)) * counts).astype(np.int64)

    def times_within(self, sessions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Uniform timestamps (us) inside the given sessions."""
        offset = (rng.random(len(sessions)) * self.session_duration_us[sessions]).astype(np.int64)
        return self.session_start_us[sessions] + offset


def sample_rows_categorical(cumulative: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row index from the categorical distribution whose cumulative sums are cumulative[row]."""
    chosen_cum = cumulative[rows]
    draws = rng.random(len(rows)) * chosen_cum[:, -1]
    picked = (chosen_cum < draws[:, None]).sum(axis=1)
    return np.minimum(picked, cumulative.shape[1] - 1)


def repeat_rows(counts: np.ndarray) -> np.ndarray:
    """Row index repeated counts[row] times, e.g. [2, 0, 1] -> [0, 0, 2]."""
    return np.repeat(np.arange(len(counts)), counts)


def generate_sessions(world: World, day_index: int, day_start_us: int, rng: np.random.Generator) -> DaySessions:
    config = world.config
    present = np.flatnonzero(world.user_first_seen_day <= day_index)
    active_users = present[rng.random(len(present)) < config.daily_active_prob]
    level = world.user_activity_level[active_users]
    interest = world.interest(active_users, day_index)

    sessions_per_user = 1 + rng.poisson(level * max(config.sessions_per_active_day - 1.0, 0.0))
    session_offsets = np.concatenate([[0], np.cumsum(sessions_per_user)])
    session_row = repeat_rows(sessions_per_user)

    hour_cumulative = np.cumsum(world.hour_profile(active_users), axis=1)
    hour = sample_rows_categorical(hour_cumulative, session_row, rng)
    start = day_start_us + hour * MICROS_PER_HOUR + (rng.random(len(hour)) * MICROS_PER_HOUR).astype(np.int64)
    duration = (rng.exponential(MEAN_SESSION_MINUTES * 60, len(hour)) * MICROS_PER_SECOND).astype(np.int64)
    # Sessions end before midnight with room for the few seconds of follow-up events.
    latest_end = day_start_us + MICROS_PER_DAY - 10 * 60 * MICROS_PER_SECOND
    start = np.minimum(start, latest_end - MICROS_PER_SECOND)
    duration = np.clip(np.minimum(duration, latest_end - start), MICROS_PER_SECOND, None)

    intent = sample_rows_categorical(np.cumsum(interest, axis=1), session_row, rng)
    return DaySessions(
        day_index=day_index, day_start_us=day_start_us, active_users=active_users, interest=interest,
        activity_level=level, session_offsets=session_offsets, session_start_us=start,
        session_duration_us=duration, session_intent=intent,
    )
