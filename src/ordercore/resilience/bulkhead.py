"""A concurrency limit per service with a bounded wait queue (the bulkhead pattern).

At most ``max_concurrent`` calls run at once; up to ``max_waiting`` more wait for a
slot (at most ``max_wait`` seconds each); anything beyond is refused at once with
:class:`BulkheadFull`. A hung dependency can then hold only its own slots, never every
worker or every database connection of the process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import ParamSpec, TypeVar

import anyio

from ordercore.errors import BulkheadFull, FieldError, InvalidInput

__all__ = ["Bulkhead"]

P = ParamSpec("P")
T = TypeVar("T")


class Bulkhead:
    """``max_concurrent`` slots on an ``anyio.CapacityLimiter`` and a bounded queue."""

    def __init__(
        self,
        max_concurrent: int,
        *,
        max_waiting: int = 0,
        max_wait: float | timedelta | None = None,
        service: str = "",
    ) -> None:
        limit = max_wait.total_seconds() if isinstance(max_wait, timedelta) else max_wait
        errors: list[FieldError] = []
        if max_concurrent < 1:
            errors.append(FieldError("max_concurrent", "must be >= 1", max_concurrent))
        if max_waiting < 0:
            errors.append(FieldError("max_waiting", "must be >= 0", max_waiting))
        if limit is not None and limit <= 0:
            errors.append(FieldError("max_wait", "must be > 0 or None", max_wait))
        if errors:
            raise InvalidInput("bulkhead", errors)
        self.max_concurrent = max_concurrent
        self.max_waiting = max_waiting
        self.max_wait = limit
        self.service = service
        self._limiter = anyio.CapacityLimiter(max_concurrent)
        self.waiting = 0
        self.rejected = 0

    @property
    def in_flight(self) -> int:
        """Calls holding a slot now."""
        return int(self._limiter.borrowed_tokens)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the body; raise :class:`BulkheadFull` when none can be had."""
        borrower = object()  # one token per call, even for nested calls in one task
        try:
            self._limiter.acquire_on_behalf_of_nowait(borrower)
        except anyio.WouldBlock:
            if self.waiting >= self.max_waiting:
                self.rejected += 1
                raise BulkheadFull(self.service, self.max_concurrent, self.max_waiting) from None
            self.waiting += 1
            try:
                with anyio.fail_after(self.max_wait):
                    await self._limiter.acquire_on_behalf_of(borrower)
            except TimeoutError:
                self.rejected += 1
                raise BulkheadFull(self.service, self.max_concurrent, self.max_waiting) from None
            finally:
                self.waiting -= 1
        try:
            yield
        finally:
            self._limiter.release_on_behalf_of(borrower)

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` inside a slot."""
        async with self.slot():
            return await fn(*args, **kwargs)
