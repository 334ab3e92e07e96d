"""A circuit breaker for anyio code, driving pybreaker's state machine around awaits.

pybreaker (``CircuitBreaker``) owns the state machine: ``fail_max`` consecutive
failures open the circuit, ``reset_timeout`` later one trial is let through
(half-open), ``success_threshold`` good trials close it, listeners hear every event,
and a ``state_storage`` lets processes share one circuit. Its own async support needs
Tornado, so :class:`Breaker` takes the steps of pybreaker's ``call_async`` itself:
admission before the await, ``_handle_success``/``_handle_error`` of the current state
after it. The threading lock is held only around those synchronous steps, never across
an await.

On top of pybreaker, :class:`Breaker` adds what Resilience4j users expect:

- a slow-call rate: calls lasting ``>= SlowCallPolicy.threshold`` are slow; over a
  sliding window of the last ``window`` calls (once ``minimum_calls`` are in), a share
  of slow calls ``>= rate`` opens the circuit;
- a limited number of concurrent trial calls while half-open;
- one :mod:`~ordercore.resilience.classify` classifier deciding what counts as a
  failure (business errors count as successes: the service answered);
- a state-change history and subscribers, for dashboards and incident replays;
- OpenTelemetry metrics (state gauge, transitions, calls, durations).

The core does not import pybreaker (STYLE.md rule 1): the caller builds the
``pybreaker.CircuitBreaker`` and hands it in. Anything with the same surface
(:class:`BreakerMachine`) works as well.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import TracebackType
from typing import Any, ParamSpec, Protocol, TypeVar

from opentelemetry import trace

from ordercore.errors import CircuitOpen, FieldError, InvalidInput
from ordercore.resilience import _telemetry
from ordercore.resilience.classify import Classifier, ErrorKind, default_classifier
from ordercore.resilience.clock import SystemTime, TimeSource
from ordercore.resilience.store import StateStore

__all__ = [
    "Breaker",
    "BreakerMachine",
    "BreakerState",
    "Permit",
    "SlowCallPolicy",
    "StateChange",
]

P = ParamSpec("P")
T = TypeVar("T")


class BreakerState(StrEnum):
    """The three states, spelled as pybreaker spells them."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class _MachineState(Protocol):
    """One of pybreaker's state objects (closed, open, half-open)."""

    @property
    def name(self) -> str: ...

    def _handle_error(self, exc: BaseException, reraise: bool = ...) -> None: ...

    def _handle_success(self) -> None: ...


class BreakerMachine(Protocol):
    """The surface of ``pybreaker.CircuitBreaker`` (1.x) that :class:`Breaker` drives."""

    _lock: AbstractContextManager[Any]
    _state_storage: StateStore

    @property
    def name(self) -> str | None: ...

    @property
    def state(self) -> _MachineState: ...

    @property
    def fail_counter(self) -> int: ...

    @property
    def fail_max(self) -> int: ...

    @property
    def reset_timeout(self) -> float: ...

    @property
    def listeners(self) -> tuple[Any, ...]: ...

    def add_listener(self, listener: Any) -> None: ...

    def open(self) -> bool: ...

    def half_open(self) -> None: ...

    def close(self) -> None: ...


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@dataclass(frozen=True, slots=True)
class SlowCallPolicy:
    """Open the circuit when too many recent calls were slow (Resilience4j semantics).

    ``threshold``: a call lasting at least this long (seconds or timedelta) is slow.
    ``rate``: the share of slow calls in the window, 0 < rate <= 1, that opens the circuit.
    ``window``: how many of the latest calls the rate is computed over.
    ``minimum_calls``: no decision before this many calls are in the window.
    """

    threshold: float | timedelta
    rate: float = 0.5
    window: int = 20
    minimum_calls: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold", _seconds(self.threshold))
        errors: list[FieldError] = []
        if _seconds(self.threshold) <= 0:
            errors.append(FieldError("threshold", "must be > 0 seconds", self.threshold))
        if not 0 < self.rate <= 1:
            errors.append(FieldError("rate", "must be in (0, 1]", self.rate))
        if self.window < 1:
            errors.append(FieldError("window", "must be >= 1", self.window))
        if not 1 <= self.minimum_calls <= self.window:
            errors.append(
                FieldError(
                    "minimum_calls", f"must be in [1, window={self.window}]", self.minimum_calls
                )
            )
        if errors:
            raise InvalidInput("slow-call policy", errors)

    @property
    def threshold_seconds(self) -> float:
        """The threshold in seconds."""
        return _seconds(self.threshold)


@dataclass(frozen=True, slots=True)
class StateChange:
    """One transition of a breaker: from, to, when and why."""

    service: str
    old: BreakerState
    new: BreakerState
    at: datetime
    reason: str

    def as_dict(self) -> dict[str, str]:
        """A JSON-ready form."""
        return {
            "service": self.service,
            "old": self.old.value,
            "new": self.new.value,
            "at": self.at.isoformat(),
            "reason": self.reason,
        }


@dataclass(slots=True)
class Permit:
    """Admission of one call; the breaker records its outcome once, when the call ends."""

    state: BreakerState
    trial: bool
    time: TimeSource
    started: float
    recorded: bool = field(default=False)

    def restart_timing(self) -> None:
        """Measure the call's duration from now on (leave out local waits before it)."""
        self.started = self.time.monotonic()


class _Recorder:
    """A pybreaker listener that keeps the history and telemetry of its breaker."""

    def __init__(self, owner: Breaker) -> None:
        self._owner = owner

    def before_call(self, cb: Any, func: Any, *args: Any, **kwargs: Any) -> None:
        """Nothing to do before a call."""

    def success(self, cb: Any) -> None:
        """Nothing to do on success (counted by the breaker)."""

    def failure(self, cb: Any, exc: BaseException) -> None:
        """Nothing to do on failure (counted by the breaker)."""

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        """Record the transition, stamp the opening time, tell subscribers."""
        self._owner._on_transition(
            BreakerState(old_state.name) if old_state is not None else BreakerState.CLOSED,
            BreakerState(new_state.name),
        )


class _Guard:
    """``async with breaker.guard():`` for one call."""

    __slots__ = ("_breaker", "_permit")

    def __init__(self, breaker: Breaker) -> None:
        self._breaker = breaker
        self._permit: Permit | None = None

    async def __aenter__(self) -> Permit:
        self._permit = self._breaker.admit()
        return self._permit

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._permit is not None:
            self._breaker.record(self._permit, exc)


class Breaker:
    """A circuit breaker for one outside service, usable from any anyio task.

    ``machine`` is a ``pybreaker.CircuitBreaker`` (give it a ``name``, ``fail_max``,
    ``reset_timeout``, ``success_threshold``, listeners and a ``state_storage``).
    Use it as ``async with breaker:``, ``async with breaker.guard():`` or
    ``await breaker.call(fn, *args)``; while open, each raises :class:`CircuitOpen`
    without running the body.
    """

    def __init__(
        self,
        machine: BreakerMachine,
        *,
        name: str | None = None,
        slow_calls: SlowCallPolicy | None = None,
        half_open_max_calls: int = 1,
        classifier: Classifier = default_classifier,
        time: TimeSource | None = None,
        history_size: int = 200,
    ) -> None:
        resolved = name or machine.name
        errors: list[FieldError] = []
        if not resolved:
            errors.append(FieldError("name", "give the breaker or its machine a name", resolved))
        if half_open_max_calls < 1:
            errors.append(FieldError("half_open_max_calls", "must be >= 1", half_open_max_calls))
        if history_size < 1:
            errors.append(FieldError("history_size", "must be >= 1", history_size))
        if errors:
            raise InvalidInput("breaker", errors)
        self.name: str = str(resolved)
        self.machine = machine
        self.slow_calls = slow_calls
        self.half_open_max_calls = half_open_max_calls
        self._classify = classifier
        self._time = time or SystemTime()
        self._history: deque[StateChange] = deque(maxlen=history_size)
        self._subscribers: list[Callable[[StateChange], None]] = []
        self._window: deque[bool] = deque(maxlen=slow_calls.window if slow_calls else 1)
        self._trials = 0
        self._reason: str | None = None
        self._permits: ContextVar[tuple[_Guard, ...]] = ContextVar(
            f"ordercore.breaker.{self.name}", default=()
        )
        self.calls = 0
        self.failures = 0
        self.slow = 0
        self.rejected = 0
        machine.add_listener(_Recorder(self))
        _telemetry.track(self)

    # -- state -------------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The state as stored (an open circuit whose timeout passed still reads open)."""
        return BreakerState(self.machine.state.name)

    @property
    def store(self) -> StateStore:
        """The machine's state storage."""
        return self.machine._state_storage

    @property
    def retry_at(self) -> datetime | None:
        """While open: when the next trial call will be let through; otherwise None."""
        if self.state is not BreakerState.OPEN:
            return None
        opened_at = self.store.opened_at
        if opened_at is None:
            return None
        return opened_at + timedelta(seconds=_seconds(self.machine.reset_timeout))

    @property
    def fail_counter(self) -> int:
        """Consecutive failures counted so far (reset by a success)."""
        return self.machine.fail_counter

    @property
    def slow_call_rate(self) -> float | None:
        """Share of slow calls in the current window, or None before ``minimum_calls``."""
        if self.slow_calls is None or len(self._window) < self.slow_calls.minimum_calls:
            return None
        return sum(self._window) / len(self._window)

    @property
    def history(self) -> tuple[StateChange, ...]:
        """The latest state changes, oldest first."""
        return tuple(self._history)

    def subscribe(self, callback: Callable[[StateChange], None]) -> Callable[[], None]:
        """Call ``callback`` on every state change; returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def admits(self) -> bool:
        """Whether a call made now would be let through (changes nothing)."""
        state = self.state
        if state is BreakerState.OPEN:
            retry_at = self.retry_at
            return retry_at is None or self._time.now() >= retry_at
        if state is BreakerState.HALF_OPEN:
            return self._trials < self.half_open_max_calls
        return True

    def open(self, reason: str = "opened by hand") -> None:
        """Force the circuit open (an operator's switch, or a replay)."""
        with self.machine._lock:
            self._transition(reason, self.machine.open)

    def close(self, reason: str = "closed by hand") -> None:
        """Force the circuit closed."""
        with self.machine._lock:
            self._transition(reason, self.machine.close)

    # -- calls -------------------------------------------------------------------------

    def guard(self) -> AbstractAsyncContextManager[Permit]:
        """An async context manager guarding one call; it yields the :class:`Permit`."""
        return _Guard(self)

    async def __aenter__(self) -> Permit:
        guard = _Guard(self)
        permit = await guard.__aenter__()
        self._permits.set((*self._permits.get(), guard))
        return permit

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        *rest, guard = self._permits.get()
        self._permits.set(tuple(rest))
        await guard.__aexit__(exc_type, exc, tb)

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` under the breaker (pybreaker listeners included)."""
        async with self.guard():
            for listener in self.machine.listeners:
                listener.before_call(self.machine, fn, *args, **kwargs)
            return await fn(*args, **kwargs)

    def admit(self) -> Permit:
        """Let one call through or raise :class:`CircuitOpen`; pair with :meth:`record`."""
        with self.machine._lock:
            state = BreakerState(self.machine.state.name)
            if state is BreakerState.OPEN:
                retry_at = self.retry_at
                if retry_at is not None and self._time.now() < retry_at:
                    self.rejected += 1
                    raise CircuitOpen(self.name, state.value, retry_at)
                self._transition(
                    "reset timeout elapsed: trial calls allowed", self.machine.half_open
                )
                state = BreakerState.HALF_OPEN
            if state is BreakerState.HALF_OPEN:
                if self._trials >= self.half_open_max_calls:
                    self.rejected += 1
                    raise CircuitOpen(self.name, state.value)
                self._trials += 1
                return Permit(state, True, self._time, self._time.monotonic())
            return Permit(state, False, self._time, self._time.monotonic())

    def record(self, permit: Permit, exc: BaseException | None) -> None:
        """Count the outcome of an admitted call: ``exc`` is what it raised, or None."""
        if permit.recorded:
            return
        permit.recorded = True
        duration = self._time.monotonic() - permit.started
        with self.machine._lock:
            if permit.trial:
                self._trials -= 1
            if exc is not None and not isinstance(exc, Exception):
                return  # cancelled or interrupted: says nothing about the service
            kind = None if exc is None else self._classify(exc)
            if kind is ErrorKind.LOCAL:
                return
            machine_state = self.machine.state
            if machine_state.name != permit.state.value:
                return  # the circuit moved on while this call ran: its outcome is stale
            failed = kind is ErrorKind.TRANSIENT or kind is ErrorKind.PERMANENT
            slow = self.slow_calls is not None and duration >= self.slow_calls.threshold_seconds
            self._count(failed=failed, slow=slow, duration=duration)
            if failed:
                assert exc is not None
                self._handle_failure(machine_state, exc, permit.state)
            elif slow and permit.trial:
                self._transition("a trial call was slow", self.machine.open)
            else:
                reason = "trial calls succeeded"
                self._transition(reason, machine_state._handle_success)
            if permit.state is BreakerState.CLOSED and self.state is BreakerState.CLOSED:
                self._note_slowness(slow)

    # -- internals ---------------------------------------------------------------------

    def _handle_failure(self, machine_state: _MachineState, exc: BaseException, was: str) -> None:
        if was == BreakerState.HALF_OPEN:
            reason = f"trial call failed: {type(exc).__name__}"
        else:
            reason = (
                f"{self.machine.fail_max} consecutive failures (fail_max), "
                f"last {type(exc).__name__}"
            )
        try:
            self._transition(reason, lambda: machine_state._handle_error(exc, reraise=False))
        except Exception as signal:
            # pybreaker signals a trip by raising (CircuitBreakerError or exc itself);
            # the caller gets the original exception, so only unexpected errors go on.
            if signal is not exc and self.state is not BreakerState.OPEN:
                raise

    def _note_slowness(self, slow: bool) -> None:
        policy = self.slow_calls
        if policy is None:
            return
        self._window.append(slow)
        rate = self.slow_call_rate
        if rate is not None and rate >= policy.rate:
            reason = (
                f"slow-call rate {rate:.0%} >= {policy.rate:.0%} over the last "
                f"{len(self._window)} calls (slow: >= {policy.threshold_seconds:g}s)"
            )
            self._transition(reason, self.machine.open)

    def _count(self, *, failed: bool, slow: bool, duration: float) -> None:
        self.calls += 1
        self.failures += failed
        self.slow += slow
        attributes = {
            _telemetry.SERVICE: self.name,
            "ordercore.outcome": "failure" if failed else "success",
            "ordercore.slow": slow,
        }
        _telemetry.calls.add(1, attributes)
        _telemetry.call_duration.record(duration, {_telemetry.SERVICE: self.name})

    def _transition(self, reason: str, step: Callable[[], object]) -> None:
        self._reason = reason
        try:
            step()
        finally:
            self._reason = None

    def _on_transition(self, old: BreakerState, new: BreakerState) -> None:
        ours = self._reason is not None
        if new is BreakerState.OPEN and ours:
            self.store.opened_at = self._time.now()
        if new is not BreakerState.HALF_OPEN:
            self._window.clear()
        change = StateChange(
            self.name, old, new, self._time.now(), self._reason or "changed by another breaker"
        )
        self._history.append(change)
        _telemetry.transitions.add(1, {_telemetry.SERVICE: self.name, "ordercore.state": new.value})
        trace.get_current_span().add_event(
            "ordercore.resilience.breaker.state_change",
            {_telemetry.SERVICE: self.name, "ordercore.from": old.value, "ordercore.to": new.value},
        )
        for callback in list(self._subscribers):
            callback(change)
