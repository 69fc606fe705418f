"""Offline evaluation: ranking and calibration metrics, schedule value vs the oracle, off-policy value (ope/)."""
