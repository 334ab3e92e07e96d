"""A per-call time limit: past it the call is cancelled and :class:`CallTimedOut` raised."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

import anyio

from ordercore.errors import CallTimedOut, FieldError, InvalidInput

__all__ = ["Timeout"]

P = ParamSpec("P")
T = TypeVar("T")


class Timeout:
    """Cancel a call that runs longer than ``seconds`` (``anyio.fail_after``).

    The hung call is cancelled, so the task, its connection and any slot it holds are
    freed; the caller gets :class:`~ordercore.errors.CallTimedOut` (transient).
    """

    def __init__(self, seconds: float | timedelta, *, service: str = "") -> None:
        value = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        if value <= 0:
            raise InvalidInput("timeout", [FieldError("seconds", "must be > 0", seconds)])
        self.seconds = value
        self.service = service

    async def call(
        self,
        fn: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Await ``fn(*args, **kwargs)`` for at most ``seconds``."""
        try:
            with anyio.fail_after(self.seconds):
                return await fn(*args, **kwargs)
        except TimeoutError as exc:
            if isinstance(exc, CallTimedOut):
                raise
            operation = getattr(fn, "__name__", "call")
            raise CallTimedOut(self.service, operation, self.seconds) from exc
