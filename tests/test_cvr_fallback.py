"""CPA campaigns without a CVR model: a pooled prior from the logs, or left out (ml/cvr_fallback.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.cvr_fallback import CvrFallback, apply_cvr_fallback

CANDIDATES = pd.DataFrame({"user_key": ["a", "a", "b"], "ad_id": [1, 2, 3], "bid_type": ["cpc", "cpa", "CPA"],
                           "pctr": [0.1, 0.2, 0.3], "pcvr": np.nan})


def test_cpa_rows_get_the_pooled_prior():
    priced, note = apply_cvr_fallback(CANDIDATES, CvrFallback(clicks=200, conversions=10))
    assert priced["pcvr"].tolist()[1:] == [0.05, 0.05]
    assert np.isnan(priced["pcvr"].iloc[0])  # CPC: not estimated, not needed
    assert note.startswith("no CVR champion: 2 CPA candidate rows priced with the ad's conversions per click "
                           "smoothed toward the pooled prior pCVR 0.0500")
    assert CANDIDATES["pcvr"].isna().all()  # the caller's frame is left alone


def test_cpa_rows_are_left_out_without_any_conversion():
    priced, note = apply_cvr_fallback(CANDIDATES, CvrFallback(clicks=147, conversions=0))
    assert priced["ad_id"].tolist() == [1]
    assert "no conversion among 147 clicks" in note and "2 CPA candidate rows left out" in note


def test_cpc_only_candidates_need_no_prior():
    priced, note = apply_cvr_fallback(CANDIDATES.iloc[:1], CvrFallback(clicks=0, conversions=0))
    assert len(priced) == 1 and "no CPA campaign" in note


def test_with_ad_counts_each_ad_gets_its_own_rate_smoothed_toward_the_prior():
    with_counts = CANDIDATES.assign(ad_conversions_7d=[0, 30, 0], ad_clicks_7d=[0, 100, 0])
    priced, _ = apply_cvr_fallback(with_counts, CvrFallback(clicks=200, conversions=10))
    # (30 + 50 x 0.05) / (100 + 50) for the ad with history; the prior itself for the one without.
    assert priced["pcvr"].tolist()[1:] == [pytest.approx(32.5 / 150), pytest.approx(0.05)]
