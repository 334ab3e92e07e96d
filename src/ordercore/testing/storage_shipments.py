"""Contract tests for shipments and their push-back (``uow.shipments``, ``core.shipments``).

The first part drives the storage port: a parcel is stored once, every state change is
a compare-and-set, and of two writers racing exactly one wins. The second part runs the
service over the storage: shipping commits stock and queues one push per order part;
a push that fails three times then succeeds ends ``ok`` once, packages of one order in
order; an order refunded between pick and ship is stopped, its stock released once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import anyio
import pytest

from ordercore.core import OrderCore
from ordercore.domain.couriers import Waybill, waybill_key
from ordercore.domain.orders import Money, Order, OrderLine, OrderStatus
from ordercore.domain.outbox import OPEN_STATES
from ordercore.domain.shipments import (
    PUSH_KIND,
    RECALL_KIND,
    PushState,
    Shipment,
    ShipmentPart,
    ShipmentPush,
    ShipmentState,
    pushes_for,
)
from ordercore.errors import (
    IllegalTransition,
    OrderCoreError,
    OrderIntercepted,
    ShipmentStateConflict,
    TooLateToIntercept,
)
from ordercore.ports.clock import ManualClock
from ordercore.services.outbox import HandlerRegistry
from ordercore.testing.shipments import FakeRecall, FakeShipmentChannel, PushCall
from ordercore.testing.storage_base import StorageContractBase, stock_of

__all__ = ["ShipmentContract", "ShipmentFlowContract", "shipping_order"]

T0 = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)


def _shipment(
    shipment_id: str, *orders: str, state: ShipmentState = ShipmentState.PREPARING
) -> Shipment:
    return Shipment(
        id=shipment_id,
        courier="zto",
        tracking_number=f"ZT{shipment_id}",
        parts=tuple(
            ShipmentPart(order_id=order_id, package_id="1", sub_orders=(f"{order_id}-1",))
            for order_id in orders
        ),
        warehouse="main",
        state=state,
        created_at=T0,
        updated_at=T0,
    )


def _pushes(shipment: Shipment) -> list[ShipmentPush]:
    return pushes_for(shipment, [(o, "shop", f"ext-{o}") for o in shipment.order_ids], T0)


async def _add(core: OrderCore, shipment: Shipment) -> bool:
    async with core.storage.unit_of_work() as uow:
        added = await uow.shipments.add(shipment, _pushes(shipment))
        await uow.commit()
    return added


async def _get(core: OrderCore, shipment_id: str) -> Shipment | None:
    async with core.storage.unit_of_work() as uow:
        return await uow.shipments.get(shipment_id)


class ShipmentContract(StorageContractBase):
    """The shipment repository: storage, compare-and-set, races."""

    @pytest.mark.anyio
    async def test_a_shipment_is_stored_whole_with_its_pushes(self, core: OrderCore) -> None:
        """add() stores the parcel and one waiting push per order part."""
        shipment = _shipment("s1", "o1", "o2")
        assert await _add(core, shipment)
        assert await _get(core, "s1") == shipment
        async with core.storage.unit_of_work() as uow:
            pushes = await uow.shipments.pushes(shipment_id="s1")
        assert pushes == _pushes(shipment)
        assert [push.state for push in pushes] == [PushState.WAITING, PushState.WAITING]

    @pytest.mark.anyio
    async def test_adding_the_same_id_again_changes_nothing(self, core: OrderCore) -> None:
        """A second add() of a stored id returns False and keeps the first parcel."""
        await _add(core, _shipment("s1", "o1"))
        assert not await _add(core, _shipment("s1", "o9"))
        stored = await _get(core, "s1")
        assert stored is not None
        assert stored.order_ids == ("o1",)
        async with core.storage.unit_of_work() as uow:
            assert await uow.shipments.pushes(order_id="o9") == []

    @pytest.mark.anyio
    async def test_a_merged_parcel_is_found_from_each_order(self, core: OrderCore) -> None:
        """for_order() finds a parcel holding several orders from any of them, oldest first."""
        await _add(core, _shipment("s1", "o1", "o2"))
        await _add(core, _shipment("s2", "o2"))
        async with core.storage.unit_of_work() as uow:
            assert [s.id for s in await uow.shipments.for_order("o2")] == ["s1", "s2"]
            assert [s.id for s in await uow.shipments.for_order("o1")] == ["s1"]

    @pytest.mark.anyio
    async def test_move_is_a_compare_and_set(self, core: OrderCore) -> None:
        """move() changes the state only from an allowed one, and ships with a time."""
        await _add(core, _shipment("s1", "o1"))
        later = T0 + timedelta(minutes=5)
        async with core.storage.unit_of_work() as uow:
            assert not await uow.shipments.move(
                "s1", ShipmentState.RECALLED, (ShipmentState.RECALL_REQUESTED,), later
            )
            assert await uow.shipments.move(
                "s1", ShipmentState.SHIPPED, (ShipmentState.PREPARING,), later
            )
            await uow.commit()
        stored = await _get(core, "s1")
        assert stored is not None
        assert (stored.state, stored.shipped_at) == (ShipmentState.SHIPPED, later)

    @pytest.mark.anyio
    async def test_move_pushes_moves_only_the_named_states(self, core: OrderCore) -> None:
        """move_pushes() changes pushes in the given states, of one order when named."""
        await _add(core, _shipment("s1", "o1", "o2"))
        async with core.storage.unit_of_work() as uow:
            moved = await uow.shipments.move_pushes(
                "s1", PushState.PENDING, (PushState.WAITING,), T0, order_id="o2"
            )
            again = await uow.shipments.move_pushes(
                "s1", PushState.CANCELLED, (PushState.PENDING,), T0, order_id="o1"
            )
            await uow.commit()
        assert (moved, again) == (1, 0)
        async with core.storage.unit_of_work() as uow:
            states = {p.order_id: p.state for p in await uow.shipments.pushes(shipment_id="s1")}
        assert states == {"o1": PushState.WAITING, "o2": PushState.PENDING}

    @pytest.mark.anyio
    async def test_save_push_keeps_attempts_and_a_masked_error(self, core: OrderCore) -> None:
        """save_push() writes state, attempts and error when the stored state allows."""
        await _add(core, _shipment("s1", "o1"))
        push = _pushes(_shipment("s1", "o1"))[0]
        failed = push.failed_attempt("timeout calling 13800138000", T0, final=False)
        async with core.storage.unit_of_work() as uow:
            assert not await uow.shipments.save_push(failed, (PushState.PENDING,))
            assert await uow.shipments.save_push(failed, (PushState.WAITING,))
            await uow.commit()
        async with core.storage.unit_of_work() as uow:
            stored = await uow.shipments.get_push("s1", "o1")
            counts = await uow.shipments.push_counts()
        assert stored is not None
        assert (stored.state, stored.attempts) == (PushState.RETRY, 1)
        assert stored.last_error is not None
        assert "13800138000" not in stored.last_error
        assert counts[PushState.RETRY] == 1
        assert counts[PushState.OK] == 0

    @pytest.mark.anyio
    async def test_a_rolled_back_unit_leaves_no_shipment(self, core: OrderCore) -> None:
        """A shipment added in a unit that is not committed is not stored."""
        async with core.storage.unit_of_work() as uow:
            shipment = _shipment("s1", "o1")
            await uow.shipments.add(shipment, _pushes(shipment))
        assert await _get(core, "s1") is None
        async with core.storage.unit_of_work() as uow:
            assert await uow.shipments.pushes() == []

    @pytest.mark.anyio
    async def test_of_ship_and_recall_racing_exactly_one_wins(self, core: OrderCore) -> None:
        """Two units moving one picked parcel to shipped and to recall: one succeeds."""
        await _add(core, _shipment("s1", "o1", state=ShipmentState.PICKED))
        wins: list[ShipmentState] = []

        async def move(target: ShipmentState) -> None:
            async with core.storage.unit_of_work() as uow:
                if await uow.shipments.move(
                    "s1", target, (ShipmentState.PREPARING, ShipmentState.PICKED), T0
                ):
                    wins.append(target)
                await uow.commit()

        async with anyio.create_task_group() as group:
            group.start_soon(move, ShipmentState.SHIPPED)
            group.start_soon(move, ShipmentState.RECALL_REQUESTED)
        stored = await _get(core, "s1")
        assert len(wins) == 1
        assert stored is not None
        assert stored.state is wins[0]


def shipping_order(
    order_id: str, lines: dict[str, int], *, at: datetime, channel: str = "fake-shop"
) -> Order:
    """A paid order with platform line ids ``<order>-<n>`` (no personal data needed)."""
    return Order(
        id=order_id,
        channel=channel,
        external_id=f"ext-{order_id}",
        status=OrderStatus.PAID,
        lines=tuple(
            OrderLine(
                sku=sku,
                quantity=qty,
                unit_price=Money(amount=Decimal("10.00")),
                warehouse="main",
                external_line_id=f"{order_id}-{n}",
            )
            for n, (sku, qty) in enumerate(lines.items(), start=1)
        ),
        created_at=at,
        updated_at=at,
    )


class ShipmentFlowContract(StorageContractBase):
    """core.shipments over the storage: ship, push-back with retries, interception."""

    @pytest.fixture
    def channel(self) -> FakeShipmentChannel:
        return FakeShipmentChannel()

    @pytest.fixture
    def recall(self) -> FakeRecall:
        return FakeRecall()

    @pytest.fixture
    def registry(
        self, core: OrderCore, channel: FakeShipmentChannel, recall: FakeRecall
    ) -> HandlerRegistry:
        core.shipments.channels[channel.name] = channel
        core.shipments.recall_port = recall
        registry = HandlerRegistry()
        core.shipments.register(registry, max_attempts=5)
        return registry

    async def _order(self, core: OrderCore, order_id: str, lines: dict[str, int]) -> Order:
        order = await core.orders.add(shipping_order(order_id, lines, at=core.clock.now()))
        await core.inventory.reserve(order_id, lines, warehouse="main")
        return order

    async def _drain(
        self, core: OrderCore, registry: HandlerRegistry, clock: ManualClock, rounds: int = 12
    ) -> None:
        worker = core.outbox.worker(registry, concurrency=1)
        for _ in range(rounds):
            await worker.run_once()
            if not await core.outbox.list(states=OPEN_STATES, limit=1):
                return
            clock.advance(core.settings.outbox_backoff_max)

    @pytest.mark.anyio
    async def test_shipping_commits_stock_and_queues_one_push_per_part(
        self, core: OrderCore, registry: HandlerRegistry
    ) -> None:
        """record() ships the orders (stock committed) and queues a push per order part."""
        await core.inventory.receive("A", 10, warehouse="main")
        await self._order(core, "o1", {"A": 2})
        await self._order(core, "o2", {"A": 1})
        shipment = await core.shipments.record(["o1", "o2"], courier="zto", tracking_number="ZT1")
        assert shipment.state is ShipmentState.SHIPPED
        assert (await core.orders.get("o1")).status is OrderStatus.SHIPPED
        assert await stock_of(core, "A") == (7, 0)
        tasks = await core.outbox.list(kind=PUSH_KIND)
        assert [(t.payload["order_id"], t.ordering_key) for t in tasks] == [
            ("o1", "o1"),
            ("o2", "o2"),
        ]
        pushes = await core.shipments.pushes(shipment_id=shipment.id)
        assert {p.state for p in pushes} == {PushState.PENDING}, pushes

    @pytest.mark.anyio
    async def test_a_push_failing_three_times_then_succeeding_ends_ok_once(
        self,
        core: OrderCore,
        registry: HandlerRegistry,
        channel: FakeShipmentChannel,
        clock: ManualClock,
    ) -> None:
        """Three transient failures then success: one accepted push, state ok, 4 attempts."""
        await core.inventory.receive("A", 10, warehouse="main")
        await self._order(core, "o1", {"A": 1})
        channel.fail_next(3)
        await core.shipments.record(["o1"], courier="zto", tracking_number="ZT1")
        await self._drain(core, registry, clock)
        [push] = await core.shipments.pushes(order_id="o1")
        assert (push.state, push.attempts) == (PushState.OK, 4)
        assert channel.accepted == [PushCall("ext-o1", "zto", "ZT1", ())]
        assert channel.calls == 4

    @pytest.mark.anyio
    async def test_packages_of_one_order_are_pushed_in_order(
        self,
        core: OrderCore,
        registry: HandlerRegistry,
        channel: FakeShipmentChannel,
        clock: ManualClock,
    ) -> None:
        """A split order's second package is pushed only after the first, even if it fails."""
        await core.inventory.receive("A", 10, warehouse="main")
        await core.inventory.receive("B", 10, warehouse="main")
        await self._order(core, "o1", {"A": 1, "B": 1})
        channel.fail_next(2)
        first = ShipmentPart(order_id="o1", package_id="1", sub_orders=("o1-1",))
        second = ShipmentPart(order_id="o1", package_id="2", sub_orders=("o1-2",))
        await core.shipments.record([first], courier="zto", tracking_number="ZT1")
        await core.shipments.record([second], courier="sf", tracking_number="SF2")
        await self._drain(core, registry, clock)
        assert channel.accepted == [
            PushCall("ext-o1", "zto", "ZT1", ("o1-1",)),
            PushCall("ext-o1", "sf", "SF2", ("o1-2",)),
        ]
        assert [p.state for p in await core.shipments.pushes(order_id="o1")] == [
            PushState.OK,
            PushState.OK,
        ]

    @pytest.mark.anyio
    async def test_a_refused_push_fails_and_opens_a_ticket(
        self,
        core: OrderCore,
        registry: HandlerRegistry,
        channel: FakeShipmentChannel,
        clock: ManualClock,
    ) -> None:
        """A platform refusal ends the push failed at once and opens a shipment_push ticket."""
        await core.inventory.receive("A", 10, warehouse="main")
        await self._order(core, "o1", {"A": 1})
        channel.refuse_next("isv.logistics-company-invalid")
        await core.shipments.record(["o1"], courier="zto", tracking_number="ZT1")
        await self._drain(core, registry, clock)
        [push] = await core.shipments.pushes(order_id="o1")
        assert (push.state, push.attempts) == (PushState.FAILED, 1)
        assert push.last_error is not None
        assert "isv.logistics-company-invalid" in push.last_error
        tickets = await core.tickets.list(order_id="o1")
        assert [t.ticket_type for t in tickets] == ["shipment_push"]
        assert channel.accepted == []

    @pytest.mark.anyio
    async def test_a_refund_between_pick_and_ship_stops_the_shipment(
        self,
        core: OrderCore,
        registry: HandlerRegistry,
        channel: FakeShipmentChannel,
        recall: FakeRecall,
        clock: ManualClock,
    ) -> None:
        """Allocated, waybill made, picked, then refunded: ship() refused, stock back once,
        the parcel recalled."""
        await core.inventory.receive("A", 10, warehouse="main")
        await self._order(core, "o1", {"A": 3})
        await core.orders.transition("o1", OrderStatus.ALLOCATED, reason="routed")
        async with core.storage.unit_of_work() as uow:
            await uow.waybills.begin("o1", "1", clock.now())
            waybill = Waybill(courier="zto", tracking_number="ZT1", key=waybill_key("o1", "1"))
            await uow.waybills.complete("o1", "1", waybill, clock.now())
            await uow.commit()
        parcel = await core.shipments.from_waybill("o1", "1")
        await core.shipments.pick(parcel.id)
        first = await core.shipments.intercept("o1", "refunded on the platform")
        again = await core.shipments.intercept("o1", "refunded on the platform")
        with pytest.raises(OrderIntercepted):
            await core.shipments.ship(parcel.id)
        with pytest.raises(IllegalTransition):
            await core.orders.ship("o1")
        assert (first.released, again.released) == (True, False)
        assert await stock_of(core, "A") == (10, 0)
        assert (await core.orders.get("o1")).status is OrderStatus.CANCELLED
        assert [t.kind for t in await core.outbox.list(kind=RECALL_KIND)] == [RECALL_KIND]
        await self._drain(core, registry, clock)
        assert (await core.shipments.get(parcel.id)).state is ShipmentState.RECALLED
        assert list(recall.recalled) == list(first.recalls)
        assert [r.tracking_number for r in recall.recalled.values()] == ["ZT1"]
        assert [p.state for p in await core.shipments.pushes(order_id="o1")] == [
            PushState.CANCELLED
        ]
        assert channel.calls == 0

    @pytest.mark.anyio
    async def test_a_recalled_parcel_cannot_be_picked(self, core: OrderCore) -> None:
        """After interception the parcel refuses pick (ShipmentStateConflict)."""
        await core.inventory.receive("A", 10, warehouse="main")
        await self._order(core, "o1", {"A": 1})
        parcel = await core.shipments.prepare(["o1"], courier="zto", tracking_number="ZT1")
        await core.shipments.intercept("o1", "cancelled")
        with pytest.raises(ShipmentStateConflict):
            await core.shipments.pick(parcel.id)

    @pytest.mark.anyio
    async def test_a_shipped_order_is_too_late_to_intercept(self, core: OrderCore) -> None:
        """intercept() after shipping raises TooLateToIntercept and changes nothing."""
        await core.inventory.receive("A", 10, warehouse="main")
        await self._order(core, "o1", {"A": 1})
        await core.shipments.record(["o1"], courier="zto", tracking_number="ZT1")
        with pytest.raises(TooLateToIntercept):
            await core.shipments.intercept("o1", "refund")
        assert (await core.orders.get("o1")).status is OrderStatus.SHIPPED
        assert await stock_of(core, "A") == (9, 0)

    @pytest.mark.anyio
    async def test_ship_and_intercept_racing_leave_one_consistent_outcome(
        self, core: OrderCore
    ) -> None:
        """A ship and an interception of one picked parcel at once: one wins, stock agrees."""
        await core.inventory.receive("A", 10, warehouse="main")
        await self._order(core, "o1", {"A": 2})
        parcel = await core.shipments.prepare(["o1"], courier="zto", tracking_number="ZT1")
        await core.shipments.pick(parcel.id)
        errors: list[OrderCoreError] = []

        async def attempt(step: Callable[[], Awaitable[object]]) -> None:
            try:
                await step()
            except OrderCoreError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as group:
            group.start_soon(attempt, lambda: core.shipments.ship(parcel.id))
            group.start_soon(attempt, lambda: core.shipments.intercept("o1", "refund"))
        order = await core.orders.get("o1")
        state = (await core.shipments.get(parcel.id)).state
        if order.status is OrderStatus.SHIPPED:
            assert state is ShipmentState.SHIPPED
            assert await stock_of(core, "A") == (8, 0)
        else:
            assert order.status is OrderStatus.CANCELLED
            assert state is ShipmentState.RECALL_REQUESTED
            assert await stock_of(core, "A") == (10, 0)
        assert len(errors) <= 1
