"""Detectors: one module per model, each registered by name (lakewatch.models.registry)."""
