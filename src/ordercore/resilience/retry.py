"""Retries with exponential backoff and jitter, for transient errors only (on tenacity).

Built on tenacity rather than stamina (which wraps tenacity): tenacity takes the sleep
function, the stop rule and the wait rule as objects per retrier, so a
:class:`~ordercore.resilience.clock.TimeSource` drives the waits and the deadline and
tests run on :class:`~ordercore.resilience.clock.ManualTime`. stamina's sleep, clock and
test switch are process-wide.

Schedule: before retry ``n`` (1-based) the wait is
``min(max_wait, initial * multiplier ** (n - 1))``, minus a random share of up to
``jitter`` of it (``jitter=1`` is AWS "full jitter"). A server's retry-after hint
(:func:`~ordercore.resilience.classify.retry_after_of`) replaces the computed wait; a
hint longer than ``max_retry_after`` ends the retries. No retry starts once it could not
finish its wait before ``deadline`` seconds after the first attempt.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import ParamSpec, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from ordercore.errors import FieldError, InvalidInput
from ordercore.resilience import _telemetry
from ordercore.resilience.classify import (
    Classifier,
    ErrorKind,
    default_classifier,
    retry_after_of,
)
from ordercore.resilience.clock import SystemTime, TimeSource

__all__ = ["Retry", "RetryPolicy"]

P = ParamSpec("P")
T = TypeVar("T")


def _seconds(value: float | timedelta | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry a transient failure (times in seconds).

    ``attempts`` counts the first call too (1 means no retry).
    """

    attempts: int = 3
    initial: float = 0.1
    multiplier: float = 2.0
    max_wait: float = 5.0
    jitter: float = 1.0
    deadline: float | None = 30.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        errors: list[FieldError] = []
        if self.attempts < 1:
            errors.append(FieldError("attempts", "must be >= 1", self.attempts))
        if self.initial < 0:
            errors.append(FieldError("initial", "must be >= 0", self.initial))
        if self.multiplier < 1:
            errors.append(FieldError("multiplier", "must be >= 1", self.multiplier))
        if self.max_wait < self.initial:
            errors.append(
                FieldError("max_wait", f"must be >= initial={self.initial}", self.max_wait)
            )
        if not 0 <= self.jitter <= 1:
            errors.append(FieldError("jitter", "must be in [0, 1]", self.jitter))
        if self.deadline is not None and self.deadline <= 0:
            errors.append(FieldError("deadline", "must be > 0 or None", self.deadline))
        if self.max_retry_after < 0:
            errors.append(FieldError("max_retry_after", "must be >= 0", self.max_retry_after))
        if errors:
            raise InvalidInput("retry policy", errors)

    def backoff(self, retry: int, draw: float = 0.0) -> float:
        """The wait before retry number ``retry`` (1-based) for a random ``draw`` in [0, 1)."""
        base = min(self.max_wait, self.initial * self.multiplier ** (retry - 1))
        return base * (1.0 - self.jitter * draw)


class _Wait(wait_base):
    def __init__(self, policy: RetryPolicy, rng: Callable[[], float]) -> None:
        self._policy = policy
        self._rng = rng

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        hint = retry_after_of(error) if error is not None else None
        if hint is not None:
            return hint
        return self._policy.backoff(retry_state.attempt_number, self._rng())


class _Stop(stop_base):
    def __init__(self, policy: RetryPolicy, time: TimeSource, started: float) -> None:
        self._policy = policy
        self._time = time
        self._started = started

    def __call__(self, retry_state: RetryCallState) -> bool:
        policy = self._policy
        if retry_state.attempt_number >= policy.attempts:
            return True
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        hint = retry_after_of(error) if error is not None else None
        if hint is not None and hint > policy.max_retry_after:
            return True
        if policy.deadline is None:
            return False
        elapsed = self._time.monotonic() - self._started
        return elapsed + retry_state.upcoming_sleep > policy.deadline


class Retry:
    """Retry an async call on transient errors according to a :class:`RetryPolicy`.

    Only errors the classifier calls ``TRANSIENT`` are retried; anything else, and the
    last transient error once the policy gives up, is raised unchanged.
    """

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        service: str = "",
        classifier: Classifier = default_classifier,
        time: TimeSource | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self.service = service
        self._classify = classifier
        self._time = time or SystemTime()
        self._rng = rng
        self.retries = 0

    def _retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, Exception) and self._classify(exc) is ErrorKind.TRANSIENT

    def _before_sleep(self, retry_state: RetryCallState) -> None:
        self.retries += 1
        _telemetry.retries.add(1, {_telemetry.SERVICE: self.service})

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)``, retrying transient failures."""
        started = self._time.monotonic()
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            if self.policy.attempts == 1 or not self._retryable(exc):
                raise
            first_error = exc
        # Most calls succeed at once, so tenacity starts only after a retryable failure:
        # its first attempt replays that failure (no second call), then it waits and
        # calls again. Attempt numbers, waits and the deadline are as if it ran from
        # the start.
        replayed = False

        async def attempt() -> T:
            nonlocal replayed
            if not replayed:
                replayed = True
                raise first_error
            return await fn(*args, **kwargs)

        retrying = AsyncRetrying(
            sleep=self._time.sleep,
            stop=_Stop(self.policy, self._time, started),
            wait=_Wait(self.policy, self._rng),
            retry=retry_if_exception(self._retryable),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        return await retrying(attempt)
