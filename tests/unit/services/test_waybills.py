"""The waybill step on the memory storage: one waybill per package, failover, orphans, defer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from ordercore.config import Settings
from ordercore.core import OrderCore
from ordercore.domain.couriers import Package, PackageItem, WaybillRecord, WaybillState
from ordercore.domain.orders import OrderLine, OrderStatus
from ordercore.domain.outbox import OutboxState
from ordercore.errors import (
    CourierRejected,
    InvalidInput,
    OrderNotFound,
    OrderOnHold,
    WaybillDeferred,
)
from ordercore.ports.clock import ManualClock
from ordercore.services.outbox import HandlerRegistry, new_task
from ordercore.services.waybills import CANCEL_KIND, CREATE_KIND, packages_of
from ordercore.testing.couriers import FakeCourier
from ordercore.testing.storage_orders import sample_order
from ordercore_adapters.storage.memory import MemoryStorage
from support.waybills import SENDERS, LosingCourier, live_waybills, waybill_service

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 31, 20, 0, tzinfo=UTC)
FAST = Settings(outbox_poll_interval=timedelta(milliseconds=5))


@pytest.fixture
async def core() -> AsyncIterator[OrderCore]:
    storage = MemoryStorage("memory://", FAST)
    await storage.open()
    yield OrderCore(storage, ManualClock(T0), FAST)
    await storage.close()


async def _order(core: OrderCore, order_id: str, *, warehouses: tuple[str, ...] = ("",)) -> None:
    order = sample_order(order_id, at=T0)
    lines = tuple(
        OrderLine(sku=f"SKU-{n}", quantity=1, warehouse=warehouse)
        for n, warehouse in enumerate(warehouses)
    )
    await core.orders.add(order.model_copy(update={"lines": lines}))


async def _records(core: OrderCore, order_id: str) -> list[WaybillRecord]:
    async with core.storage.unit_of_work() as uow:
        return await uow.waybills.for_order(order_id)


async def test_each_package_gets_one_recorded_waybill(core: OrderCore) -> None:
    """An order shipping from two warehouses gets two packages, each with one waybill."""
    primary = FakeCourier("zto", prefix="ZT")
    service, _ = waybill_service(core, [primary])
    await _order(core, "o-1", warehouses=("east", "west"))
    records = await service.create("o-1")
    assert [(r.package_id, r.state, r.courier) for r in records] == [
        ("1", WaybillState.CREATED, "zto"),
        ("2", WaybillState.CREATED, "zto"),
    ]
    assert await _records(core, "o-1") == records
    assert sorted(primary.waybills) == ["o-1:1", "o-1:2"]


async def test_a_second_run_of_a_completed_order_is_a_no_op(core: OrderCore) -> None:
    """Running the step again for a finished order calls no courier and changes nothing."""
    primary = FakeCourier("zto", prefix="ZT")
    service, _ = waybill_service(core, [primary])
    await _order(core, "o-1")
    first = await service.create("o-1")
    calls = primary.calls
    assert await service.create("o-1") == first
    assert primary.calls == calls


async def test_a_lost_answer_is_asked_again_with_the_same_key(core: OrderCore) -> None:
    """The courier made the waybill but its answer was lost: the retry gets that same one."""
    only = LosingCourier("zto", prefix="ZT", lose=1)
    service, _ = waybill_service(core, [only])
    await _order(core, "o-1")
    with pytest.raises(WaybillDeferred):
        await service.create("o-1")
    (record,) = await service.create("o-1")
    assert (record.attempts, record.tracking_number) == (2, "ZT00000001")
    assert list(only.waybills) == ["o-1:1"]


async def test_failover_keeps_the_backup_waybill_and_cancels_the_primary_orphan(
    core: OrderCore,
) -> None:
    """A primary that lost its answer: the backup's waybill is kept, the primary's cancelled."""
    primary = LosingCourier("zto", prefix="ZT", lose=1)
    backup = FakeCourier("sf", prefix="SF")
    service, _ = waybill_service(core, [primary, backup])
    await _order(core, "o-1")
    (record,) = await service.create("o-1")
    assert (record.courier, record.tracking_number) == ("sf", "SF00000001")
    cancels = await core.outbox.list(kind=CANCEL_KIND)
    assert [task.payload["courier"] for task in cancels] == ["zto"]
    registry = HandlerRegistry()
    service.register(registry)
    await core.outbox.worker(registry).run(stop_when="drained")
    assert live_waybills([primary, backup]) == {"o-1:1": ["sf"]}
    assert list(primary.cancelled) == ["o-1:1"]


async def test_the_cancel_task_never_cancels_the_kept_waybill(core: OrderCore) -> None:
    """A cancel task naming the courier whose waybill was kept does nothing."""
    primary = FakeCourier("zto", prefix="ZT")
    service, _ = waybill_service(core, [primary])
    await _order(core, "o-1")
    await service.create("o-1")
    async with core.storage.unit_of_work() as uow:
        await core.outbox.enqueue(
            uow, CANCEL_KIND, {"order_id": "o-1", "package_id": "1", "courier": "zto"}, key="c"
        )
        await uow.commit()
    registry = HandlerRegistry()
    service.register(registry)
    await core.outbox.worker(registry).run(stop_when="drained")
    assert list(primary.waybills) == ["o-1:1"]


async def test_concurrent_duplicate_runs_keep_one_waybill(core: OrderCore) -> None:
    """Five runs of one order at once: one record, one waybill at the courier."""
    primary = FakeCourier("zto", prefix="ZT")
    primary.delay = 0.01
    service, _ = waybill_service(core, [primary])
    await _order(core, "o-1")
    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(service.create, "o-1")
    (record,) = await _records(core, "o-1")
    assert record.state is WaybillState.CREATED
    assert list(primary.waybills) == ["o-1:1"]
    assert await core.outbox.list(kind=CANCEL_KIND) == []


async def test_with_every_breaker_open_the_step_is_deferred(core: OrderCore) -> None:
    """No courier admits calls: WaybillDeferred says when to retry; nothing is asked."""
    primary, backup = FakeCourier("zto"), FakeCourier("sf")
    service, chain = waybill_service(core, [primary, backup])
    for breaker in chain.breakers.values():
        breaker.open("test: outage")
    await _order(core, "o-1")
    with pytest.raises(WaybillDeferred) as caught:
        await service.create("o-1")
    assert caught.value.transient is True
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 0
    assert primary.calls == backup.calls == 0
    (record,) = await _records(core, "o-1")
    assert record.state is WaybillState.REQUESTED


async def test_a_business_rejection_reaches_the_caller(core: OrderCore) -> None:
    """A courier refusing the request (no failover on business errors) fails the step."""
    primary, backup = FakeCourier("zto"), FakeCourier("sf")
    primary.fail_next(CourierRejected("zto", "create_waybill", "AREA_NOT_SERVED", "no"))
    service, _ = waybill_service(core, [primary, backup])
    await _order(core, "o-1")
    with pytest.raises(CourierRejected):
        await service.create("o-1")
    assert backup.calls == 0


async def test_cancelled_orders_get_no_waybill_and_held_ones_wait(core: OrderCore) -> None:
    """A cancelled order is skipped; a held order raises OrderOnHold; an unknown one fails."""
    primary = FakeCourier("zto")
    service, _ = waybill_service(core, [primary])
    await _order(core, "o-1")
    await _order(core, "o-2")
    await core.orders.transition("o-1", OrderStatus.CANCELLED)
    await core.orders.transition("o-2", OrderStatus.ON_HOLD)
    assert await service.create("o-1") == []
    with pytest.raises(OrderOnHold):
        await service.create("o-2")
    with pytest.raises(OrderNotFound):
        await service.create("o-404")
    assert primary.calls == 0


async def test_packages_given_in_the_task_are_used(core: OrderCore) -> None:
    """A task naming its packages gets exactly those, with their ids."""
    primary = FakeCourier("zto")
    service, _ = waybill_service(core, [primary])
    await _order(core, "o-1")
    packages = [
        Package(id="box-a", items=(PackageItem(sku="SKU-0", quantity=1),)),
        Package(id="box-b", weight_grams=300),
    ]
    async with core.storage.unit_of_work() as uow:
        assert await service.enqueue(uow, "o-1", packages)
        assert not await service.enqueue(uow, "o-1", packages)
        await uow.commit()
    registry = HandlerRegistry()
    service.register(registry)
    await core.outbox.worker(registry).run(stop_when="drained")
    assert sorted(primary.waybills) == ["o-1:box-a", "o-1:box-b"]


def test_default_packages_follow_the_warehouses() -> None:
    """One package per warehouse, ids 1, 2, ... in warehouse order."""
    order = sample_order("o-1", at=T0)
    lines = (
        OrderLine(sku="A", quantity=1, warehouse="west"),
        OrderLine(sku="B", quantity=2, warehouse="east"),
        OrderLine(sku="C", quantity=1, warehouse="west"),
    )
    packages = packages_of(order.model_copy(update={"lines": lines}))
    assert [(p.id, p.warehouse, [i.sku for i in p.items]) for p in packages] == [
        ("1", "east", ["B"]),
        ("2", "west", ["A", "C"]),
    ]


async def test_the_worker_ships_every_order_once_while_the_primary_fails(
    core: OrderCore,
) -> None:
    """30 orders through the outbox; the primary loses 3 answers and its breaker opens.

    Every order ends with one live waybill: the backup's after the breaker opened, and the
    primary's three orphans are cancelled once its breaker closes again.
    """
    primary = LosingCourier("zto", prefix="ZT", lose=3)
    backup = FakeCourier("sf", prefix="SF")
    service, chain = waybill_service(core, [primary, backup])
    for n in range(30):
        await _order(core, f"o-{n}")
        async with core.storage.unit_of_work() as uow:
            await service.enqueue(uow, f"o-{n}")
            await uow.commit()
    registry = HandlerRegistry()
    service.register(registry)
    await core.outbox.worker(registry, concurrency=1).run(stop_when="idle")
    assert [change.new.value for change in chain.breakers["zto"].history] == ["open"]
    assert len(primary.waybills) == 3  # orphans: their cancels wait for the breaker
    chain.breakers["zto"].close("test: primary is back")
    assert isinstance(core.clock, ManualClock)
    core.clock.advance(timedelta(hours=1))
    await core.outbox.worker(registry, concurrency=1).run(stop_when="drained")
    live = live_waybills([primary, backup])
    assert sorted(live) == sorted(f"o-{n}:1" for n in range(30))
    assert all(holders == ["sf"] for holders in live.values())
    counts = await core.outbox.counts()
    assert (counts[OutboxState.DONE], counts[OutboxState.DEAD]) == (30 + 3, 0)
    assert registry.kinds == (CANCEL_KIND, CREATE_KIND)


async def test_the_core_builds_a_waybill_service_on_its_storage(core: OrderCore) -> None:
    """core.waybills(chain, senders) records on the core's own storage."""
    primary = FakeCourier("zto", prefix="ZT")
    _, chain = waybill_service(core, [primary])
    service = core.waybills(chain.failover, SENDERS)
    await _order(core, "o-1")
    await service.create("o-1")
    assert [record.tracking_number for record in await _records(core, "o-1")] == ["ZT00000001"]


async def test_a_task_with_bad_packages_is_refused_as_invalid(core: OrderCore) -> None:
    """Malformed packages in a task raise InvalidInput (dead at once, not retried)."""
    service, _ = waybill_service(core, [FakeCourier("zto")])
    await _order(core, "o-1")
    task = new_task(
        CREATE_KIND, {"order_id": "o-1", "packages": [{"id": "bad id!"}]}, key="k", now=T0
    )
    with pytest.raises(InvalidInput, match=r"payload\.packages\[0\]\.id"):
        await service.create_handler(task)
