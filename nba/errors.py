"""One small exception hierarchy; every message says what was wrong, expected and received."""

from __future__ import annotations


class NbaError(Exception):
    """Base class of the errors this product raises on purpose."""


class ConfigError(NbaError, ValueError):
    """A setting or an option has a value the product cannot use."""


class DataError(NbaError, ValueError):
    """Input data cannot be read or does not meet the data contract."""


class StoreError(NbaError, RuntimeError):
    """The online store refused an operation or lost it to a concurrent one."""
