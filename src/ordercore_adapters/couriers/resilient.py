"""The courier failover chain: primary -> backup -> ..., each behind its own resilience policy.

::

    chain = courier_chain([zto, sf])            # zto first, sf when zto is down
    waybills = WaybillService(core.storage, core.clock, chain.failover, senders)

Each courier gets a :class:`~ordercore.resilience.Pipeline` built from a
:class:`~ordercore.resilience.ServicePolicy` (:data:`COURIER_POLICY` unless given):
a per-call timeout, a breaker (pybreaker's state machine, with a slow-call rate on top),
retry of transient errors, and a bulkhead. Service names are ``courier.<code>``.

Timeouts are counted by the breaker and fail over, but are *not* retried on the same
courier (:func:`courier_classifier`): a timeout already spent the call's budget, and the
next courier in the chain is the better second chance. So a hanging courier costs at
most its timeout per call until its breaker opens (``fail_max`` failures in a row, or a
slow-call rate over the window); from then on calls go straight to the backup without
touching it, until ``reset_timeout`` lets a trial call through (half-open) and a good
trial closes the circuit again. Quick transient errors (HTTP 5xx, connection refused, a
busy code) are retried with backoff first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

import pybreaker

from ordercore.errors import CallTimedOut, FieldError, InvalidInput
from ordercore.ports.couriers import CourierPort
from ordercore.resilience import (
    Breaker,
    BreakerMachine,
    ErrorKind,
    Failover,
    ServiceGateway,
    ServicePolicy,
    StateChange,
    StateStore,
    TimeSource,
    default_classifier,
    resilient,
)

__all__ = ["COURIER_POLICY", "CourierChain", "courier_chain", "courier_classifier"]

COURIER_POLICY = ServicePolicy(
    timeout=timedelta(seconds=3),
    attempts=2,
    backoff_initial=timedelta(milliseconds=200),
    backoff_max=timedelta(seconds=1),
    retry_deadline=timedelta(seconds=10),
    fail_max=5,
    reset_timeout=timedelta(seconds=30),
    success_threshold=1,
    half_open_max_calls=1,
    slow_call_threshold=timedelta(seconds=1.5),
    slow_call_rate=0.5,
    slow_call_window=20,
    slow_call_minimum=10,
    max_concurrent=16,
    max_waiting=64,
)
"""The default policy of one courier (docs/couriers.md explains each number)."""


def _machine(**options: Any) -> BreakerMachine:
    """A pybreaker state machine (the core does not import pybreaker; adapters may)."""
    return cast(BreakerMachine, pybreaker.CircuitBreaker(**options))


def courier_classifier(exc: BaseException) -> ErrorKind:
    """The default classification, except that a timed-out call is not retried.

    It still counts against the breaker and makes the chain fail over (PERMANENT).
    """
    if isinstance(exc, CallTimedOut):
        return ErrorKind.PERMANENT
    return default_classifier(exc)


@dataclass(frozen=True, slots=True)
class CourierChain:
    """The chain and its parts: each courier's resilient port and breaker, by code."""

    failover: Failover[CourierPort]
    couriers: Mapping[str, CourierPort]
    """code -> the courier wrapped in its pipeline (what the chain calls)."""
    breakers: Mapping[str, Breaker]
    """code -> its breaker (state, history, subscribe)."""
    raw: Mapping[str, CourierPort] = field(default_factory=dict)
    """code -> the bare adapter."""

    def history(self) -> list[StateChange]:
        """Every breaker's state changes, oldest first (for reports and replays)."""
        changes = [change for breaker in self.breakers.values() for change in breaker.history]
        return sorted(changes, key=lambda change: change.at)

    async def aclose(self) -> None:
        """Close every adapter that has an ``aclose``."""
        for courier in self.raw.values():
            close = getattr(courier, "aclose", None)
            if close is not None:
                await close()


def courier_chain(
    couriers: Sequence[CourierPort],
    *,
    policy: ServicePolicy = COURIER_POLICY,
    policies: Mapping[str, ServicePolicy] | None = None,
    gateway: ServiceGateway | None = None,
    store: Callable[[str], StateStore] | None = None,
    time: TimeSource | None = None,
    service: str = "courier",
) -> CourierChain:
    """A failover chain over ``couriers`` in order, each behind its own pipeline.

    ``policies`` overrides ``policy`` per courier code; ``store(service_name)`` gives a
    breaker its state storage (share it across processes, e.g. one in Redis); ``gateway``
    gets every courier's latency, success rate and breaker state.
    """
    codes = [courier.code for courier in couriers]
    errors: list[FieldError] = []
    if not couriers:
        errors.append(FieldError("couriers", "must not be empty", []))
    if len(set(codes)) != len(codes):
        errors.append(FieldError("couriers", "codes must be unique", codes))
    unknown = sorted(set(policies or {}) - set(codes))
    if unknown:
        errors.append(FieldError("policies", f"no courier with this code; known: {codes}", unknown))
    if errors:
        raise InvalidInput("courier chain", errors)
    wrapped: dict[str, CourierPort] = {}
    breakers: dict[str, Breaker] = {}
    for courier in couriers:
        name = f"{service}.{courier.code}"
        pipeline = (
            (policies or {})
            .get(courier.code, policy)
            .build(
                name,
                machine_factory=_machine,
                store=store(name) if store is not None else None,
                gateway=gateway,
                classifier=courier_classifier,
                time=time,
            )
        )
        assert pipeline.breaker is not None  # ServicePolicy always builds one
        breakers[courier.code] = pipeline.breaker
        wrapped[courier.code] = resilient(courier, pipeline)
    failover: Failover[CourierPort] = Failover(
        service, list(wrapped.values()), classifier=courier_classifier
    )
    return CourierChain(
        failover, wrapped, breakers, {courier.code: courier for courier in couriers}
    )
