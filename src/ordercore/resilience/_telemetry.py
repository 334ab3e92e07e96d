"""OpenTelemetry instruments of the resilience toolkit (API only; the SDK is the user's)."""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation

if TYPE_CHECKING:
    from ordercore.resilience.breaker import Breaker

tracer = trace.get_tracer("ordercore")
meter = metrics.get_meter("ordercore")

SERVICE = "ordercore.service"

calls = meter.create_counter(
    "ordercore.resilience.calls",
    unit="{call}",
    description="Calls through a resilience policy, by service and outcome",
)
call_duration = meter.create_histogram(
    "ordercore.resilience.call.duration",
    unit="s",
    description="Duration of calls that reached the dependency",
)
transitions = meter.create_counter(
    "ordercore.resilience.breaker.transitions",
    unit="{transition}",
    description="Circuit breaker state changes, by service and new state",
)
retries = meter.create_counter(
    "ordercore.resilience.retries",
    unit="{retry}",
    description="Retries scheduled after a transient failure",
)

_STATE_VALUE = {"closed": 0, "half-open": 1, "open": 2}
_breakers: weakref.WeakSet[Breaker] = weakref.WeakSet()


def _observe_states(options: CallbackOptions) -> Iterable[Observation]:
    return [
        Observation(_STATE_VALUE.get(breaker.state, 2), {SERVICE: breaker.name})
        for breaker in list(_breakers)
    ]


meter.create_observable_gauge(
    "ordercore.resilience.breaker.state",
    callbacks=[_observe_states],
    description="Circuit breaker state per service: 0 closed, 1 half-open, 2 open",
)


def track(breaker: Breaker) -> None:
    """Report this breaker's state through the state gauge while it lives."""
    _breakers.add(breaker)
