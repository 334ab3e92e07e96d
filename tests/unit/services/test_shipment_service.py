"""core.shipments on the memory storage: waybills to parcels, intake interception, merged
parcels, retries used up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from ordercore.config import Settings
from ordercore.core import OrderCore
from ordercore.domain.couriers import Waybill, waybill_key
from ordercore.domain.orders import OrderStatus
from ordercore.domain.outbox import OPEN_STATES
from ordercore.domain.shipments import RECALL_KIND, PushState, ShipmentPart, ShipmentState
from ordercore.errors import InvalidInput, OrderIntercepted, ShipmentNotFound
from ordercore.ports.clock import ManualClock
from ordercore.services.outbox import HandlerRegistry
from ordercore.testing.couriers import FakeCourier
from ordercore.testing.shipments import FakeRecall, FakeShipmentChannel, PushCall
from ordercore.testing.storage_shipments import shipping_order
from ordercore_adapters.storage.memory import MemoryStorage

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 11, 11, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def core(clock: ManualClock) -> AsyncIterator[OrderCore]:
    settings = Settings()
    storage = MemoryStorage("memory://", settings)
    await storage.open()
    try:
        yield OrderCore(storage, clock, settings)
    finally:
        await storage.close()


@pytest.fixture
def channel(core: OrderCore) -> FakeShipmentChannel:
    fake = FakeShipmentChannel()
    core.shipments.channels[fake.name] = fake
    return fake


async def _paid(core: OrderCore, order_id: str, lines: dict[str, int]) -> None:
    for sku in lines:
        await core.inventory.receive(sku, 10, warehouse="main")
    await core.orders.add(shipping_order(order_id, lines, at=core.clock.now()))
    await core.inventory.reserve(order_id, lines, warehouse="main")


async def _drain(core: OrderCore, registry: HandlerRegistry, clock: ManualClock) -> None:
    worker = core.outbox.worker(registry, concurrency=1)
    for _ in range(20):
        await worker.run_once()
        if not await core.outbox.list(states=OPEN_STATES, limit=1):
            return
        clock.advance(timedelta(minutes=10))


async def _waybill(core: OrderCore, order_id: str, package_id: str, number: str) -> None:
    async with core.storage.unit_of_work() as uow:
        await uow.waybills.begin(order_id, package_id, core.clock.now())
        await uow.waybills.complete(
            order_id,
            package_id,
            Waybill(courier="zto", tracking_number=number, key=waybill_key(order_id, package_id)),
            core.clock.now(),
        )
        await uow.commit()


async def test_a_waybill_becomes_a_parcel_with_its_tracking_number(core: OrderCore) -> None:
    """from_waybill() records the package's parcel with the waybill's courier and number."""
    await _paid(core, "o1", {"A": 1})
    await _waybill(core, "o1", "1", "ZT100")
    parcel = await core.shipments.from_waybill("o1", "1")
    assert (parcel.courier, parcel.tracking_number, parcel.state) == (
        "zto",
        "ZT100",
        ShipmentState.PREPARING,
    )
    assert [p.state for p in await core.shipments.pushes(order_id="o1")] == [PushState.WAITING]


async def test_a_package_without_a_waybill_is_not_found(core: OrderCore) -> None:
    """from_waybill() raises ShipmentNotFound when the package has no created waybill."""
    await _paid(core, "o1", {"A": 1})
    with pytest.raises(ShipmentNotFound):
        await core.shipments.from_waybill("o1", "1")


async def test_a_platform_cancellation_through_intake_intercepts_the_parcel(
    core: OrderCore, clock: ManualClock
) -> None:
    """A cancelled version arriving by intake stops the parcel and gives the stock back."""
    order = shipping_order("o1", {"A": 2}, at=T0).model_copy(
        update={"source_modified_at": T0, "channel": "fake-shop"}
    )
    await core.inventory.receive("A", 10, warehouse="main")
    await core.intake.store_orders("fake-shop", [order])
    parcel = await core.shipments.prepare(["o1"], courier="zto", tracking_number="ZT1")
    await core.shipments.pick(parcel.id)
    clock.advance(timedelta(minutes=1))
    cancelled = order.model_copy(
        update={"status": OrderStatus.CANCELLED, "source_modified_at": T0 + timedelta(minutes=1)}
    )
    report = await core.intake.store_orders("fake-shop", [cancelled])
    assert report is not None
    assert report.errors == []
    assert (await core.shipments.get(parcel.id)).state is ShipmentState.RECALL_REQUESTED
    assert [t.kind for t in await core.outbox.list(kind=RECALL_KIND)] == [RECALL_KIND]
    level = await core.inventory.stock("A", "main")
    assert (level.on_hand, level.reserved) == (10, 0)
    with pytest.raises(OrderIntercepted):
        await core.shipments.ship(parcel.id)


async def test_intercepting_one_order_of_a_merged_parcel_stops_the_whole_parcel(
    core: OrderCore,
) -> None:
    """A merged parcel is recalled whole; the other order stays allocated to be repacked."""
    await _paid(core, "o1", {"A": 1})
    await _paid(core, "o2", {"B": 1})
    parcel = await core.shipments.prepare(["o1", "o2"], courier="zto", tracking_number="ZT1")
    await core.shipments.intercept("o1", "refund")
    assert (await core.shipments.get(parcel.id)).state is ShipmentState.RECALL_REQUESTED
    assert {p.order_id: p.state for p in await core.shipments.pushes(shipment_id=parcel.id)} == {
        "o1": PushState.CANCELLED,
        "o2": PushState.CANCELLED,
    }
    assert (await core.orders.get("o2")).status is OrderStatus.PAID
    assert (await core.inventory.reservation("o2")).status.value == "active"


async def test_an_intercepted_waybill_without_a_parcel_is_cancelled_at_the_courier(
    core: OrderCore,
) -> None:
    """A waybill printed but not handed over gets a recall task naming its tracking number."""
    await _paid(core, "o1", {"A": 1})
    await _waybill(core, "o1", "1", "ZT7")
    outcome = await core.shipments.intercept("o1", "cancelled")
    [task] = await core.outbox.list(kind=RECALL_KIND)
    assert outcome.recalls == (task.key,)
    assert (task.payload["tracking_number"], task.payload["shipment_id"]) == ("ZT7", "")


async def test_a_push_out_of_attempts_ends_failed_with_a_ticket(
    core: OrderCore, channel: FakeShipmentChannel, clock: ManualClock
) -> None:
    """Transient failures on every allowed attempt end the push failed, ticket opened."""
    registry = HandlerRegistry()
    core.shipments.register(registry, max_attempts=3)
    core.shipments.recall_port = FakeRecall()
    await _paid(core, "o1", {"A": 1})
    channel.fail_next(10)
    await core.shipments.record(["o1"], courier="zto", tracking_number="ZT1")
    await _drain(core, registry, clock)
    [push] = await core.shipments.pushes(order_id="o1")
    assert (push.state, push.attempts) == (PushState.FAILED, 3)
    [ticket] = await core.tickets.list(order_id="o1")
    assert ticket.ticket_type == "shipment_push"
    assert channel.accepted == []


async def test_a_redriven_failed_push_succeeds(
    core: OrderCore, channel: FakeShipmentChannel, clock: ManualClock
) -> None:
    """After a refusal, redriving the dead task pushes again and ends ok."""
    registry = HandlerRegistry()
    core.shipments.register(registry)
    await _paid(core, "o1", {"A": 1})
    channel.refuse_next()
    await core.shipments.record(["o1"], courier="zto", tracking_number="ZT1")
    await _drain(core, registry, clock)
    await core.outbox.redrive()
    await _drain(core, registry, clock)
    [push] = await core.shipments.pushes(order_id="o1")
    assert push.state is PushState.OK
    assert channel.accepted == [PushCall("ext-o1", "zto", "ZT1", ())]


async def test_recording_the_same_parcel_twice_ships_once(core: OrderCore) -> None:
    """A second record() of one parcel returns it and queues no second push."""
    await _paid(core, "o1", {"A": 1})
    part = ShipmentPart(order_id="o1", package_id="1")
    first = await core.shipments.record([part], courier="zto", tracking_number="ZT1")
    second = await core.shipments.record([part], courier="zto", tracking_number="ZT1")
    assert first == second
    assert len(await core.outbox.list(kind="shipment.push")) == 1
    level = await core.inventory.stock("A", "main")
    assert (level.on_hand, level.reserved) == (9, 0)


async def test_a_parcel_naming_one_order_twice_is_invalid(core: OrderCore) -> None:
    """record() refuses two parts of the same order in one parcel (InvalidInput)."""
    await _paid(core, "o1", {"A": 1})
    with pytest.raises(InvalidInput, match="one part per order"):
        await core.shipments.record(["o1", "o1"], courier="zto", tracking_number="ZT1")


async def test_the_recall_of_a_waybill_cancels_it_at_the_courier(
    core: OrderCore, clock: ManualClock
) -> None:
    """An intercepted order's printed waybill is cancelled at its courier by the recall task."""
    courier = FakeCourier("zto")
    courier.waybills[waybill_key("o1", "1")] = Waybill(
        courier="zto", tracking_number="ZT7", key=waybill_key("o1", "1")
    )
    core.shipments.couriers["zto"] = courier
    registry = HandlerRegistry()
    core.shipments.register(registry)
    await _paid(core, "o1", {"A": 1})
    await _waybill(core, "o1", "1", "ZT7")
    await core.shipments.intercept("o1", "cancelled")
    await _drain(core, registry, clock)
    assert list(courier.cancelled) == [waybill_key("o1", "1")]
    assert courier.waybills == {}


async def test_a_parcel_recall_without_a_warehouse_port_waits_in_the_outbox(
    core: OrderCore, clock: ManualClock
) -> None:
    """With no RecallPort configured the recall task fails and stays for an operator."""
    registry = HandlerRegistry()
    core.shipments.register(registry, max_attempts=2)
    await _paid(core, "o1", {"A": 1})
    parcel = await core.shipments.prepare(["o1"], courier="zto", tracking_number="ZT1")
    await core.shipments.intercept("o1", "cancelled")
    await _drain(core, registry, clock)
    [task] = await core.outbox.list(kind=RECALL_KIND)
    assert task.state.value == "dead"
    assert task.last_error is not None
    assert "recall" in task.last_error
    assert (await core.shipments.get(parcel.id)).state is ShipmentState.RECALL_REQUESTED


async def test_redriving_failed_pushes_sends_them_again(
    core: OrderCore, channel: FakeShipmentChannel, clock: ManualClock
) -> None:
    """redrive_failed() puts failed pushes back to pending and they end ok."""
    registry = HandlerRegistry()
    core.shipments.register(registry)
    await _paid(core, "o1", {"A": 1})
    channel.refuse_next("isv.bad-company")
    await core.shipments.record(["o1"], courier="zto", tracking_number="ZT1")
    await _drain(core, registry, clock)
    [failed] = await core.shipments.pushes(order_id="o1")
    keys = await core.shipments.redrive_failed(order_id="o1")
    assert keys == [failed.key]
    assert [p.state for p in await core.shipments.pushes(order_id="o1")] == [PushState.PENDING]
    await _drain(core, registry, clock)
    [push] = await core.shipments.pushes(order_id="o1")
    assert (push.state, push.attempts) == (PushState.OK, 2)
    assert await core.shipments.redrive_failed() == []
