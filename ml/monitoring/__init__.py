"""Monitoring: signals that a day's data or the champions' quality is drifting (landing freshness,
population stability of features and predictions, calibration of the champions on final labels)."""
