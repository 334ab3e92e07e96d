"""A client-side rate limiter that a platform's ban can also pause."""

from __future__ import annotations

import time

import anyio

__all__ = ["RateLimiter"]


class RateLimiter:
    """At most ``per_second`` calls per second, and none while a ban lasts."""

    def __init__(self, per_second: float | None, *, platform: str = "taobao") -> None:
        if per_second is not None and per_second <= 0:
            raise ValueError(f"{platform}: requests_per_second must be > 0, got {per_second}")
        self._interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0
        self._lock = anyio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            delay = self._next - time.monotonic()
            if delay > 0:
                await anyio.sleep(delay)
            self._next = time.monotonic() + self._interval

    def pause(self, seconds: float) -> None:
        self._next = max(self._next, time.monotonic() + seconds)
