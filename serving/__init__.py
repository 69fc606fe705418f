"""Real-time serving: re-rank a user's scheduled ads from fresh events, and land those events for
the next daily run (the feedback loop). `python -m serving`."""
