"""Lakewatch: deep-learning anomaly detection for the lakehouse, in batch, at Spark scale."""

__version__ = "0.1.0"
