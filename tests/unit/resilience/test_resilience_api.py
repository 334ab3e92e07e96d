"""The curated public API of ordercore.resilience."""

from __future__ import annotations

import inspect

import ordercore.resilience as resilience

EXPECTED_ALL = [
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


def test_exported_names_are_the_promised_ones() -> None:
    """__all__ lists exactly the promised names (change it only on purpose)."""
    assert resilience.__all__ == EXPECTED_ALL


def test_every_exported_name_exists_and_is_documented() -> None:
    """Each exported name resolves, and each class or function has a docstring."""
    for name in resilience.__all__:
        member = getattr(resilience, name)
        if inspect.isclass(member) or inspect.isfunction(member):
            assert member.__doc__, f"{name} has no docstring"
