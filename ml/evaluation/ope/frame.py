"""One call from a pipeline: a frame of logged impressions in, a tidy frame of estimates out."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ml.evaluation.ope.estimators import estimate_all
from ml.evaluation.ope.intervals import IntervalMethod
from ml.evaluation.ope.rounds import LoggedRounds

CLUSTER_COLUMNS = ("user_key", "cluster")
RESULT_COLUMNS = ["estimator", "estimate", "ci_low", "ci_high", "ess", "max_weight", "support_share", "n_rounds",
                  "n_clusters", "standard_error", "interval", "unit"]


def _optional(frame: pd.DataFrame, column: str) -> np.ndarray | None:
    return frame[column].to_numpy() if column in frame.columns else None


def estimate_frame(frame: pd.DataFrame, estimators: tuple[str, ...] | None = None, *,
                   cluster_column: str | None = "auto", clip: float | None = None,
                   switch_threshold: float | None = None, impressions_per_day: float | None = None,
                   by_position: bool = False, level: float = 0.95, interval: IntervalMethod = "analytic",
                   n_bootstrap: int = 2_000, seed: int = 0) -> pd.DataFrame:
    """Off-policy estimates of a target policy from one row per logged impression (a (round, position)).

    Column contract (extra columns are ignored):
      reward              float, observed reward of the logged ad (click 0/1); required, no NaN.
      propensity          float in (0, 1]: logging policy's probability of the logged ad at its position.
      target_probability  float in [0, 1]: the target policy's probability of that same ad and position.
                          propensity and target_probability come together; IPS, SNIPS, DR need them.
      q_logged            float: reward model's prediction for the logged ad, q_hat(x, a_logged).
      q_target_expected   float: sum_a pi_target(a|x) q_hat(x, a). q_* come together; DM, DR need them.
                          Fit the model out of sample (cross-fitting) or DR's interval is optimistic.
      user_key / cluster  the unit of independence (first present of the two, or `cluster_column`);
                          None or absent: every row is its own unit.
      position            optional int slot (0-based); estimates pool positions (per-position independence).
      target_mass_on_support  optional float in [0, 1]: target mass on ads the logger could show, per row.

    `estimators` defaults to every one of dm/ips/snips/dr the columns allow; `clip` adds DR with capped
    weights, `switch_threshold` Switch-DR. Returns one row per estimator with columns RESULT_COLUMNS
    (value per impression), plus estimate_per_day, ci_low_per_day, ci_high_per_day when
    `impressions_per_day` is given. `by_position` adds the same rows per slot after the pooled ones,
    with a `position` column (None on the pooled rows).
    """
    if "reward" not in frame.columns:
        raise ValueError("frame needs a `reward` column")
    if cluster_column == "auto":
        cluster_column = next((c for c in CLUSTER_COLUMNS if c in frame.columns), None)
    elif cluster_column is not None and cluster_column not in frame.columns:
        raise ValueError(f"cluster column {cluster_column!r} is not in the frame")
    if by_position and "position" not in frame.columns:
        raise ValueError("by_position needs a `position` column")
    options = {"estimators": estimators, "cluster_column": cluster_column, "clip": clip,
               "switch_threshold": switch_threshold, "impressions_per_day": impressions_per_day, "level": level,
               "interval": interval, "n_bootstrap": n_bootstrap, "seed": seed}
    if by_position:
        pooled = estimate_frame(frame, **options).assign(position=None)
        per_slot = [estimate_frame(part, **options).assign(position=int(slot))
                    for slot, part in frame.groupby("position", sort=True)]
        return pd.concat([pooled, *per_slot], ignore_index=True)
    positions = _optional(frame, "position")
    rounds = LoggedRounds(
        rewards=frame["reward"].to_numpy(dtype=float),
        propensities=_optional(frame, "propensity"),
        target_probabilities=_optional(frame, "target_probability"),
        q_logged=_optional(frame, "q_logged"),
        q_target_expected=_optional(frame, "q_target_expected"),
        clusters=frame[cluster_column].to_numpy() if cluster_column else None,
        positions=positions.astype(np.int64) if positions is not None else None,
        target_mass_on_support=_optional(frame, "target_mass_on_support"),
    )
    results = estimate_all(rounds, estimators, clip=clip, switch_threshold=switch_threshold, level=level,
                           interval=interval, n_bootstrap=n_bootstrap, seed=seed)
    table = pd.DataFrame([result.as_row() for result in results], columns=RESULT_COLUMNS)
    if impressions_per_day is not None:
        for column in ("estimate", "ci_low", "ci_high"):
            table[f"{column}_per_day"] = table[column] * impressions_per_day
    return table
