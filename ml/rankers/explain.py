"""Per-row explanations from LightGBM's own TreeSHAP (`pred_contrib=True`), in log-odds units.

Contributions of one row plus the bias column sum to the raw margin, so "+0.42 user_category_events_7d"
reads as "this feature moved the click log-odds up by 0.42 from the average".
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def top_feature_order(contributions: np.ndarray, top_k: int) -> np.ndarray:
    """Per row, the positions of the top-k features by |SHAP| (bias column last, ignored)."""
    return np.argsort(-np.abs(contributions[:, :-1]), axis=1, kind="stable")[:, :top_k]


def top_contributions(contributions: np.ndarray, feature_names: list[str], top_k: int = 3) -> pd.DataFrame:
    """Top-k features by |SHAP| per row, as columns and as one readable `explanation` string.

    `contributions` is booster.predict(..., pred_contrib=True): n_features columns plus the bias last.
    """
    if contributions.shape[1] != len(feature_names) + 1:
        raise ValueError(
            f"expected {len(feature_names) + 1} contribution columns (features + bias), got {contributions.shape[1]}"
        )
    per_feature = contributions[:, :-1]
    top_k = min(top_k, len(feature_names))
    order = top_feature_order(contributions, top_k)
    names = np.asarray(feature_names, dtype=object)
    columns: dict[str, object] = {}
    for rank in range(top_k):
        columns[f"top{rank + 1}_feature"] = names[order[:, rank]]
        columns[f"top{rank + 1}_contribution"] = np.take_along_axis(per_feature, order[:, [rank]], axis=1)[:, 0]
    explained = pd.DataFrame(columns)
    explained["explanation"] = [
        ", ".join(
            f"{explained.at[row, f'top{rank + 1}_feature']} {explained.at[row, f'top{rank + 1}_contribution']:+.3f}"
            for rank in range(top_k)
        )
        for row in range(len(explained))
    ]
    explained["bias"] = contributions[:, -1]
    return explained
