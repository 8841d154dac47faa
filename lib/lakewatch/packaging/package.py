"""Model packages, format 2: a JSON manifest, safetensors weights per ensemble member, an Arrow sidecar.

Every file of a package is listed in the manifest with its SHA-256, and the registry keeps the SHA-256 of
the manifest itself: one checksum covers every byte of the package. Loading verifies both, on the driver
and again on each worker, before any weight is read (safetensors: tensors only, never pickled code).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from lakewatch.errors import PackageError
from lakewatch.models.base import Detector
from lakewatch.models.registry import detector_class
from lakewatch.scoring.calibration import Calibration, EntityTails
from lakewatch.transforms.entities import ENTITIES_FILE, EntityIndex, Spacing, read_arrow_bytes, to_arrow_bytes
from lakewatch.transforms.normalization import Normalizer
from lakewatch.transforms.seasonal import SeasonalProfile

if TYPE_CHECKING:
    import pyarrow as pa

    from lakewatch.data.spec import DatasetSpec
    from lakewatch.scoring.plan import Calibrations, FlagRule, ScoringPlan

FORMAT_VERSION = 2
MANIFEST_FILE = "manifest.json"


def member_file(k: int) -> str:
    return f"member-{k}.safetensors"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ModelPackage:
    """A package as bytes: the manifest's bytes and every other file, what is stored, broadcast and loaded."""

    manifest_json: bytes
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads(self.manifest_json)

    @property
    def checksum(self) -> str:
        """The SHA-256 of the manifest, which lists the SHA-256 of every other file: the registry's checksum."""
        return sha256(self.manifest_json)

    @property
    def label(self) -> str:
        m = self.manifest
        return f"model {m.get('name')} v{m.get('version')}"

    @property
    def features(self) -> list[str]:
        return [f["name"] for f in self.manifest["features"]]


    @property
    def context(self) -> int:
        return int(self.manifest["model"]["context"])

    @property
    def needs_entity(self) -> bool:
        return bool(self.manifest["inputs"]["entity"])

    @property
    def needs_time(self) -> bool:
        return bool(self.manifest["inputs"]["time"])

    @property
    def max_horizon_us(self) -> int:
        """How far before an interval its rows' windows reach (0 for a row-wise model)."""
        return int(self.manifest["windows"]["max_horizon_us"] or 0)

    def verify(self, expected_checksum: str | None = None) -> "ModelPackage":
        """Refuse a package whose manifest is not the registered one, or whose files are not the manifest's."""
        if expected_checksum is not None and self.checksum != expected_checksum:
            raise PackageError(
                f"{self.label}: manifest checksum {self.checksum[:12]}... is not the registry's "
                f"{expected_checksum[:12]}...: the package was altered, refusing it"
            )
        listed = self.manifest.get("files", {})
        if sorted(listed) != sorted(self.files):
            raise PackageError(f"{self.label}: files {sorted(self.files)} do not match the manifest's {sorted(listed)}")
        for name, entry in listed.items():
            actual = sha256(self.files[name])
            if actual != entry["sha256"]:
                raise PackageError(
                    f"{self.label}: {name} checksum mismatch (manifest {entry['sha256'][:12]}..., file "
                    f"{actual[:12]}...): the package was altered, refusing it"
                )
        return self

    def detector(self) -> Detector:
        m = self.manifest
        cls = detector_class(m["model"]["type"])
        det = cls(len(self.features), cls.config_class.from_package(m["model"]["config"]))
        det.load_state([load_safetensors(self.files[f]) for f in m["model"]["members"]])
        return det

    def entity_table(self) -> "pa.Table":
        """The entity file: names, spacing and per-entity normalisation statistics."""
        return read_arrow_bytes(self.files[self.manifest["entities"]["file"]])

    def plan(self, device: str = "cpu", top_k: int = 3, flag: "FlagRule | None" = None) -> "ScoringPlan":
        """The scoring plan of this package (every file verified first)."""
        import torch

        from lakewatch.scoring.plan import FlagRule, ScoringPlan, WindowRules

        self.verify()
        m = self.manifest
        table = self.entity_table()
        index = EntityIndex(table.column("entity").combine_chunks())
        spacing = Spacing(table.column("spacing_s").to_numpy(), float(m["entities"]["global_spacing_s"]))
        normalizer = Normalizer.from_manifest(m["transforms"]["normalization"], table)
        detector = self.detector().to(torch.device(device))
        seasonal_entry = m["transforms"].get("seasonal")
        seasonal = (SeasonalProfile.from_table(self.features, int(seasonal_entry["bins"]), table)
                    if seasonal_entry else None)
        return ScoringPlan(
            self.features, index, normalizer, spacing, detector, self.calibrations(table),
            WindowRules(float(m["windows"]["horizon_factor"]), m["windows"]["max_horizon_us"]), seasonal,
            flag or FlagRule(), top_k,
        )

    def calibrations(self, table: "pa.Table | None" = None) -> "Calibrations":
        """Every signal's calibration, the entities' own tails (when calibrated per entity), the members'."""
        from lakewatch.scoring.plan import Calibrations

        m = self.manifest
        signals = {k: Calibration.from_dict(v) for k, v in m["calibrations"].items()}
        tails = None
        if m["calibration_scope"] == "entity":
            table = self.entity_table() if table is None else table
            # packages calibrated before the Lomax tail have no excesses column: their tails stay exponential
            excesses = lambda k: (table.column(f"tail:{k}:excesses").to_numpy()  # noqa: E731
                                  if f"tail:{k}:excesses" in table.column_names else None)
            tails = {k: EntityTails(table.column(f"tail:{k}:start").to_numpy(),
                                    table.column(f"tail:{k}:scale").to_numpy(), excesses(k)) for k in signals}
        members = [Calibration.from_dict(c) for c in m.get("member_calibrations") or []] or None
        # packages made before the fusion was a choice fused by Bonferroni
        return Calibrations(signals, tails, members, m.get("signal_fusion", "bonferroni"))

    @property
    def target_false_alarm_rate(self) -> float:
        return float(next(iter(self.manifest["calibrations"].values()))["target_false_alarm_rate"])


def build_package(manifest: dict[str, Any], detector: Detector, entities: EntityIndex, spacing: Spacing,
                  normalizer: Normalizer, calibrations: "Calibrations", seasonal: SeasonalProfile | None) -> ModelPackage:
    """The package's files and a manifest that lists them with their checksums."""
    files = {member_file(k): save_safetensors(t) for k, t in enumerate(detector.state())}
    columns = {"spacing_s": spacing.seconds, **normalizer.columns(), **(seasonal.columns() if seasonal else {})}
    for name, tails in (calibrations.entity_tails or {}).items():
        columns[f"tail:{name}:start"], columns[f"tail:{name}:scale"] = tails.start, tails.scale
        if tails.excesses is not None:
            columns[f"tail:{name}:excesses"] = tails.excesses
    files[ENTITIES_FILE] = to_arrow_bytes(entities, columns)
    full = {
        **manifest,
        "format_version": FORMAT_VERSION,
        "model": {"type": detector.name, "config": detector.config.model_dump(mode="json"),
                  "members": [member_file(k) for k in range(len(detector.state()))], "context": detector.context,
                  "signals": list(detector.signal_names)},
        # what a row needs besides its features to be scored: its entity, its timestamp
        "inputs": {"entity": bool(normalizer.needs_entity or calibrations.entity_tails or seasonal
                                  or detector.context > 1),
                   "time": bool(seasonal or detector.calendar_channels or detector.context > 1)},
        "entities": {"file": ENTITIES_FILE, "count": len(entities), "global_spacing_s": spacing.global_seconds},
        "transforms": {"normalization": normalizer.manifest_entry(),
                       "seasonal": {"bins": seasonal.bins} if seasonal else None},
        "calibrations": {k: c.to_dict() for k, c in calibrations.signals.items()},
        "calibration_scope": "entity" if calibrations.entity_tails else "global",
        "signal_fusion": calibrations.fusion,
        "member_calibrations": [c.to_dict() for c in calibrations.members] if calibrations.members else None,
        "files": {name: {"sha256": sha256(data), "bytes": len(data)} for name, data in sorted(files.items())},
    }
    return ModelPackage(json.dumps(full, indent=2, sort_keys=True, default=str).encode(), files)


def parse_package(manifest_json: bytes, files: dict[str, bytes], expected_checksum: str | None = None) -> ModelPackage:
    """A package from its bytes, verified: what the registry and each worker call."""
    try:
        manifest = json.loads(manifest_json)
    except json.JSONDecodeError as exc:
        raise PackageError(f"model manifest is not valid JSON: {exc}") from exc
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise PackageError(
            f"model {manifest.get('name')} v{manifest.get('version')} is a format-{version} package, which this "
            f"Lakewatch no longer reads (it needs format {FORMAT_VERSION}): retrain it with `lakewatch train`"
        )
    return ModelPackage(manifest_json, files).verify(expected_checksum)


def check_schema(package: ModelPackage, spec: "DatasetSpec") -> None:
    """Refuse a package whose features are not the dataset's, in the same order."""
    if package.features != spec.feature_names:
        missing = [f for f in package.features if f not in spec.feature_names]
        extra = [f for f in spec.feature_names if f not in package.features]
        detail = f"model lacks {extra}, dataset lacks {missing}" if (missing or extra) else "same features, other order"
        raise PackageError(f"{package.label} does not fit dataset {spec.name}: feature schema differs ({detail})")
