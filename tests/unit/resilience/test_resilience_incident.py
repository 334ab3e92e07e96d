"""The incident, replayed on the toolkit: a courier's waybill API hangs under load."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from ordercore.resilience import (
    Breaker,
    BreakerState,
    Bulkhead,
    Failover,
    ManualTime,
    Pipeline,
    resilient,
)

pytestmark = pytest.mark.anyio

MakeBreaker = Callable[..., Breaker]


class Courier:
    """A courier API; ``hangs`` makes every waybill request wait forever."""

    def __init__(self, code: str, *, hangs: bool = False) -> None:
        self.code = code
        self.hangs = hangs
        self.requests = 0

    async def create_waybill(self, order_id: str) -> str:
        self.requests += 1
        if self.hangs:
            await anyio.sleep_forever()
        return f"{self.code}-{order_id}"


async def test_a_hung_courier_costs_a_few_slots_and_every_order_still_ships(
    make_breaker: MakeBreaker, time: ManualTime
) -> None:
    """50 orders at once against a hung primary: 5 requests reach it, all 50 ship via backup."""
    hung, backup = Courier("sf", hangs=True), Courier("yto")
    breaker = make_breaker("courier.sf", fail_max=3)
    primary = resilient(
        hung,
        Pipeline(
            service="courier.sf", timeout=0.05, breaker=breaker, bulkhead=Bulkhead(5), time=time
        ),
    )
    chain = Failover("courier", [primary, resilient(backup, Pipeline(service="courier.yto"))])
    shipped: dict[str, tuple[str, str]] = {}

    async def ship(order_id: str) -> None:
        source, waybill = await chain.invoke_with_source(lambda c: c.create_waybill(order_id))
        shipped[order_id] = (source, waybill)

    async with anyio.create_task_group() as tg:
        for index in range(50):
            tg.start_soon(ship, f"O{index}")
    assert len(shipped) == 50
    assert {source for source, _ in shipped.values()} == {"courier.yto"}
    assert shipped["O7"] == ("courier.yto", "yto-O7")
    assert hung.requests == 5
    assert breaker.state is BreakerState.OPEN

    for index in range(50, 60):
        await ship(f"O{index}")
    assert hung.requests == 5
