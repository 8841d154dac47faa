"""Model packages: safetensors weights (no pickled code) and a JSON manifest, checked on every load."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from lakewatch.calibration import Calibration
from lakewatch.models import detector_class
from lakewatch.models.base import Detector

if TYPE_CHECKING:
    from lakewatch.dataset import DatasetSpec

FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
MANIFEST_FILE = "manifest.json"


class PackageError(ValueError):
    """A model package that must not be used: tampered, incomplete, or for other features."""


@dataclass(frozen=True)
class ModelPackage:
    """A manifest and its weights, as bytes: what is stored, broadcast and loaded on the workers."""

    manifest: dict[str, Any]
    weights: bytes

    @property
    def checksum(self) -> str:
        return self.manifest["weights"]["sha256"]

    @property
    def features(self) -> list[str]:
        return [f["name"] for f in self.manifest["features"]]

    @property
    def calibration(self) -> Calibration:
        return Calibration.from_dict(self.manifest["calibration"])

    def verify(self) -> "ModelPackage":
        """Refuse weights whose SHA-256 is not the manifest's."""
        actual = hashlib.sha256(self.weights).hexdigest()
        if actual != self.checksum:
            raise PackageError(
                f"model {self.manifest.get('name')} v{self.manifest.get('version')}: weights checksum mismatch "
                f"(manifest {self.checksum[:12]}..., file {actual[:12]}...): the package was altered, refusing it"
            )
        return self

    def detector(self) -> Detector:
        """The detector with its weights; the checksum is verified first."""
        self.verify()
        cls = detector_class(self.manifest["model_type"])
        det = cls(len(self.features), self.manifest["hyperparameters"])
        det.load_state_tensors(load_safetensors(self.weights))
        return det

    def normalization(self) -> tuple[np.ndarray, np.ndarray]:
        norm = self.manifest["normalization"]
        return np.asarray(norm["mean"], dtype=np.float32), np.asarray(norm["std"], dtype=np.float32)


def build_package(manifest: dict[str, Any], detector: Detector) -> ModelPackage:
    weights = save_safetensors(detector.state_tensors())
    full = {
        **manifest,
        "format_version": FORMAT_VERSION,
        "model_type": detector.model_type,
        "hyperparameters": detector.hyperparameters,
        "weights": {"file": WEIGHTS_FILE, "sha256": hashlib.sha256(weights).hexdigest(), "bytes": len(weights)},
    }
    return ModelPackage(full, weights)


def check_schema(package: ModelPackage, spec: "DatasetSpec") -> None:
    """Refuse a package whose features are not the dataset's, in the same order."""
    if package.features != spec.feature_names:
        missing = [f for f in package.features if f not in spec.feature_names]
        extra = [f for f in spec.feature_names if f not in package.features]
        detail = f"model lacks {extra}, dataset lacks {missing}" if (missing or extra) else "same features, other order"
        raise PackageError(
            f"model {package.manifest['name']} v{package.manifest['version']} does not fit dataset {spec.name}: "
            f"feature schema differs ({detail})"
        )


def manifest_bytes(package: ModelPackage) -> bytes:
    return json.dumps(package.manifest, indent=2, sort_keys=True, default=str).encode()


def parse_package(manifest_json: bytes, weights: bytes) -> ModelPackage:
    try:
        manifest = json.loads(manifest_json)
    except json.JSONDecodeError as exc:
        raise PackageError(f"model manifest is not valid JSON: {exc}") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise PackageError(f"unsupported package format {manifest.get('format_version')!r}")
    return ModelPackage(manifest, weights).verify()
