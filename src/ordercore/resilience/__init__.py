"""The resilience toolkit: breaker, retry, timeout, rate limit, bulkhead, failover, degradation.

Each wrapper works on its own; :class:`Pipeline` composes them around any async
callable, and :func:`resilient` around every coroutine method of a port object, in one
fixed order (outside in)::

    fallback( retry( breaker( rate_limit( bulkhead( timeout( call ))))))

:class:`ServiceGateway` shows per-dependency latency, success rate and breaker state and
raises SLA alerts through the notifier port. See docs/resilience.md.
"""

from __future__ import annotations

from ordercore.resilience.breaker import (
    Breaker,
    BreakerMachine,
    BreakerState,
    Permit,
    SlowCallPolicy,
    StateChange,
)
from ordercore.resilience.bulkhead import Bulkhead
from ordercore.resilience.classify import Classifier, ErrorKind, default_classifier, retry_after_of
from ordercore.resilience.clock import ManualTime, SystemTime, TimeSource
from ordercore.resilience.degrade import Deferred, Degrader, OnOpen, Skipped, Step
from ordercore.resilience.fallback import Failover, Target, failover
from ordercore.resilience.gateway import DependencySnapshot, GatewaySnapshot, ServiceGateway, Sla
from ordercore.resilience.pipeline import ORDER, Pipeline, ResilientPort, resilient
from ordercore.resilience.policy import MachineFactory, ServicePolicy
from ordercore.resilience.rate_limit import KeyedRateLimit, RateLimiter
from ordercore.resilience.retry import Retry, RetryPolicy
from ordercore.resilience.store import MemoryStateStore, StateStore
from ordercore.resilience.timeout import Timeout

__all__ = [
    "ORDER",
    "Breaker",
    "BreakerMachine",
    "BreakerState",
    "Bulkhead",
    "Classifier",
    "Deferred",
    "Degrader",
    "DependencySnapshot",
    "ErrorKind",
    "Failover",
    "GatewaySnapshot",
    "KeyedRateLimit",
    "MachineFactory",
    "ManualTime",
    "MemoryStateStore",
    "OnOpen",
    "Permit",
    "Pipeline",
    "RateLimiter",
    "ResilientPort",
    "Retry",
    "RetryPolicy",
    "ServiceGateway",
    "ServicePolicy",
    "Skipped",
    "Sla",
    "SlowCallPolicy",
    "StateChange",
    "StateStore",
    "Step",
    "SystemTime",
    "Target",
    "TimeSource",
    "Timeout",
    "default_classifier",
    "failover",
    "resilient",
    "retry_after_of",
]
