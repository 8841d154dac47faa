"""User errors: what the CLI prints as one clear message (exit 2); anything else is a bug and keeps its traceback."""

from __future__ import annotations


class LakewatchError(Exception):
    """Bad input, configuration or state that the user can fix; the message says what and where."""


class ConfigError(LakewatchError):
    """A profile or dataset spec that cannot be used (missing, not YAML, a misspelt or invalid key)."""


class DataError(LakewatchError):
    """Input data that cannot be processed as asked (missing table or column, nothing to train on)."""


class PackageError(LakewatchError):
    """A model package that must not be used: tampered, incomplete, of an old format, or for other features."""


class RegistryError(LakewatchError):
    """A model version or stage change the registry cannot give or make."""


class QueryError(LakewatchError):
    """A statement `lakewatch sql` refuses or Spark cannot run."""


class NotFoundError(LakewatchError):
    """Something named by the user (an event, a run, a model version) that the lakehouse does not hold."""
