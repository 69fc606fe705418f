"""Population stability index (PSI): how far a current sample's distribution moved from a reference.

PSI = sum over bins of (current share - reference share) x ln(current share / reference share).
Numeric values are binned at the reference's deciles (ties collapse bins, so a count that is 0 for
most rows keeps one bin for 0); categorical values by level, with levels rarer than 1% of the
reference pooled into one bin, as are levels the reference never saw. Missing values get their own
bin in both. An empty bin counts as share EPSILON, so the index stays finite.

Reading, the industry's usual rule: < 0.1 stable, 0.1-0.2 moderate, > 0.2 significant (warn).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

PSI_MODERATE = 0.1
PSI_WARN = 0.2
EPSILON = 1e-4
N_BINS = 10
RARE_LEVEL_SHARE = 0.01
MISSING, OTHER = "<missing>", "<other>"


def psi_from_shares(reference_shares, current_shares, epsilon: float = EPSILON) -> float:
    reference = np.maximum(np.asarray(reference_shares, dtype=float), epsilon)
    current = np.maximum(np.asarray(current_shares, dtype=float), epsilon)
    return float(np.sum((current - reference) * np.log(current / reference)))


def _shares(labels: pd.Series, bins: list) -> np.ndarray:
    counts = labels.value_counts().reindex(bins, fill_value=0).to_numpy(float)
    return counts / max(counts.sum(), 1.0)


def numeric_bin_labels(reference, current, n_bins: int = N_BINS) -> tuple[pd.Series, pd.Series, list]:
    """Both samples as bin labels over the reference's quantile edges (plus a missing bin)."""
    reference = pd.to_numeric(pd.Series(reference), errors="coerce").astype(float)
    current = pd.to_numeric(pd.Series(current), errors="coerce").astype(float)
    present = reference.dropna().to_numpy()
    edges = np.unique(np.quantile(present, np.linspace(0, 1, n_bins + 1)[1:-1])) if len(present) else np.array([])

    def label(values: pd.Series) -> pd.Series:
        # Bin i holds (edge[i-1], edge[i]]; the last bin everything above the top edge.
        bins = pd.Series(np.searchsorted(edges, values.to_numpy(), side="left"), index=values.index).astype(object)
        bins[values.isna()] = MISSING
        return bins

    return label(reference), label(current), [*range(len(edges) + 1), MISSING]


def categorical_bin_labels(reference, current, rare_share: float = RARE_LEVEL_SHARE) -> tuple[pd.Series, pd.Series, list]:
    """Both samples as levels, rare (and unseen) levels pooled into OTHER, missing as MISSING."""
    reference = pd.Series(reference).astype(object).where(pd.Series(reference).notna(), MISSING).astype(str)
    current = pd.Series(current).astype(object).where(pd.Series(current).notna(), MISSING).astype(str)
    shares = reference.value_counts(normalize=True)
    kept = sorted(shares.index[(shares >= rare_share) | (shares.index == MISSING)])
    pool = lambda values: values.where(values.isin(kept), OTHER)  # noqa: E731
    return pool(reference), pool(current), [*kept, OTHER]


def numeric_psi(reference, current, n_bins: int = N_BINS, epsilon: float = EPSILON) -> float:
    ref, cur, bins = numeric_bin_labels(reference, current, n_bins)
    return psi_from_shares(_shares(ref, bins), _shares(cur, bins), epsilon)


def categorical_psi(reference, current, rare_share: float = RARE_LEVEL_SHARE, epsilon: float = EPSILON) -> float:
    ref, cur, bins = categorical_bin_labels(reference, current, rare_share)
    return psi_from_shares(_shares(ref, bins), _shares(cur, bins), epsilon)


def psi_band(psi: float) -> str:
    if not np.isfinite(psi):
        return "n/a"
    return "significant" if psi > PSI_WARN else "moderate" if psi > PSI_MODERATE else "stable"


def psi_table(reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str],
              categorical: list[str]) -> pd.DataFrame:
    """One row per feature: kind, PSI, band; largest PSI first. Both frames must hold every column."""
    rows = [{"feature": name, "kind": "numeric", "psi": numeric_psi(reference[name], current[name])}
            for name in numeric]
    rows += [{"feature": name, "kind": "categorical", "psi": categorical_psi(reference[name], current[name])}
             for name in categorical]
    table = pd.DataFrame(rows, columns=["feature", "kind", "psi"])
    table["band"] = table["psi"].map(psi_band)
    return table.sort_values(["psi", "feature"], ascending=[False, True], ignore_index=True)
