"""One resilience policy per outside service, composed in one fixed, documented order.

From the outside in (a failover chain, :mod:`~ordercore.resilience.fallback`, wraps
several of these, one per implementation)::

    retry( breaker( rate_limit( bulkhead( timeout( call )))))

Why this order (the consequences are pinned by tests in tests/unit/resilience):

- **retry outside the breaker** (Resilience4j's order): the breaker sees every attempt,
  so it learns about an outage from real requests, and once it opens the next attempt
  gets :class:`~ordercore.errors.CircuitOpen`, which is not retried: retries stop at
  once instead of hammering a dead service. Backoff sleeps hold no token and no slot.
- **breaker outside rate limit and bulkhead**: an open circuit fails fast, without
  waiting for a rate-limit token or a concurrency slot and without using either. The
  breaker times only the call itself (the permit's clock restarts after the local
  waits), so queueing in our own limiter is never mistaken for a slow dependency, and
  local refusals (:class:`~ordercore.errors.RateLimited`,
  :class:`~ordercore.errors.BulkheadFull`) count neither for nor against the service.
- **rate limit outside the bulkhead**: a call waiting for its token does not occupy a
  concurrency slot; slots are for requests in flight.
- **timeout innermost**: it bounds each attempt, and cancels the hung call so its slot
  and connection come back (the retry policy's ``deadline`` bounds the whole call).

:class:`Pipeline` applies the policy to one call; :func:`resilient` applies it to every
coroutine method of a port object (with optional per-method variants, e.g. no retry for
a non-idempotent method).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Generic, ParamSpec, TypeVar, cast

from opentelemetry.trace import Status, StatusCode

from ordercore.errors import BulkheadFull, CircuitOpen, FieldError, InvalidInput, RateLimited
from ordercore.resilience import _telemetry
from ordercore.resilience.breaker import Breaker, Permit
from ordercore.resilience.bulkhead import Bulkhead
from ordercore.resilience.classify import Classifier, ErrorKind, default_classifier
from ordercore.resilience.clock import SystemTime, TimeSource
from ordercore.resilience.gateway import ServiceGateway
from ordercore.resilience.rate_limit import RateLimiter
from ordercore.resilience.retry import Retry, RetryPolicy
from ordercore.resilience.timeout import Timeout

__all__ = ["ORDER", "Pipeline", "ResilientPort", "resilient"]

ORDER = ("fallback", "retry", "breaker", "rate_limit", "bulkhead", "timeout")
"""The wrappers from the outside in; the call itself sits inside ``timeout``."""

P = ParamSpec("P")
T = TypeVar("T")
PortT = TypeVar("PortT")


@dataclass(frozen=True, slots=True, kw_only=True)
class Pipeline:
    """The resilience policy of one outside service; every part is optional.

    ``breaker``, ``rate_limiter`` and ``bulkhead`` hold state and are shared by every
    call to the service (and by the pipelines :meth:`replace` derives). ``rate_key``
    picks the rate-limit key from the call's arguments (e.g. the shop); without it the
    key is the service name.
    """

    service: str
    timeout: float | timedelta | None = None
    retry: RetryPolicy | None = None
    breaker: Breaker | None = None
    rate_limiter: RateLimiter | None = None
    rate_key: Callable[..., str] | None = None
    bulkhead: Bulkhead | None = None
    gateway: ServiceGateway | None = None
    classifier: Classifier = default_classifier
    time: TimeSource | None = None

    def __post_init__(self) -> None:
        if not self.service:
            raise InvalidInput("pipeline", [FieldError("service", "must not be empty", "")])
        if self.time is None:
            object.__setattr__(self, "time", SystemTime())
        if self.gateway is not None:
            self.gateway.watch(self.service, breaker=self.breaker)

    def replace(self, **changes: Any) -> Pipeline:
        """A variant sharing this pipeline's breaker, limiter and bulkhead unless changed."""
        return replace(self, **changes)

    def _clock(self) -> TimeSource:
        assert self.time is not None  # set in __post_init__
        return self.time

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` through the whole policy."""
        operation = getattr(fn, "__name__", "call")
        attributes = {_telemetry.SERVICE: self.service, "ordercore.operation": operation}
        with _telemetry.tracer.start_as_current_span(
            f"ordercore.resilience.{operation}",
            attributes=attributes,
            record_exception=True,
            set_status_on_exception=True,
        ) as span:
            key = self.rate_key(*args, **kwargs) if self.rate_key else self.service
            if self.retry is None:
                result = await self._attempt(fn, key, args, kwargs)
            else:
                retry = Retry(
                    self.retry, service=self.service, classifier=self.classifier, time=self.time
                )
                try:
                    result = await retry.call(self._attempt, fn, key, args, kwargs)
                finally:
                    span.set_attribute("ordercore.retries", retry.retries)
            span.set_status(Status(StatusCode.OK))
            return result

    async def _attempt(
        self,
        fn: Callable[..., Awaitable[T]],
        key: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        breaker = self.breaker
        try:
            permit = breaker.admit() if breaker is not None else None
        except CircuitOpen:
            self._rejected()
            raise
        try:
            if self.rate_limiter is not None:
                await self.rate_limiter.acquire(key)
            slot: AbstractAsyncContextManager[None] = (
                self.bulkhead.slot() if self.bulkhead is not None else nullcontext()
            )
            async with slot:
                result = await self._timed(fn, args, kwargs, permit)
        except BaseException as exc:
            if breaker is not None and permit is not None:
                breaker.record(permit, exc)
            if isinstance(exc, RateLimited | BulkheadFull):
                self._rejected()
            raise
        if breaker is not None and permit is not None:
            breaker.record(permit, None)
        return result

    async def _timed(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        permit: Permit | None,
    ) -> T:
        if permit is not None:
            permit.restart_timing()
        clock = self._clock() if self.gateway is not None else None
        started = clock.monotonic() if clock is not None else 0.0
        try:
            if self.timeout is None:
                result = await fn(*args, **kwargs)
            else:
                result = await Timeout(self.timeout, service=self.service).call(fn, *args, **kwargs)
        except Exception as exc:
            if self.gateway is not None and clock is not None:
                ok = self.classifier(exc) is ErrorKind.BUSINESS
                self.gateway.record(self.service, clock.monotonic() - started, ok=ok)
            raise
        if self.gateway is not None and clock is not None:
            self.gateway.record(self.service, clock.monotonic() - started, ok=True)
        return result

    def _rejected(self) -> None:
        if self.gateway is not None:
            self.gateway.record_rejection(self.service)
        _telemetry.calls.add(1, {_telemetry.SERVICE: self.service, "ordercore.outcome": "rejected"})


_OWN_ATTRIBUTES = frozenset({"port", "pipeline", "_methods", "_wrapped"})


class ResilientPort(Generic[PortT]):
    """A port object whose coroutine methods run through a :class:`Pipeline`.

    Other attributes pass through unchanged. Build it with :func:`resilient`.
    """

    def __init__(
        self, port: PortT, pipeline: Pipeline, methods: Mapping[str, Pipeline] | None = None
    ) -> None:
        self.port = port
        self.pipeline = pipeline
        self._methods = dict(methods or {})
        self._wrapped: dict[str, Callable[..., Awaitable[Any]]] = {}

    @property
    def name(self) -> str:
        """The service name of the pipeline."""
        return self.pipeline.service

    @property
    def breaker(self) -> Breaker | None:
        """The pipeline's breaker (a failover chain checks it)."""
        return self.pipeline.breaker

    def __getattr__(self, attribute: str) -> Any:
        if attribute in _OWN_ATTRIBUTES:  # not set yet (copy, pickle): no recursion
            raise AttributeError(attribute)
        member = getattr(self.port, attribute)
        if attribute.startswith("_") or not inspect.iscoroutinefunction(member):
            return member
        wrapped = self._wrapped.get(attribute)
        if wrapped is None:
            pipeline = self._methods.get(attribute, self.pipeline)

            async def wrapped(*args: Any, **kwargs: Any) -> Any:
                return await pipeline.call(member, *args, **kwargs)

            wrapped.__name__ = attribute
            self._wrapped[attribute] = wrapped
        return wrapped

    def __repr__(self) -> str:
        return f"resilient({self.port!r}, service={self.pipeline.service!r})"


def resilient(
    port: PortT, pipeline: Pipeline, *, methods: Mapping[str, Pipeline] | None = None
) -> PortT:
    """Wrap every coroutine method of ``port`` in ``pipeline`` (``methods`` overrides some).

    The result is typed as the port, so it drops in wherever the port is expected.
    """
    return cast(PortT, ResilientPort(port, pipeline, methods))
