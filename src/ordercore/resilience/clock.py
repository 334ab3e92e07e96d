"""Time for the resilience toolkit: wall time, a monotonic clock and sleep, from one source.

Every wrapper takes a :class:`TimeSource`, so tests (ours and our users') drive breakers,
backoff and rate limits with :class:`ManualTime` instead of waiting.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

import anyio
import anyio.lowlevel

__all__ = ["ManualTime", "SystemTime", "TimeSource"]


@runtime_checkable
class TimeSource(Protocol):
    """Wall time (timezone-aware UTC), monotonic seconds, and an async sleep."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemTime:
    """This machine's clocks and ``anyio.sleep``."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Seconds on the monotonic clock."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` (no-op for zero or less, apart from a checkpoint)."""
        await anyio.sleep(max(seconds, 0.0))


class ManualTime:
    """Time that moves only when told, or when someone sleeps; sleeps are recorded.

    ``sleep(s)`` advances the time by ``s`` at once and records ``s`` in :attr:`sleeps`,
    so a retry schedule or a rate limiter can be checked without waiting.
    """

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 1, 1, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("ManualTime needs a timezone-aware start time")
        self._start = start.astimezone(UTC)
        self._elapsed = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        """The start time plus everything advanced so far."""
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        """Seconds advanced since creation."""
        return self._elapsed

    def advance(self, seconds: float | timedelta) -> None:
        """Move time forward."""
        if isinstance(seconds, timedelta):
            seconds = seconds.total_seconds()
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self._elapsed += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the sleep, advance by it, and yield to other tasks once."""
        seconds = max(seconds, 0.0)
        self.sleeps.append(seconds)
        self.advance(seconds)
        await anyio.lowlevel.checkpoint()
