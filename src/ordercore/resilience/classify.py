"""Which errors are worth retrying, which count against a breaker, and retry-after hints.

One classification drives every wrapper, so retry and breaker never disagree:

- ``TRANSIENT``: the dependency may answer next time (timeouts, refused connections,
  :class:`~ordercore.errors.ChannelUnavailable`, ...). Retried; counts as a breaker failure.
- ``PERMANENT``: retrying will not help but the dependency is at fault (an unexpected
  exception, expired channel credentials, a storage error other than unavailability, a
  :class:`~ordercore.errors.CircuitOpen`). Not retried; counts as a failure.
- ``BUSINESS``: the caller's input was refused (any other :class:`OrderCoreError`). Not
  retried, and the breaker counts it as a success: the service answered.
- ``LOCAL``: our own wrappers refused to make the call (rate limit, bulkhead). Neither
  retried by default nor counted by the breaker: the dependency was never asked.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum

from ordercore.errors import (
    BulkheadFull,
    CallTimedOut,
    ChannelAuthExpired,
    ChannelUnavailable,
    CircuitOpen,
    NoFallbackLeft,
    OrderCoreError,
    RateLimited,
    StorageError,
    StorageUnavailable,
)

__all__ = ["Classifier", "ErrorKind", "default_classifier", "retry_after_of"]


class ErrorKind(StrEnum):
    """What an exception means for retry and breaker decisions."""

    TRANSIENT = "transient"
    PERMANENT = "permanent"
    BUSINESS = "business"
    LOCAL = "local"


Classifier = Callable[[BaseException], ErrorKind]
"""Maps an exception to its :class:`ErrorKind`; pass your own to any wrapper."""

_TRANSIENT_ORDERCORE = (CallTimedOut, ChannelUnavailable, StorageUnavailable)
_PERMANENT_ORDERCORE = (ChannelAuthExpired, CircuitOpen, NoFallbackLeft, StorageError)


def default_classifier(exc: BaseException) -> ErrorKind:
    """The standard mapping (see the module docstring).

    An exception may also declare itself: a ``transient`` attribute set to True makes it
    transient, to False permanent.
    """
    declared = getattr(exc, "transient", None)
    if isinstance(declared, bool):
        return ErrorKind.TRANSIENT if declared else ErrorKind.PERMANENT
    if isinstance(exc, RateLimited | BulkheadFull):
        return ErrorKind.LOCAL
    if isinstance(exc, _TRANSIENT_ORDERCORE):
        return ErrorKind.TRANSIENT
    if isinstance(exc, _PERMANENT_ORDERCORE):
        return ErrorKind.PERMANENT
    if isinstance(exc, OrderCoreError):
        return ErrorKind.BUSINESS
    if isinstance(exc, TimeoutError | ConnectionError):
        return ErrorKind.TRANSIENT
    return ErrorKind.PERMANENT


def retry_after_of(exc: BaseException) -> float | None:
    """The server's retry-after hint carried by ``exc`` (seconds), if it has one.

    Read from a ``retry_after`` attribute holding seconds or a ``timedelta``.
    """
    hint = getattr(exc, "retry_after", None)
    if isinstance(hint, timedelta):
        return max(hint.total_seconds(), 0.0)
    if isinstance(hint, int | float) and not isinstance(hint, bool):
        return max(float(hint), 0.0)
    return None
