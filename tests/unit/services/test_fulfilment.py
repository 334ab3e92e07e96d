"""The fulfilment pipeline on the memory storage: steps, events, idempotency, degradation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ordercore.config import Settings
from ordercore.core import OrderCore
from ordercore.domain.couriers import WaybillState
from ordercore.domain.events import EventEnvelope
from ordercore.domain.inventory import ReservationStatus
from ordercore.domain.orders import Contact, Order, OrderStatus
from ordercore.domain.outbox import OutboxState
from ordercore.domain.warehouses import Warehouse
from ordercore.incident import sale_orders
from ordercore.ports.clock import ManualClock
from ordercore.services.outbox import EVENT_KIND, HandlerRegistry
from ordercore.services.waybills import CREATE_KIND
from ordercore.sync import SyncOrderCore
from ordercore.testing.couriers import FakeCourier
from ordercore_adapters.storage.memory import MemoryStorage
from support.waybills import waybill_service

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 31, 20, 0, tzinfo=UTC)
FAST = Settings(outbox_poll_interval=timedelta(milliseconds=5))
SH = Warehouse.located("SH", "上海市嘉定区", priority=20)
GZ = Warehouse.located("GZ", "广东省广州市白云区", priority=10)


@pytest.fixture
async def core() -> AsyncIterator[OrderCore]:
    storage = MemoryStorage("memory://", FAST)
    await storage.open()
    core = OrderCore(storage, ManualClock(T0), FAST)
    for sku in range(4):
        await core.inventory.receive(f"SKU-{sku}", 10)
    yield core
    await storage.close()


def _orders(count: int, *, status: OrderStatus = OrderStatus.PAID, start: int = 0) -> list[Order]:
    made = sale_orders(count, at=T0, channels=("taobao",), skus=4, start=start)
    return [order.model_copy(update={"status": status}) for order in made]


async def _events(core: OrderCore, order_id: str | None = None) -> list[str]:
    tasks = await core.outbox.list(kind=EVENT_KIND, limit=10_000)
    envelopes = [EventEnvelope.model_validate(task.payload) for task in tasks]
    return [e.type for e in envelopes if order_id is None or e.order_id == order_id]


async def _status(core: OrderCore, order_id: str) -> OrderStatus:
    return (await core.orders.get(order_id)).status


async def _waybill_tasks(core: OrderCore) -> list[str]:
    tasks = await core.outbox.list(kind=CREATE_KIND, limit=10_000)
    return [str(task.payload["order_id"]) for task in tasks]


async def test_accept_stores_reserves_and_tells_what_happened(core: OrderCore) -> None:
    """New paid orders are stored, hold stock, and write order.ingested + stock.reserved."""
    orders = _orders(3)
    report = await core.fulfilment.accept("taobao", orders)
    assert report.ready == [order.id for order in orders]
    assert report.reserved == report.ready
    assert sorted(report.orders) == sorted(report.ready)
    assert (await core.inventory.stock("SKU-0")).reserved == 1
    assert await _events(core, orders[0].id) == ["order.ingested", "stock.reserved"]


async def test_accept_twice_stores_and_tells_once(core: OrderCore) -> None:
    """The same orders accepted again create nothing and write no second event."""
    orders = _orders(3)
    await core.fulfilment.accept("taobao", orders)
    again = await core.fulfilment.accept("taobao", orders)
    assert (again.ready, again.stored.unchanged) == ([], 3)
    assert len(await _events(core)) == 6
    assert sum(level.reserved for level in await core.inventory.levels()) == 3


async def test_a_high_severity_finding_holds_the_order_at_accept(core: OrderCore) -> None:
    """An order with a placeholder phone is held by screening and is not ready."""
    good, bad = _orders(2)
    bad = bad.model_copy(update={"receiver": Contact(name="王五", phone="13800000000")})
    report = await core.fulfilment.accept("taobao", [good, bad])
    assert report.ready == [good.id]
    assert report.held == [bad.id]
    assert await _status(core, bad.id) is OrderStatus.ON_HOLD
    assert "order.held" in await _events(core, bad.id)


async def test_a_channel_cancellation_at_accept_releases_the_stock(core: OrderCore) -> None:
    """A newer version of an order saying cancelled gives its units back, with events."""
    (order,) = _orders(1)
    await core.fulfilment.accept("taobao", [order])
    later = T0 + timedelta(minutes=5)
    cancelled = order.model_copy(
        update={"status": OrderStatus.CANCELLED, "source_modified_at": later}
    )
    report = await core.fulfilment.accept("taobao", [cancelled])
    assert report.cancelled == [order.id]
    assert (await core.inventory.stock("SKU-0")).reserved == 0
    assert (await _events(core, order.id))[-2:] == ["order.cancelled", "stock.released"]


async def test_reserve_holds_stock_for_an_order_added_without_it(core: OrderCore) -> None:
    """An order added directly gets its reservation; asking again changes nothing."""
    (order,) = _orders(1, status=OrderStatus.PENDING_PAYMENT)
    await core.orders.add(order)
    first = await core.fulfilment.reserve([order.id])
    second = await core.fulfilment.reserve([order.id])
    assert (first.done, second.unchanged) == ([order.id], [order.id])
    assert (await core.inventory.stock("SKU-0")).reserved == 1
    assert await _events(core, order.id) == ["stock.reserved"]


async def test_payment_moves_the_order_to_paid_once(core: OrderCore) -> None:
    """The payment callback pays the order and its reservation; a repeat does nothing."""
    (order,) = _orders(1, status=OrderStatus.PENDING_PAYMENT)
    await core.fulfilment.accept("taobao", [order])
    first = await core.fulfilment.confirm_payment([order.id])
    second = await core.fulfilment.confirm_payment([order.id])
    assert (first.done, second.unchanged) == ([order.id], [order.id])
    assert await _status(core, order.id) is OrderStatus.PAID
    reservation = await core.inventory.reservation(order.id)
    assert (reservation.paid, reservation.expires_at) == (True, None)
    assert (await _events(core, order.id)).count("order.paid") == 1


async def test_payment_after_expiry_reserves_again(core: OrderCore) -> None:
    """A payment that arrives after the reservation expired re-reserves and pays."""
    (order,) = _orders(1, status=OrderStatus.PENDING_PAYMENT)
    await core.fulfilment.accept("taobao", [order])
    assert isinstance(core.clock, ManualClock)
    core.clock.advance(core.settings.reservation_ttl + timedelta(minutes=1))
    await core.inventory.expire()
    report = await core.fulfilment.confirm_payment([order.id])
    assert report.done == [order.id]
    assert (await core.inventory.reservation(order.id)).status is ReservationStatus.ACTIVE
    assert await _status(core, order.id) is OrderStatus.PAID


async def test_requesting_the_waybill_allocates_and_writes_one_task(core: OrderCore) -> None:
    """PAID -> ALLOCATED with one waybill.create task and waybill.requested; repeats add none."""
    orders = _orders(2)
    accepted = await core.fulfilment.accept("taobao", orders)
    first = await core.fulfilment.request_waybill(accepted.orders.values())
    second = await core.fulfilment.request_waybill(accepted.ready)
    assert (first.done, second.unchanged) == (accepted.ready, accepted.ready)
    assert sorted(await _waybill_tasks(core)) == sorted(accepted.ready)
    assert await _status(core, orders[0].id) is OrderStatus.ALLOCATED
    assert (await _events(core, orders[0].id))[-1] == "waybill.requested"


async def test_an_unpaid_order_gets_no_waybill_task(core: OrderCore) -> None:
    """A pending-payment order fails the waybill step and no task is written."""
    (order,) = _orders(1, status=OrderStatus.PENDING_PAYMENT)
    await core.fulfilment.accept("taobao", [order])
    report = await core.fulfilment.request_waybill([order.id])
    assert list(report.failed) == [order.id]
    assert await _waybill_tasks(core) == []


async def test_a_stale_order_from_an_earlier_step_is_read_again(core: OrderCore) -> None:
    """An order object that changed since accept is re-read: cancelled meanwhile, no task."""
    (order,) = _orders(1)
    accepted = await core.fulfilment.accept("taobao", [order])
    await core.fulfilment.cancel([order.id], reason="buyer changed mind")
    report = await core.fulfilment.request_waybill(accepted.orders.values())
    assert list(report.failed) == [order.id]
    assert await _waybill_tasks(core) == []


async def test_cancel_gives_the_stock_back_exactly_once(core: OrderCore) -> None:
    """Cancelling twice releases the units once and writes one stock.released."""
    (order,) = _orders(1)
    await core.fulfilment.accept("taobao", [order])
    first = await core.fulfilment.cancel([order.id], reason="buyer cancelled")
    second = await core.fulfilment.cancel([order.id])
    assert (first.done, second.unchanged) == ([order.id], [order.id])
    level = await core.inventory.stock("SKU-0")
    assert (level.on_hand, level.reserved) == (10, 0)
    assert (await _events(core, order.id)).count("stock.released") == 1


async def test_a_waybill_task_of_a_cancelled_order_calls_no_courier(core: OrderCore) -> None:
    """Cancelled after the waybill was requested: the task runs and asks no courier."""
    courier = FakeCourier("zto", prefix="ZT")
    service, _ = waybill_service(core, [courier])
    (order,) = _orders(1)
    accepted = await core.fulfilment.accept("taobao", [order])
    await core.fulfilment.request_waybill(accepted.ready)
    await core.fulfilment.cancel(accepted.ready)
    registry = HandlerRegistry()
    service.register(registry)
    await core.outbox.worker(registry).run_once()
    assert courier.calls == 0
    assert (await core.inventory.stock("SKU-0")).reserved == 0


async def test_ship_commits_the_stock_and_names_the_waybill(core: OrderCore) -> None:
    """Shipping takes the units off on_hand once and order.shipped carries the tracking number."""
    courier = FakeCourier("zto", prefix="ZT")
    service, _ = waybill_service(core, [courier])
    (order,) = _orders(1)
    accepted = await core.fulfilment.accept("taobao", [order])
    await core.fulfilment.request_waybill(accepted.ready)
    (record,) = await service.create(order.id)
    assert record.state is WaybillState.CREATED
    first = await core.fulfilment.ship([order.id])
    second = await core.fulfilment.ship([order.id])
    assert (first.done, second.unchanged) == ([order.id], [order.id])
    level = await core.inventory.stock("SKU-0")
    assert (level.on_hand, level.reserved) == (9, 0)
    tasks = await core.outbox.list(kind=EVENT_KIND, limit=1000)
    shipped = [
        EventEnvelope.model_validate(task.payload)
        for task in tasks
        if task.payload["type"] == "order.shipped"
    ]
    assert [e.data["tracking_number"] for e in shipped] == [record.tracking_number]
    assert (await _events(core, order.id)).count("stock.committed") == 1


async def test_complete_closes_a_shipped_order(core: OrderCore) -> None:
    """A shipped order completes once; an allocated one cannot."""
    a, b = _orders(2)
    accepted = await core.fulfilment.accept("taobao", [a, b])
    await core.fulfilment.request_waybill(accepted.ready)
    await core.fulfilment.ship([a.id])
    report = await core.fulfilment.complete([a.id, b.id])
    assert (report.done, list(report.failed)) == ([a.id], [b.id])
    assert await _status(core, a.id) is OrderStatus.COMPLETED
    assert (await _events(core, a.id))[-1] == "order.completed"


async def test_with_every_courier_open_waybills_wait_and_orders_flow(core: OrderCore) -> None:
    """All breakers open: waybill tasks are deferred, not dead; accept and allocate go on."""
    primary, backup = FakeCourier("zto", prefix="ZT"), FakeCourier("sf", prefix="SF")
    service, chain = waybill_service(core, [primary, backup])
    for breaker in chain.breakers.values():
        breaker.open("courier outage")
    registry = HandlerRegistry()
    service.register(registry)
    first = await core.fulfilment.accept("taobao", _orders(2))
    await core.fulfilment.request_waybill(first.ready)
    await core.outbox.worker(registry).run_once()
    later = await core.fulfilment.accept("taobao", _orders(2, start=2))
    allocated = await core.fulfilment.request_waybill(later.ready)
    assert allocated.done == later.ready
    waiting = await core.outbox.list(kind=CREATE_KIND, states=[OutboxState.PENDING])
    assert len(waiting) == 4
    assert (primary.calls, backup.calls) == (0, 0)
    for breaker in chain.breakers.values():
        breaker.close("courier back")
    assert isinstance(core.clock, ManualClock)
    core.clock.advance(timedelta(minutes=10))
    await core.outbox.worker(registry).run_once()
    assert len(primary.waybills) == 4
    assert await core.outbox.list(kind=CREATE_KIND, states=[OutboxState.DEAD]) == []


async def test_route_moves_the_reservation_to_the_nearest_warehouse(core: OrderCore) -> None:
    """A Shenzhen order reserved in the default warehouse is routed to Guangzhou."""
    for warehouse in (SH, GZ):
        await core.warehouses.add(warehouse)
        await core.inventory.receive("SKU-2", 5, warehouse=warehouse.code)
    order = _orders(3)[2]
    assert order.address.city == "深圳市"
    await core.fulfilment.accept("taobao", [order])
    report = await core.fulfilment.route([order.id])
    assert report.done == [order.id]
    reservation = await core.inventory.reservation(order.id)
    assert [line.warehouse for line in reservation.lines] == ["GZ"]
    routed = [
        EventEnvelope.model_validate(task.payload)
        for task in await core.outbox.list(kind=EVENT_KIND, limit=1000)
        if task.payload["type"] == "order.routed"
    ]
    assert [e.data["warehouses"] for e in routed] == [["GZ"]]


def test_the_blocking_facade_runs_the_steps(tmp_path: Path) -> None:
    """SyncOrderCore.fulfilment accepts and allocates without await."""
    with SyncOrderCore.open(f"sqlite:///{tmp_path / 'sync.db'}", clock=ManualClock(T0)) as core:
        core.inventory.receive("SKU-0", 5)
        accepted = core.fulfilment.accept("taobao", _orders(1))
        allocated = core.fulfilment.request_waybill(accepted.ready)
        assert allocated.done == accepted.ready == ["taobao-0"]
        assert core.orders.get("taobao-0").status is OrderStatus.ALLOCATED
