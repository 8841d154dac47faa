"""Model types: each is one module with a Detector subclass; adding a model is adding a file here."""

from __future__ import annotations

from lakewatch.models.base import Detector
from lakewatch.models.dense_ae import DenseAEDetector

MODEL_TYPES: dict[str, type[Detector]] = {cls.model_type: cls for cls in (DenseAEDetector,)}


def detector_class(model_type: str) -> type[Detector]:
    try:
        return MODEL_TYPES[model_type]
    except KeyError:
        raise ValueError(f"unknown model type {model_type!r} (known: {', '.join(sorted(MODEL_TYPES))})") from None
