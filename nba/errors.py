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


class InvalidField(DataError):  # noqa: N818 - the name the serving API maps to 422
    """One field of an input has a value outside what is allowed (the service answers 422).

    ``field`` names it, ``expected`` says what is allowed (a tuple of the allowed values or a
    phrase) and ``received`` is the value given.
    """

    def __init__(self, field: str, expected: str | tuple[object, ...], received: object) -> None:
        self.field = field
        self.expected = expected
        self.received = received
        allowed = f"one of {list(expected)}" if isinstance(expected, tuple) else expected
        super().__init__(f"{field} must be {allowed}; got {received!r}")
