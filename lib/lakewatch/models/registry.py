"""The model registry by name: every module of lakewatch.models that defines a Detector registers it.

Adding a model is adding a file: `@register` on the class, and the module is found and imported the
first time a model is looked up.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TypeVar

from lakewatch.errors import ConfigError
from lakewatch.models.base import Detector, ModelConfig

_MODELS: dict[str, type[Detector]] = {}
_NOT_MODELS = {"base", "registry", "training"}
D = TypeVar("D", bound=type[Detector])


def register(cls: D) -> D:
    """Class decorator: make a detector available by its `name`."""
    existing = _MODELS.get(cls.name)
    if existing is not None and existing is not cls:
        raise RuntimeError(f"two models are named {cls.name!r}: {existing.__module__} and {cls.__module__}")
    _MODELS[cls.name] = cls
    return cls


def _discover() -> None:
    import lakewatch.models as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _NOT_MODELS and not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")


def model_names() -> list[str]:
    _discover()
    return sorted(_MODELS)


def detector_class(name: str) -> type[Detector]:
    _discover()
    try:
        return _MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model type {name!r} (known: {', '.join(sorted(_MODELS))})") from None


def model_config(name: str, overrides: dict, where: str = "the profile") -> "ModelConfig":
    """A model's config: its defaults, overridden by the profile's `models.<name>` section."""
    from pydantic import ValidationError

    cls = detector_class(name)
    try:
        return cls.config_class.model_validate(overrides or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"models.{name}.{'.'.join(str(p) for p in e['loc'])}: "
            f"{'unknown key (misspelt?)' if e['type'] == 'extra_forbidden' else e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from None
