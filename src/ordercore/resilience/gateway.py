"""The service gateway view: how every outside dependency is doing, and SLA alerts.

Per dependency it keeps the latest calls in a sliding window (at most ``window`` calls,
none older than ``max_age`` seconds) and reports latency percentiles (p50/p95/p99,
nearest rank), the success rate, rejections and the breaker state. An :class:`Sla` per
dependency sets limits; :meth:`ServiceGateway.check` sends one alert through the
notifier port when a limit is first broken and one when it is met again.

A window of a thousand floats is sorted in well under a millisecond, so no histogram
library is needed; the window keeps exact values rather than buckets.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from ordercore.errors import FieldError, InvalidInput
from ordercore.ports.notifiers import Alert, AlertLevel, NotifierPort
from ordercore.resilience.breaker import Breaker, BreakerState
from ordercore.resilience.clock import SystemTime, TimeSource

__all__ = ["DependencySnapshot", "GatewaySnapshot", "ServiceGateway", "Sla"]


@dataclass(frozen=True, slots=True)
class Sla:
    """Limits for one dependency (latencies in seconds); None leaves a limit out.

    No latency or success-rate verdict is given before ``minimum_calls`` are in the
    window. ``breaker_open`` makes an open (or half-open) circuit a breach too.
    """

    max_p50: float | None = None
    max_p95: float | None = None
    max_p99: float | None = None
    min_success_rate: float | None = None
    breaker_open: bool = True
    minimum_calls: int = 20
    level: AlertLevel = AlertLevel.HIGH

    def __post_init__(self) -> None:
        errors = [
            FieldError(name, "must be > 0 seconds", value)
            for name, value in (
                ("max_p50", self.max_p50),
                ("max_p95", self.max_p95),
                ("max_p99", self.max_p99),
            )
            if value is not None and value <= 0
        ]
        rate = self.min_success_rate
        if rate is not None and not 0 < rate <= 1:
            errors.append(FieldError("min_success_rate", "must be in (0, 1]", rate))
        if self.minimum_calls < 1:
            errors.append(FieldError("minimum_calls", "must be >= 1", self.minimum_calls))
        if errors:
            raise InvalidInput("SLA", errors)


class DependencySnapshot(BaseModel):
    """One dependency as the gateway sees it now (latencies in milliseconds)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str
    calls: int
    failures: int
    rejected: int
    success_rate: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    breaker: BreakerState | None
    retry_at: datetime | None
    breaches: tuple[str, ...]


class GatewaySnapshot(BaseModel):
    """Every watched dependency, at one moment; ``model_dump_json()`` for dashboards."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime
    dependencies: tuple[DependencySnapshot, ...]

    def dependency(self, service: str) -> DependencySnapshot:
        """The snapshot of one dependency."""
        for item in self.dependencies:
            if item.service == service:
                return item
        known = ", ".join(item.service for item in self.dependencies) or "none"
        raise InvalidInput("gateway snapshot", [FieldError("service", f"known: {known}", service)])


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100] of an ascending, non-empty list."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(slots=True)
class _Dependency:
    breaker: Breaker | None
    sla: Sla | None
    samples: deque[tuple[float, float, bool]]
    rejected: deque[float] = field(default_factory=deque)
    breached: set[str] = field(default_factory=set)


class ServiceGateway:
    """Latency, success rate, breaker state and SLA alerts for every outside dependency."""

    def __init__(
        self,
        notifier: NotifierPort | None = None,
        *,
        window: int = 1000,
        max_age: float | None = 300.0,
        time: TimeSource | None = None,
    ) -> None:
        errors: list[FieldError] = []
        if window < 1:
            errors.append(FieldError("window", "must be >= 1 call", window))
        if max_age is not None and max_age <= 0:
            errors.append(FieldError("max_age", "must be > 0 seconds or None", max_age))
        if errors:
            raise InvalidInput("service gateway", errors)
        self.notifier = notifier
        self.window = window
        self.max_age = max_age
        self._time = time or SystemTime()
        self._dependencies: dict[str, _Dependency] = {}

    @property
    def services(self) -> tuple[str, ...]:
        """The watched dependencies, in the order they were added."""
        return tuple(self._dependencies)

    def watch(
        self, service: str, *, breaker: Breaker | None = None, sla: Sla | None = None
    ) -> None:
        """Track ``service``; a later call may add its breaker or SLA."""
        dependency = self._dependencies.get(service)
        if dependency is None:
            self._dependencies[service] = _Dependency(breaker, sla, deque(maxlen=self.window))
            return
        dependency.breaker = breaker or dependency.breaker
        dependency.sla = sla or dependency.sla

    def record(self, service: str, duration: float, *, ok: bool) -> None:
        """One call that reached ``service``: how long it took and whether it succeeded."""
        dependency = self._dependencies.get(service)
        if dependency is None:
            self.watch(service)
            dependency = self._dependencies[service]
        dependency.samples.append((self._time.monotonic(), duration, ok))

    def record_rejection(self, service: str) -> None:
        """One call refused before reaching ``service`` (open breaker, rate limit, bulkhead)."""
        if service not in self._dependencies:
            self.watch(service)
        rejected = self._dependencies[service].rejected
        rejected.append(self._time.monotonic())
        if len(rejected) > self.window:
            rejected.popleft()

    def snapshot(self) -> GatewaySnapshot:
        """The current view of every dependency."""
        return GatewaySnapshot(
            at=self._time.now(),
            dependencies=tuple(
                self._snapshot(service, dependency)
                for service, dependency in self._dependencies.items()
            ),
        )

    async def check(self) -> list[Alert]:
        """Compare every dependency with its SLA; alert on new breaches and recoveries."""
        sent: list[Alert] = []
        now = self._time.now()
        for service, dependency in self._dependencies.items():
            if dependency.sla is None:
                continue
            current = self._breaches(self._snapshot(service, dependency), dependency.sla)
            for rule, detail in sorted(current.items()):
                if rule not in dependency.breached:
                    sent.append(
                        Alert(
                            level=dependency.sla.level,
                            topic="resilience.sla_breach",
                            message=f"service {service!r}: SLA breached: {detail}",
                            key=f"sla:{service}:{rule}",
                            at=now,
                        )
                    )
            for rule in sorted(dependency.breached - current.keys()):
                sent.append(
                    Alert(
                        level=AlertLevel.INFO,
                        topic="resilience.sla_recovered",
                        message=f"service {service!r}: SLA met again: {rule}",
                        key=f"sla:{service}:{rule}",
                        at=now,
                    )
                )
            dependency.breached = set(current)
        if self.notifier is not None:
            for alert in sent:
                await self.notifier.send(alert)
        return sent

    def _prune(self, dependency: _Dependency) -> None:
        if self.max_age is None:
            return
        oldest = self._time.monotonic() - self.max_age
        while dependency.samples and dependency.samples[0][0] < oldest:
            dependency.samples.popleft()
        while dependency.rejected and dependency.rejected[0] < oldest:
            dependency.rejected.popleft()

    def _snapshot(self, service: str, dependency: _Dependency) -> DependencySnapshot:
        self._prune(dependency)
        durations = sorted(duration for _, duration, _ in dependency.samples)
        calls = len(durations)
        failures = sum(1 for *_, ok in dependency.samples if not ok)

        def ms(q: float) -> float | None:
            return round(percentile(durations, q) * 1000, 3) if durations else None

        breaker = dependency.breaker
        snapshot = DependencySnapshot(
            service=service,
            calls=calls,
            failures=failures,
            rejected=len(dependency.rejected),
            success_rate=(calls - failures) / calls if calls else None,
            p50_ms=ms(50),
            p95_ms=ms(95),
            p99_ms=ms(99),
            breaker=breaker.state if breaker else None,
            retry_at=breaker.retry_at if breaker else None,
            breaches=(),
        )
        if dependency.sla is None:
            return snapshot
        breaches = tuple(sorted(self._breaches(snapshot, dependency.sla)))
        return snapshot.model_copy(update={"breaches": breaches})

    @staticmethod
    def _breaches(snapshot: DependencySnapshot, sla: Sla) -> dict[str, str]:
        found: dict[str, str] = {}
        if sla.breaker_open and snapshot.breaker not in (None, BreakerState.CLOSED):
            found["breaker"] = f"circuit breaker is {snapshot.breaker}"
        if snapshot.calls < sla.minimum_calls:
            return found
        for rule, limit, value in (
            ("p50", sla.max_p50, snapshot.p50_ms),
            ("p95", sla.max_p95, snapshot.p95_ms),
            ("p99", sla.max_p99, snapshot.p99_ms),
        ):
            if limit is not None and value is not None and value > limit * 1000:
                found[rule] = f"{rule} latency {value:g}ms > {limit * 1000:g}ms"
        rate = snapshot.success_rate
        if sla.min_success_rate is not None and rate is not None and rate < sla.min_success_rate:
            found["success_rate"] = f"success rate {rate:.1%} < {sla.min_success_rate:.1%}"
        return found
