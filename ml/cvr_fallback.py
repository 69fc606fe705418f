"""How the schedule prices CPA campaigns when no CVR ranker could be trained yet.

CPC campaigns are valued at bid x pCTR and need no pCVR. CPA campaigns are valued at bid x pCTR x
pCVR; without a CVR champion their pCVR is the pooled click-to-conversion rate of the clicks whose
conversion labels are final (a stated prior, the same for every pair), and when those clicks hold no
conversion at all there is nothing to price them with, so they are left out of the schedule.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


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
            return (f"no CVR champion: {cpa_rows} CPA candidate rows priced with the pooled prior pCVR "
                    f"{self.prior:.4f} ({self.conversions} conversions / {self.clicks} clicks with final labels)")
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
    priced.loc[cpa, "pcvr"] = fallback.prior
    return priced, fallback.note(int(cpa.sum()))
