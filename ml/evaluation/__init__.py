"""Offline evaluation: ranking and calibration metrics shared by every model and report."""
