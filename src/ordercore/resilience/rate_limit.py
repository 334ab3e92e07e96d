"""An async token bucket per key (per service, per shop where a platform has quotas).

Each key gets ``rate`` tokens per second and holds at most ``burst``. The bucket is
kept as one number per key, the theoretical arrival time of the generic cell rate
algorithm (GCRA, equivalent to a token bucket): a caller reserves its token at once
(no lock, arrival order is kept) and sleeps until the token is due. A caller that
would have to wait longer than ``max_wait`` is refused with :class:`RateLimited` and
takes nothing. :meth:`RateLimiter.pause` holds a key back, e.g. for a platform's ban
or a 429's retry-after.

:meth:`RateLimiter.for_key` gives an object with ``acquire()`` and ``pause(seconds)``,
the interface of the channels' own limiter, so one limiter can serve many shops.
"""

from __future__ import annotations

from datetime import timedelta

from ordercore.errors import FieldError, InvalidInput, RateLimited
from ordercore.resilience.clock import SystemTime, TimeSource

__all__ = ["KeyedRateLimit", "RateLimiter"]

_PRUNE_AT = 10_000


class RateLimiter:
    """``rate`` calls per second per key, bursts of up to ``burst``."""

    def __init__(
        self,
        rate: float,
        *,
        burst: int = 1,
        max_wait: float | timedelta | None = None,
        service: str = "",
        time: TimeSource | None = None,
    ) -> None:
        limit = max_wait.total_seconds() if isinstance(max_wait, timedelta) else max_wait
        errors: list[FieldError] = []
        if rate <= 0:
            errors.append(FieldError("rate", "must be > 0 calls per second", rate))
        if burst < 1:
            errors.append(FieldError("burst", "must be >= 1", burst))
        if limit is not None and limit < 0:
            errors.append(FieldError("max_wait", "must be >= 0 or None", max_wait))
        if errors:
            raise InvalidInput("rate limiter", errors)
        self.rate = rate
        self.burst = burst
        self.max_wait = limit
        self.service = service
        self._interval = 1.0 / rate
        self._time = time or SystemTime()
        self._tat: dict[str, float] = {}

    def available(self, key: str = "*") -> float:
        """Tokens ``key`` could take right now without waiting (may be fractional)."""
        now = self._time.monotonic()
        tat = max(self._tat.get(key, now), now)
        return max(0.0, self.burst - (tat - now) / self._interval)

    def delay(self, key: str = "*") -> float:
        """How long a call for ``key`` made now would wait for its token."""
        now = self._time.monotonic()
        tat = max(self._tat.get(key, now), now)
        return max(0.0, tat + self._interval - self.burst * self._interval - now)

    async def acquire(self, key: str = "*") -> None:
        """Take one token for ``key``, sleeping until it is due.

        Raises :class:`RateLimited` (taking nothing) when the wait exceeds ``max_wait``.
        """
        now = self._time.monotonic()
        tat = max(self._tat.get(key, now), now)
        wait = tat + self._interval - self.burst * self._interval - now
        if self.max_wait is not None and wait > self.max_wait:
            raise RateLimited(self.service, key, wait, self.max_wait)
        self._tat[key] = tat + self._interval
        if len(self._tat) > _PRUNE_AT:
            self._prune(now)
        if wait > 0:
            await self._time.sleep(wait)

    def pause(self, key: str, seconds: float | timedelta) -> None:
        """Let no call for ``key`` start in the next ``seconds`` (a ban, a retry-after)."""
        value = seconds.total_seconds() if isinstance(seconds, timedelta) else seconds
        now = self._time.monotonic()
        resume_tat = now + value + (self.burst - 1) * self._interval
        self._tat[key] = max(self._tat.get(key, now), resume_tat)

    def for_key(self, key: str) -> KeyedRateLimit:
        """This limiter seen from one key (``acquire()``/``pause(seconds)``)."""
        return KeyedRateLimit(self, key)

    def _prune(self, now: float) -> None:
        for key in [key for key, tat in self._tat.items() if tat <= now]:
            del self._tat[key]


class KeyedRateLimit:
    """One key of a :class:`RateLimiter`."""

    __slots__ = ("key", "limiter")

    def __init__(self, limiter: RateLimiter, key: str) -> None:
        self.limiter = limiter
        self.key = key

    async def acquire(self) -> None:
        """Take one token for this key."""
        await self.limiter.acquire(self.key)

    def pause(self, seconds: float | timedelta) -> None:
        """Hold this key back for ``seconds``."""
        self.limiter.pause(self.key, seconds)
