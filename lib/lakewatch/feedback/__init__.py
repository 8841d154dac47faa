"""Analyst feedback on events: the labels (store) and what they change (training data, thresholds, evaluation)."""
