"""The circuit breaker: pybreaker's state machine driven around anyio awaits."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import anyio
import pybreaker
import pytest
from _resilience_helpers import Service

from ordercore.errors import CircuitOpen, InsufficientStock, InvalidInput
from ordercore.resilience import (
    Breaker,
    BreakerState,
    ErrorKind,
    ManualTime,
    MemoryStateStore,
    SlowCallPolicy,
    StateChange,
    StateStore,
)

pytestmark = pytest.mark.anyio

MakeBreaker = Callable[..., Breaker]


async def _fail_times(breaker: Breaker, service: Service, times: int) -> None:
    service.fail_next(*(ConnectionError("refused") for _ in range(times)))
    for _ in range(times):
        with pytest.raises(ConnectionError):
            await breaker.call(service.work)


async def test_opens_after_fail_max_consecutive_failures(
    make_breaker: MakeBreaker, service: Service
) -> None:
    """Three consecutive transient failures (fail_max=3) open the circuit."""
    breaker = make_breaker(fail_max=3)
    await _fail_times(breaker, service, 2)
    assert breaker.state is BreakerState.CLOSED
    await _fail_times(breaker, service, 1)
    assert breaker.state is BreakerState.OPEN


async def test_a_success_resets_the_consecutive_failure_count(
    make_breaker: MakeBreaker, service: Service
) -> None:
    """Failures separated by a success never reach fail_max."""
    breaker = make_breaker(fail_max=2)
    for _ in range(3):
        await _fail_times(breaker, service, 1)
        await breaker.call(service.work)
    assert breaker.state is BreakerState.CLOSED


async def test_rejects_without_calling_while_open(
    make_breaker: MakeBreaker, service: Service, time: ManualTime
) -> None:
    """An open circuit raises CircuitOpen naming the service and the retry time; no call."""
    breaker = make_breaker(fail_max=1, reset_timeout=30)
    await _fail_times(breaker, service, 1)
    with pytest.raises(CircuitOpen) as caught:
        await breaker.call(service.work)
    assert service.calls == 1
    assert caught.value.service == "courier.sf"
    assert caught.value.retry_at == time.now() + timedelta(seconds=30)
    assert breaker.rejected == 1


async def test_async_with_rejects_the_body_while_open(
    make_breaker: MakeBreaker, service: Service
) -> None:
    """``async with breaker:`` does not run its body while the circuit is open."""
    breaker = make_breaker(fail_max=1)
    await _fail_times(breaker, service, 1)
    ran = False
    with pytest.raises(CircuitOpen):
        async with breaker:
            ran = True
    assert not ran


async def test_business_errors_count_as_answers_not_failures(
    make_breaker: MakeBreaker, service: Service
) -> None:
    """An OrderCoreError the caller caused (insufficient stock) never opens the circuit."""
    breaker = make_breaker(fail_max=2)
    service.fail_next(*(InsufficientStock("SKU-1", "main", 5, 0) for _ in range(4)))
    for _ in range(4):
        with pytest.raises(InsufficientStock):
            await breaker.call(service.work)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.fail_counter == 0


async def test_which_errors_count_is_configurable(
    make_breaker: MakeBreaker, service: Service
) -> None:
    """A classifier that calls ValueError a business error keeps the circuit closed."""

    def classifier(exc: BaseException) -> ErrorKind:
        return ErrorKind.BUSINESS if isinstance(exc, ValueError) else ErrorKind.TRANSIENT

    breaker = make_breaker(fail_max=1, classifier=classifier)
    service.fail_next(ValueError("bad weight"))
    with pytest.raises(ValueError, match="bad weight"):
        await breaker.call(service.work)
    assert breaker.state is BreakerState.CLOSED


async def test_pybreaker_exclusions_are_honoured(time: ManualTime, service: Service) -> None:
    """An exception excluded on the pybreaker machine does not count as a failure."""
    machine = pybreaker.CircuitBreaker(fail_max=1, exclude=[KeyError], name="courier.sf")
    breaker = Breaker(machine, time=time)
    service.fail_next(KeyError("waybill"))
    with pytest.raises(KeyError):
        await breaker.call(service.work)
    assert breaker.state is BreakerState.CLOSED


async def test_opens_on_a_slow_call_rate(make_breaker: MakeBreaker, service: Service) -> None:
    """Half of the last four calls slow (>= 1s) opens the circuit though none failed."""
    policy = SlowCallPolicy(threshold=1.0, rate=0.5, window=4, minimum_calls=4)
    breaker = make_breaker(fail_max=100, slow_calls=policy)
    for duration in (2.0, 0.1, 2.0):
        service.duration = duration
        await breaker.call(service.work)
    assert breaker.state is BreakerState.CLOSED
    service.duration = 0.1
    await breaker.call(service.work)
    assert breaker.state is BreakerState.OPEN
    assert "slow-call rate 50%" in breaker.history[-1].reason


async def test_a_slow_rate_below_the_threshold_keeps_the_circuit_closed(
    make_breaker: MakeBreaker, service: Service
) -> None:
    """One slow call in four (25% < 50%) does not open the circuit."""
    policy = SlowCallPolicy(threshold=1.0, rate=0.5, window=4, minimum_calls=4)
    breaker = make_breaker(slow_calls=policy)
    for duration in (2.0, 0.1, 0.1, 0.1, 0.1):
        service.duration = duration
        await breaker.call(service.work)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.slow_call_rate == 0.0


async def test_no_slow_call_verdict_before_minimum_calls(
    make_breaker: MakeBreaker, service: Service
) -> None:
    """Three slow calls stay below minimum_calls=5: no decision yet."""
    policy = SlowCallPolicy(threshold=1.0, rate=0.5, window=10, minimum_calls=5)
    breaker = make_breaker(slow_calls=policy)
    service.duration = 5.0
    for _ in range(3):
        await breaker.call(service.work)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.slow_call_rate is None


async def test_half_open_trial_success_closes(
    make_breaker: MakeBreaker, service: Service, time: ManualTime
) -> None:
    """After reset_timeout one trial call goes through; its success closes the circuit."""
    breaker = make_breaker(fail_max=1, reset_timeout=30)
    await _fail_times(breaker, service, 1)
    time.advance(30)
    assert await breaker.call(service.work) == "svc:ok"
    assert breaker.state is BreakerState.CLOSED
    assert [(c.old, c.new) for c in breaker.history] == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]


async def test_half_open_trial_failure_reopens(
    make_breaker: MakeBreaker, service: Service, time: ManualTime
) -> None:
    """A failed trial call opens the circuit again for another reset_timeout."""
    breaker = make_breaker(fail_max=1, reset_timeout=30)
    await _fail_times(breaker, service, 1)
    time.advance(31)
    await _fail_times(breaker, service, 1)
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_at == time.now() + timedelta(seconds=30)
    assert breaker.history[-1].reason == "trial call failed: ConnectionError"


async def test_a_slow_trial_call_reopens(
    make_breaker: MakeBreaker, service: Service, time: ManualTime
) -> None:
    """A trial call slower than the slow-call threshold counts as a failed trial."""
    policy = SlowCallPolicy(threshold=1.0, window=2, minimum_calls=2)
    breaker = make_breaker(fail_max=1, slow_calls=policy)
    await _fail_times(breaker, service, 1)
    time.advance(30)
    service.duration = 3.0
    await breaker.call(service.work)
    assert breaker.state is BreakerState.OPEN


async def test_success_threshold_needs_that_many_trials(
    make_breaker: MakeBreaker, service: Service, time: ManualTime
) -> None:
    """With success_threshold=2 the circuit closes only after the second good trial."""
    breaker = make_breaker(fail_max=1, success_threshold=2)
    await _fail_times(breaker, service, 1)
    time.advance(30)
    await breaker.call(service.work)
    assert breaker.state is BreakerState.HALF_OPEN
    await breaker.call(service.work)
    assert breaker.state is BreakerState.CLOSED


async def test_half_open_limits_concurrent_trial_calls(
    make_breaker: MakeBreaker, service: Service, time: ManualTime
) -> None:
    """With half_open_max_calls=2 a third concurrent trial is rejected without a call."""
    breaker = make_breaker(fail_max=1, half_open_max_calls=2, success_threshold=2)
    await _fail_times(breaker, service, 1)
    time.advance(30)
    release = anyio.Event()
    started = 0
    results: list[str] = []

    async def trial() -> str:
        nonlocal started
        started += 1
        await release.wait()
        return "ok"

    async def run() -> None:
        results.append(await breaker.call(trial))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        tg.start_soon(run)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(CircuitOpen) as caught:
            await breaker.call(trial)
        release.set()
    assert caught.value.state == "half-open"
    assert started == 2
    assert results == ["ok", "ok"]
    assert breaker.state is BreakerState.CLOSED


async def test_concurrent_tasks_share_one_breaker(make_breaker: MakeBreaker) -> None:
    """Twenty tasks in ``async with breaker:`` at once are each counted exactly once."""
    breaker = make_breaker(fail_max=100)
    gate = anyio.Event()

    async def one(index: int) -> None:
        async with breaker:
            await gate.wait()
            if index % 4 == 0:
                raise ConnectionError("refused")

    async def guarded(index: int) -> None:
        with contextlib.suppress(ConnectionError):
            await one(index)

    async with anyio.create_task_group() as tg:
        for index in range(20):
            tg.start_soon(guarded, index)
        await anyio.wait_all_tasks_blocked()
        gate.set()
    assert breaker.calls == 20
    assert breaker.failures == 5


async def test_concurrent_failures_open_once(make_breaker: MakeBreaker) -> None:
    """Ten tasks failing together open the circuit once; late outcomes are ignored."""
    breaker = make_breaker(fail_max=3)
    gate = anyio.Event()

    async def failing() -> None:
        await gate.wait()
        raise ConnectionError("refused")

    async def run() -> None:
        with pytest.raises(ConnectionError):
            await breaker.call(failing)

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(run)
        await anyio.wait_all_tasks_blocked()
        gate.set()
    assert breaker.state is BreakerState.OPEN
    assert [change.new for change in breaker.history] == [BreakerState.OPEN]


async def test_a_cancelled_trial_frees_its_permit(
    make_breaker: MakeBreaker, service: Service, time: ManualTime
) -> None:
    """A trial call cancelled from outside counts for nothing and frees the trial slot."""
    breaker = make_breaker(fail_max=1)
    await _fail_times(breaker, service, 1)
    time.advance(30)
    with anyio.move_on_after(0.01):
        await breaker.call(anyio.sleep_forever)
    assert breaker.state is BreakerState.HALF_OPEN
    await breaker.call(service.work)
    assert breaker.state is BreakerState.CLOSED


async def test_pybreaker_listeners_hear_every_event(
    make_breaker: MakeBreaker, service: Service
) -> None:
    """A pybreaker listener sees before_call, failure, success and state changes."""
    heard: list[str] = []

    class Listener(pybreaker.CircuitBreakerListener):
        def before_call(self, cb: Any, func: Any, *args: Any, **kwargs: Any) -> None:
            heard.append("before_call")

        def failure(self, cb: Any, exc: BaseException) -> None:
            heard.append(f"failure:{type(exc).__name__}")

        def success(self, cb: Any) -> None:
            heard.append("success")

        def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
            heard.append(f"{old_state.name}->{new_state.name}")

    breaker = make_breaker(fail_max=1, listeners=[Listener()])
    await breaker.call(service.work)
    await _fail_times(breaker, service, 1)
    assert heard == [
        "before_call",
        "success",
        "before_call",
        "failure:ConnectionError",
        "closed->open",
    ]


async def test_breakers_sharing_a_store_share_the_circuit(
    make_breaker: MakeBreaker, service: Service
) -> None:
    """Two breakers (two processes) on one state store: one opens, the other rejects."""
    store = MemoryStateStore("courier.sf")
    here = make_breaker(fail_max=1, store=store)
    there = make_breaker(fail_max=1, store=store)
    await _fail_times(here, service, 1)
    with pytest.raises(CircuitOpen):
        await there.call(service.work)
    assert there.history[-1].reason == "changed by another breaker"


async def test_subscribers_receive_state_changes(
    make_breaker: MakeBreaker, service: Service, time: ManualTime
) -> None:
    """A subscriber gets each StateChange with its time and reason; unsubscribe stops it."""
    breaker = make_breaker(fail_max=1)
    seen: list[StateChange] = []
    unsubscribe = breaker.subscribe(seen.append)
    await _fail_times(breaker, service, 1)
    unsubscribe()
    breaker.close()
    assert [change.as_dict() for change in seen] == [
        {
            "service": "courier.sf",
            "old": "closed",
            "new": "open",
            "at": time.now().isoformat(),
            "reason": "1 consecutive failures (fail_max), last ConnectionError",
        }
    ]


async def test_forced_open_and_close(make_breaker: MakeBreaker, service: Service) -> None:
    """An operator can force the circuit open and closed; history names the reason."""
    breaker = make_breaker()
    breaker.open("courier maintenance window")
    with pytest.raises(CircuitOpen):
        await breaker.call(service.work)
    breaker.close()
    assert await breaker.call(service.work) == "svc:ok"
    assert [change.reason for change in breaker.history] == [
        "courier maintenance window",
        "closed by hand",
    ]


def test_slow_call_policy_rejects_bad_values() -> None:
    """A slow-call rate above 1 is refused, naming the field."""
    with pytest.raises(InvalidInput, match=r"rate: must be in \(0, 1\] \(got 1.5\)"):
        SlowCallPolicy(threshold=1.0, rate=1.5)


def test_a_breaker_needs_a_name(time: ManualTime) -> None:
    """A machine without a name and no name given is refused."""
    with pytest.raises(InvalidInput, match="name"):
        Breaker(pybreaker.CircuitBreaker(), time=time)


def test_pybreaker_still_has_the_surface_we_drive() -> None:
    """pybreaker's private hooks used by Breaker exist (fails loudly on an upgrade)."""
    machine = pybreaker.CircuitBreaker(name="x")
    for attribute in ("_lock", "_state_storage", "fail_max", "reset_timeout", "listeners"):
        assert hasattr(machine, attribute)
    assert callable(machine.state._handle_error)
    assert callable(machine.state._handle_success)


def test_pybreaker_storages_are_state_stores() -> None:
    """pybreaker's memory and Redis storages have every member of StateStore."""
    members = [
        "name",
        "state",
        "counter",
        "success_counter",
        "opened_at",
        "increment_counter",
        "reset_counter",
        "increment_success_counter",
        "reset_success_counter",
    ]
    assert isinstance(pybreaker.CircuitMemoryStorage("closed"), StateStore)
    assert isinstance(MemoryStateStore(), StateStore)
    assert all(hasattr(pybreaker.CircuitRedisStorage, member) for member in members)
