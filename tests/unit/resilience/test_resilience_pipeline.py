"""The pipeline: the documented wrapper order and what that order means for callers."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from _resilience_helpers import Service

from ordercore.errors import BulkheadFull, CircuitOpen
from ordercore.resilience import (
    ORDER,
    Breaker,
    BreakerState,
    Bulkhead,
    ManualTime,
    Pipeline,
    RateLimiter,
    RetryPolicy,
    ServiceGateway,
    SlowCallPolicy,
    resilient,
)

pytestmark = pytest.mark.anyio

MakeBreaker = Callable[..., Breaker]
DOCS = Path(__file__).resolve().parents[3] / "docs" / "resilience.md"


def test_the_docs_state_the_order_the_code_applies() -> None:
    """docs/resilience.md shows the wrappers in ORDER, outside in."""
    nested = "( ".join(ORDER) + "( call " + ")" * len(ORDER)
    text = re.sub(r"\s+", " ", DOCS.read_text())
    assert nested in text
    assert ORDER == ("fallback", "retry", "breaker", "rate_limit", "bulkhead", "timeout")


async def test_retries_stop_as_soon_as_the_breaker_opens(
    make_breaker: MakeBreaker, service: Service, time: ManualTime
) -> None:
    """Retry outside the breaker: every attempt counts, and the open circuit ends retrying.

    With retry inside the breaker the dead service would get all six attempts and the
    breaker would count one failure.
    """
    breaker = make_breaker(fail_max=3)
    pipeline = Pipeline(
        service="courier.sf", breaker=breaker, retry=RetryPolicy(attempts=6), time=time
    )
    service.fail_next(*(ConnectionError("refused") for _ in range(6)))
    with pytest.raises(CircuitOpen):
        await pipeline.call(service.work)
    assert service.calls == 3
    assert breaker.state is BreakerState.OPEN


async def test_an_open_circuit_uses_no_rate_token_and_no_slot(
    make_breaker: MakeBreaker, service: Service, time: ManualTime
) -> None:
    """Breaker outside rate limit and bulkhead: rejected calls neither wait nor take."""
    breaker = make_breaker()
    limiter = RateLimiter(1.0, burst=2, time=time)
    bulkhead = Bulkhead(1)
    pipeline = Pipeline(
        service="courier.sf", breaker=breaker, rate_limiter=limiter, bulkhead=bulkhead, time=time
    )
    breaker.open()
    for _ in range(5):
        with pytest.raises(CircuitOpen):
            await pipeline.call(service.work)
    assert limiter.available("courier.sf") == 2
    assert time.sleeps == []


async def test_backoff_sleeps_hold_no_bulkhead_slot(service: Service) -> None:
    """Bulkhead inside retry: while a retry waits, its slot is free for others."""
    bulkhead = Bulkhead(1)
    in_flight_while_sleeping: list[int] = []

    class Watching(ManualTime):
        async def sleep(self, seconds: float) -> None:
            in_flight_while_sleeping.append(bulkhead.in_flight)
            await super().sleep(seconds)

    time = Watching()
    service.time = time
    pipeline = Pipeline(
        service="courier.sf", bulkhead=bulkhead, retry=RetryPolicy(attempts=3), time=time
    )
    service.fail_next(ConnectionError(), ConnectionError())
    await pipeline.call(service.work)
    assert in_flight_while_sleeping == [0, 0]


async def test_waiting_for_a_rate_token_is_not_a_slow_call(
    make_breaker: MakeBreaker, service: Service, time: ManualTime
) -> None:
    """The breaker times only the call: a 10s wait in our own limiter is not slowness."""
    policy = SlowCallPolicy(threshold=1.0, rate=0.5, window=2, minimum_calls=2)
    breaker = make_breaker(slow_calls=policy)
    limiter = RateLimiter(0.1, time=time)
    pipeline = Pipeline(service="courier.sf", breaker=breaker, rate_limiter=limiter, time=time)
    for _ in range(3):
        await pipeline.call(service.work)
    assert time.sleeps == pytest.approx([10.0, 10.0])
    assert breaker.slow == 0
    assert breaker.state is BreakerState.CLOSED


async def test_each_attempt_gets_its_own_timeout(
    make_breaker: MakeBreaker, time: ManualTime
) -> None:
    """Timeout innermost: a hung first attempt is cut off and the retry answers."""
    breaker = make_breaker()
    attempts = 0

    async def waybill() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await anyio.sleep_forever()
        return "W1"

    pipeline = Pipeline(
        service="courier.sf",
        breaker=breaker,
        timeout=0.02,
        retry=RetryPolicy(attempts=2),
        time=time,
    )
    assert await pipeline.call(waybill) == "W1"
    assert (breaker.calls, breaker.failures) == (2, 1)


async def test_local_refusals_count_neither_for_nor_against_the_service(
    make_breaker: MakeBreaker, time: ManualTime
) -> None:
    """A full bulkhead refuses a call; the breaker records only the call that ran."""
    breaker = make_breaker(fail_max=1)
    gateway = ServiceGateway(time=time)
    pipeline = Pipeline(
        service="courier.sf", breaker=breaker, bulkhead=Bulkhead(1), gateway=gateway, time=time
    )
    gate = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(pipeline.call, gate.wait)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(BulkheadFull):
            await pipeline.call(gate.wait)
        gate.set()
    assert breaker.state is BreakerState.CLOSED
    assert (breaker.calls, breaker.failures) == (1, 0)
    assert gateway.snapshot().dependency("courier.sf").rejected == 1


async def test_the_rate_key_comes_from_the_call(service: Service, time: ManualTime) -> None:
    """rate_key picks the shop: two shops do not wait for each other."""
    limiter = RateLimiter(1.0, time=time)
    pipeline = Pipeline(
        service="taobao",
        rate_limiter=limiter,
        rate_key=lambda shop: shop,
        time=time,
    )
    await pipeline.call(service.work, "shop-1")
    await pipeline.call(service.work, "shop-2")
    await pipeline.call(service.work, "shop-1")
    assert time.sleeps == pytest.approx([1.0])


class Courier:
    """A port with a read (safe to retry) and a write (not), and a plain attribute."""

    code = "sf"

    def __init__(self) -> None:
        self.quotes = 0
        self.creates = 0

    async def quote(self, weight: int) -> int:
        self.quotes += 1
        if self.quotes == 1:
            raise ConnectionError("refused")
        return weight * 2

    async def create_waybill(self, order_id: str) -> str:
        self.creates += 1
        if self.creates == 1:
            raise ConnectionError("refused")
        return f"WB-{order_id}"


async def test_a_resilient_port_applies_the_policy_per_method(time: ManualTime) -> None:
    """quote() is retried; create_waybill() has a no-retry variant; attributes pass through."""
    courier = Courier()
    pipeline = Pipeline(service="courier.sf", retry=RetryPolicy(attempts=3), time=time)
    port = resilient(courier, pipeline, methods={"create_waybill": pipeline.replace(retry=None)})
    assert await port.quote(3) == 6
    with pytest.raises(ConnectionError):
        await port.create_waybill("O-1")
    assert (courier.quotes, courier.creates) == (2, 1)
    assert port.code == "sf"


async def test_the_pipeline_feeds_the_gateway(service: Service, time: ManualTime) -> None:
    """Every call that reached the service is in the gateway with its duration."""
    gateway = ServiceGateway(time=time)
    pipeline = Pipeline(service="courier.sf", gateway=gateway, time=time)
    service.duration = 0.25
    await pipeline.call(service.work)
    service.fail_next(ConnectionError())
    with pytest.raises(ConnectionError):
        await pipeline.call(service.work)
    view = gateway.snapshot().dependency("courier.sf")
    assert (view.calls, view.failures, view.p50_ms) == (2, 1, 250.0)
