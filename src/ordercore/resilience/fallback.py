"""A failover chain over implementations of one port: primary, then backup, then ...

Each implementation is tried in order. One whose breaker is open is skipped without a
call. An implementation that fails with an error worth failing over on (by default
anything but a business error: transient, permanent or refused locally) hands over
to the next; a business error is raised at once, since the next implementation would
refuse the same input (pass ``fail_over_on`` to change that, e.g. for "this courier
does not serve that area"). When every implementation failed or was skipped,
:class:`~ordercore.errors.NoFallbackLeft` lists why, one entry per implementation.

Give each implementation its own :class:`~ordercore.resilience.pipeline.Pipeline`
(breaker, retry, ...) with :func:`~ordercore.resilience.pipeline.resilient`; the chain
reads the breaker from it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from opentelemetry import trace

from ordercore.errors import CircuitOpen, FieldError, InvalidInput, NoFallbackLeft
from ordercore.resilience import _telemetry
from ordercore.resilience.breaker import Breaker
from ordercore.resilience.classify import Classifier, ErrorKind, default_classifier
from ordercore.resilience.pipeline import ResilientPort

__all__ = ["Failover", "Target", "failover"]

PortT = TypeVar("PortT")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Target(Generic[PortT]):
    """One implementation in a chain, with the breaker that guards it (if any)."""

    name: str
    impl: PortT
    breaker: Breaker | None = None


def _target(item: PortT | Target[PortT], position: int) -> Target[PortT]:
    if isinstance(item, Target):
        return cast(Target[PortT], item)
    if isinstance(item, ResilientPort):
        return Target(item.name, cast(PortT, item), item.breaker)
    return Target(f"#{position}", item)


class Failover(Generic[PortT]):
    """Try ``targets`` in order until one answers (see the module docstring)."""

    def __init__(
        self,
        service: str,
        targets: Sequence[PortT | Target[PortT]],
        *,
        classifier: Classifier = default_classifier,
        fail_over_on: Callable[[BaseException], bool] | None = None,
    ) -> None:
        if not targets:
            raise InvalidInput("failover chain", [FieldError("targets", "must not be empty", [])])
        self.service = service
        self.targets: tuple[Target[PortT], ...] = tuple(
            _target(item, position) for position, item in enumerate(targets)
        )
        names = [target.name for target in self.targets]
        if len(set(names)) != len(names):
            raise InvalidInput(
                "failover chain", [FieldError("targets", "names must be unique", names)]
            )
        self._classify = classifier
        self._fail_over_on = fail_over_on or self._default_fail_over_on
        self.used: Counter[str] = Counter()

    def _default_fail_over_on(self, exc: BaseException) -> bool:
        return self._classify(exc) is not ErrorKind.BUSINESS

    async def invoke_with_source(self, call: Callable[[PortT], Awaitable[R]]) -> tuple[str, R]:
        """Run ``call(impl)`` on the first implementation that answers: (its name, result)."""
        errors: list[tuple[str, BaseException]] = []
        last: BaseException | None = None
        for target in self.targets:
            breaker = target.breaker
            if breaker is not None and not breaker.admits():
                errors.append(
                    (target.name, CircuitOpen(breaker.name, breaker.state.value, breaker.retry_at))
                )
                continue
            try:
                result = await call(target.impl)
            except Exception as exc:
                if not self._fail_over_on(exc):
                    raise
                errors.append((target.name, exc))
                last = exc
                continue
            self.used[target.name] += 1
            if errors:
                span = trace.get_current_span()
                span.add_event(
                    "ordercore.resilience.failover",
                    {_telemetry.SERVICE: self.service, "ordercore.target": target.name},
                )
            return target.name, result
        raise NoFallbackLeft(self.service, errors) from last

    async def invoke(self, call: Callable[[PortT], Awaitable[R]]) -> R:
        """Run ``call(impl)`` on the first implementation that answers; its result."""
        _, result = await self.invoke_with_source(call)
        return result

    async def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call coroutine method ``method`` of the first implementation that answers."""

        async def run(impl: PortT) -> Any:
            return await getattr(impl, method)(*args, **kwargs)

        return await self.invoke(run)

    def proxy(self) -> PortT:
        """An object typed as the port whose coroutine methods go through this chain."""
        return cast(PortT, _FailoverPort(self))


class _FailoverPort:
    def __init__(self, chain: Failover[Any]) -> None:
        self._chain = chain

    def __getattr__(self, attribute: str) -> Any:
        if attribute == "_chain":  # not set yet (copy, pickle): no recursion
            raise AttributeError(attribute)
        first = getattr(self._chain.targets[0].impl, attribute)
        if attribute.startswith("_") or not callable(first):
            return first
        chain = self._chain

        async def method(*args: Any, **kwargs: Any) -> Any:
            return await chain.call(attribute, *args, **kwargs)

        method.__name__ = attribute
        return method


def failover(service: str, targets: Sequence[PortT | Target[PortT]], **options: Any) -> PortT:
    """A port object that fails over between ``targets`` (see :class:`Failover`)."""
    return Failover(service, targets, **options).proxy()
