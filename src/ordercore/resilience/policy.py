"""A whole pipeline described as settings, and built from them.

:class:`ServicePolicy` holds plain values (seconds, counts) that can come from
``Settings`` or environment variables; :meth:`ServicePolicy.build` turns it into a
:class:`~ordercore.resilience.pipeline.Pipeline` with fresh breaker, limiter and
bulkhead. The breaker's state machine comes from ``machine_factory``, called as
``machine_factory(name=..., fail_max=..., reset_timeout=..., success_threshold=...,
state_storage=...)``: pass ``pybreaker.CircuitBreaker`` itself (the core does not
import pybreaker; the application's composition root does).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field

from ordercore.resilience.breaker import Breaker, BreakerMachine, SlowCallPolicy
from ordercore.resilience.bulkhead import Bulkhead
from ordercore.resilience.classify import Classifier, default_classifier
from ordercore.resilience.clock import TimeSource
from ordercore.resilience.gateway import ServiceGateway
from ordercore.resilience.pipeline import Pipeline
from ordercore.resilience.rate_limit import RateLimiter
from ordercore.resilience.retry import RetryPolicy
from ordercore.resilience.store import MemoryStateStore, StateStore

__all__ = ["MachineFactory", "ServicePolicy"]

Seconds = Annotated[timedelta, Field(gt=timedelta(0))]


class MachineFactory(Protocol):
    """Builds a breaker state machine; ``pybreaker.CircuitBreaker`` is one."""

    def __call__(
        self,
        *,
        name: str,
        fail_max: int,
        reset_timeout: float,
        success_threshold: int,
        state_storage: StateStore,
    ) -> BreakerMachine: ...


class ServicePolicy(BaseModel):
    """The resilience settings of one outside service (docs/resilience.md).

    ``None`` switches a part off: no per-call timeout, no retry deadline, no slow-call
    rule, no rate limit, no concurrency limit. The breaker is always on.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout: Seconds | None = timedelta(seconds=5)
    """Per attempt; the hung call is cancelled."""
    attempts: Annotated[int, Field(ge=1, le=100)] = 3
    """Attempts of one call, the first included (transient errors only)."""
    backoff_initial: timedelta = timedelta(milliseconds=200)
    """Wait before the first retry; doubles for each further retry."""
    backoff_max: timedelta = timedelta(seconds=5)
    """Longest wait between two attempts."""
    jitter: Annotated[float, Field(ge=0, le=1)] = 1.0
    """Random share taken off each wait (1 = full jitter)."""
    retry_deadline: Seconds | None = timedelta(seconds=30)
    """No retry starts that could not finish its wait within this time of the first attempt."""
    max_retry_after: timedelta = timedelta(seconds=60)
    """Longest server retry-after hint still honoured; a longer one ends the retries."""
    fail_max: Annotated[int, Field(ge=1)] = 5
    """Consecutive failures that open the circuit."""
    reset_timeout: Seconds = timedelta(seconds=30)
    """How long the circuit stays open before trial calls."""
    success_threshold: Annotated[int, Field(ge=1)] = 1
    """Successful trials that close the circuit again."""
    half_open_max_calls: Annotated[int, Field(ge=1)] = 1
    """Trial calls allowed at once while half-open."""
    slow_call_threshold: Seconds | None = timedelta(seconds=2)
    """A call lasting at least this long is slow."""
    slow_call_rate: Annotated[float, Field(gt=0, le=1)] = 0.5
    """Share of slow calls in the window that opens the circuit."""
    slow_call_window: Annotated[int, Field(ge=1)] = 20
    """Calls the slow-call rate is computed over."""
    slow_call_minimum: Annotated[int, Field(ge=1)] = 10
    """Calls needed in the window before the slow-call rate is judged."""
    rate_per_second: Annotated[float, Field(gt=0)] | None = None
    """Calls per second per rate key (service or shop)."""
    rate_burst: Annotated[int, Field(ge=1)] = 1
    """Calls a rate key may make at once after a quiet spell."""
    rate_max_wait: timedelta | None = None
    """Longest wait for a rate-limit token; longer refuses the call (RateLimited)."""
    max_concurrent: Annotated[int, Field(ge=1)] | None = 16
    """Calls in flight at once (bulkhead)."""
    max_waiting: Annotated[int, Field(ge=0)] = 16
    """Calls that may queue for a slot; more are refused (BulkheadFull)."""
    max_wait: Seconds | None = None
    """Longest wait for a slot."""

    def build(
        self,
        service: str,
        *,
        machine_factory: MachineFactory | Callable[..., BreakerMachine],
        store: StateStore | None = None,
        gateway: ServiceGateway | None = None,
        rate_key: Callable[..., str] | None = None,
        classifier: Classifier = default_classifier,
        time: TimeSource | None = None,
    ) -> Pipeline:
        """A pipeline for ``service`` with its own breaker, limiter and bulkhead.

        ``store`` shares the breaker's state (across processes when the store allows).
        """
        machine = machine_factory(
            name=service,
            fail_max=self.fail_max,
            reset_timeout=self.reset_timeout.total_seconds(),
            success_threshold=self.success_threshold,
            state_storage=store or MemoryStateStore(service),
        )
        slow = None
        if self.slow_call_threshold is not None:
            slow = SlowCallPolicy(
                threshold=self.slow_call_threshold,
                rate=self.slow_call_rate,
                window=self.slow_call_window,
                minimum_calls=min(self.slow_call_minimum, self.slow_call_window),
            )
        breaker = Breaker(
            machine,
            name=service,
            slow_calls=slow,
            half_open_max_calls=self.half_open_max_calls,
            classifier=classifier,
            time=time,
        )
        retry = None
        if self.attempts > 1:
            initial = self.backoff_initial.total_seconds()
            retry = RetryPolicy(
                attempts=self.attempts,
                initial=initial,
                max_wait=max(self.backoff_max.total_seconds(), initial),
                jitter=self.jitter,
                deadline=self.retry_deadline.total_seconds() if self.retry_deadline else None,
                max_retry_after=self.max_retry_after.total_seconds(),
            )
        limiter = None
        if self.rate_per_second is not None:
            limiter = RateLimiter(
                self.rate_per_second,
                burst=self.rate_burst,
                max_wait=self.rate_max_wait,
                service=service,
                time=time,
            )
        bulkhead = None
        if self.max_concurrent is not None:
            bulkhead = Bulkhead(
                self.max_concurrent,
                max_waiting=self.max_waiting,
                max_wait=self.max_wait,
                service=service,
            )
        return Pipeline(
            service=service,
            timeout=self.timeout,
            retry=retry,
            breaker=breaker,
            rate_limiter=limiter,
            rate_key=rate_key,
            bulkhead=bulkhead,
            gateway=gateway,
            classifier=classifier,
            time=time,
        )
