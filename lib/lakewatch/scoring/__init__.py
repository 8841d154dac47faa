"""Scoring: causal windows, the one scoring plan, calibration, and the Spark layer around them."""
