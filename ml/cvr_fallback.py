"""How the schedule prices CPA campaigns without a CVR champion (none trained yet, or a first version
that did not beat the trivial scorers).

CPC campaigns are valued at bid x pCTR and need no pCVR. CPA campaigns are valued at bid x pCTR x
pCVR; without a CVR champion their pCVR is the ad's recent conversions per click smoothed toward the
pooled click-to-conversion rate of the clicks whose conversion labels are final (the popularity
scorer, ml/popularity.py; the pooled rate alone when the candidates carry no ad counts), and when
those clicks hold no conversion at all there is nothing to price them with, so they are left out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.popularity import has_ad_counts, popularity_rate


@dataclass(frozen=True)
class CvrFallback:
    """What stands in for pCVR; `prior` None means CPA campaigns are left out."""

    clicks: int
    conversions: int

    @property
    def prior(self) -> float | None:
        return self.conversions / self.clicks if self.clicks > 0 and self.conversions > 0 else None

    def note(self, cpa_rows: int) -> str:
        if cpa_rows == 0:
            return "no CVR champion; no CPA campaign among the candidates, so none is needed (CPC needs no pCVR)"
        if self.prior is not None:
            return (f"no CVR champion: {cpa_rows} CPA candidate rows priced with the ad's conversions per click "
                    f"smoothed toward the pooled prior pCVR {self.prior:.4f} ({self.conversions} conversions / "
                    f"{self.clicks} clicks with final labels)")
        return (f"no CVR champion and no conversion among {self.clicks} clicks with final labels: {cpa_rows} "
                "CPA candidate rows left out (CPC campaigns need no pCVR)")


def _is_cpa(bid_type: pd.Series) -> np.ndarray:
    return bid_type.astype(str).str.lower().eq("cpa").to_numpy()


def apply_cvr_fallback(candidates: pd.DataFrame, fallback: CvrFallback) -> tuple[pd.DataFrame, str]:
    """Candidates scored without a CVR model (pcvr NaN): CPA rows get the prior or are dropped.

    Returns (candidates, a note for the asset metadata and the summary). CPC rows keep pcvr NaN:
    it is not estimated, and their value does not use it.
    """
    cpa = _is_cpa(candidates["bid_type"])
    if fallback.prior is None:
        return candidates[~cpa].reset_index(drop=True), fallback.note(int(cpa.sum()))
    priced = candidates.copy()
    if has_ad_counts(priced, "cvr"):
        priced.loc[cpa, "pcvr"] = popularity_rate(priced[cpa], "cvr", fallback.prior)
    else:
        priced.loc[cpa, "pcvr"] = fallback.prior
    return priced, fallback.note(int(cpa.sum()))
