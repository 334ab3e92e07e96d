"""Degradation rules: with a dependency down, non-critical steps give way, critical ones go on.

A :class:`Step` names the services it depends on. While one of those services' breaker
is open, a non-critical step does not run: it returns :class:`Skipped` (drop it, e.g. a
marketing SMS) or :class:`Deferred` (re-queue it after ``not_before``, e.g. a waybill
request). A non-critical step that runs into an open circuit while running (a
:class:`~ordercore.errors.CircuitOpen`, or a failover chain with nothing left) is
degraded the same way. A critical step always runs and its errors reach the caller:
the critical path (take the order, reserve the stock) is never skipped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ParamSpec, TypeVar

from ordercore.errors import CircuitOpen, FieldError, InvalidInput, NoFallbackLeft
from ordercore.resilience.breaker import Breaker

__all__ = ["Deferred", "Degrader", "OnOpen", "Skipped", "Step"]

P = ParamSpec("P")
T = TypeVar("T")


class OnOpen(StrEnum):
    """What a non-critical step does while a dependency is down."""

    SKIP = "skip"
    DEFER = "defer"


@dataclass(frozen=True, slots=True)
class Step:
    """A named step of a workflow and the services it needs."""

    name: str
    depends_on: tuple[str, ...] = ()
    critical: bool = False
    on_open: OnOpen = OnOpen.DEFER


@dataclass(frozen=True, slots=True)
class Skipped:
    """The step did not run and will not: its dependency is down and it is optional."""

    step: str
    service: str
    reason: str


@dataclass(frozen=True, slots=True)
class Deferred:
    """The step did not run; re-queue it, not before ``not_before`` when that is known."""

    step: str
    service: str
    reason: str
    not_before: datetime | None = None


class Degrader:
    """Applies :class:`Step` rules using the breakers of the services, by service name."""

    def __init__(self, breakers: Mapping[str, Breaker], steps: Iterable[Step] = ()) -> None:
        self.breakers = breakers
        self._steps: dict[str, Step] = {}
        for step in steps:
            self.add(step)

    def add(self, step: Step) -> None:
        """Register a step; every service it depends on must have a breaker."""
        unknown = [service for service in step.depends_on if service not in self.breakers]
        if unknown:
            known = ", ".join(sorted(self.breakers)) or "none"
            raise InvalidInput(
                f"step {step.name!r}",
                [FieldError("depends_on", f"no breaker for this service; known: {known}", unknown)],
            )
        self._steps[step.name] = step

    def step(self, name: str) -> Step:
        """The registered step called ``name``."""
        try:
            return self._steps[name]
        except KeyError:
            known = ", ".join(sorted(self._steps)) or "none"
            raise InvalidInput(
                "degradation rules", [FieldError("step", f"unknown step; known: {known}", name)]
            ) from None

    def decide(self, step: str | Step) -> Skipped | Deferred | None:
        """What would happen to ``step`` now: None means it runs."""
        rule = self.step(step) if isinstance(step, str) else step
        if rule.critical:
            return None
        for service in rule.depends_on:
            breaker = self.breakers[service]
            if not breaker.admits():
                reason = f"circuit breaker of {service!r} is {breaker.state.value}"
                return self._degraded(rule, service, reason, breaker.retry_at)
        return None

    async def run(
        self,
        step: str | Step,
        fn: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T | Skipped | Deferred:
        """Run ``fn`` as ``step``, or return the marker that says why it did not run."""
        rule = self.step(step) if isinstance(step, str) else step
        verdict = self.decide(rule)
        if verdict is not None:
            return verdict
        try:
            return await fn(*args, **kwargs)
        except CircuitOpen as exc:
            if rule.critical:
                raise
            return self._degraded(rule, exc.service, str(exc), exc.retry_at)
        except NoFallbackLeft as exc:
            if rule.critical:
                raise
            return self._degraded(rule, exc.service, str(exc), None)

    @staticmethod
    def _degraded(
        rule: Step, service: str, reason: str, not_before: datetime | None
    ) -> Skipped | Deferred:
        if rule.on_open is OnOpen.SKIP:
            return Skipped(rule.name, service, reason)
        return Deferred(rule.name, service, reason, not_before)
