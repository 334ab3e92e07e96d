"""The routing part of the storage contract: warehouses, plans, transfers, WMS feeds.

Driven through ``core.routing`` and ``core.warehouses``; every test that holds stock
ends with ``verify()``. The races run two routings at once: on SQL storages they are
two connections, and the conditional updates alone must keep stock exact.
"""

from __future__ import annotations

from datetime import datetime

import anyio
import pytest

from ordercore.core import OrderCore
from ordercore.domain.inventory import ReservationLine
from ordercore.domain.orders import Address, Order, OrderLine
from ordercore.domain.routing import TransferStatus
from ordercore.domain.warehouses import StockFeedBatch, StockFeedEntry, Warehouse
from ordercore.errors import InsufficientStock, InvalidInput, Unroutable
from ordercore.testing.storage_base import RESERVING, StorageContractBase, assert_no_drift, stock_of

__all__ = ["RoutingContract", "routing_order"]

HANGZHOU = Address(province="浙江省", city="杭州市", district="西湖区", street="文三路")
WAREHOUSES = (
    Warehouse.located("SH", "上海市嘉定区", priority=20),  # about 165 km from Hangzhou
    Warehouse.located("GZ", "广东省广州市白云区", priority=10),  # about 1,040 km
    Warehouse.located("BJ", "北京市大兴区", priority=30),  # about 1,130 km
)


def routing_order(
    order_id: str, lines: dict[str, int], now: datetime, address: Address = HANGZHOU
) -> Order:
    """An order to route: one line per SKU, shipped to ``address`` (Hangzhou)."""
    return Order(
        id=order_id,
        external_id=order_id,
        lines=tuple(OrderLine(sku=sku, quantity=q) for sku, q in lines.items()),
        address=address,
        created_at=now,
        updated_at=now,
    )


async def _setup(core: OrderCore, stock: dict[tuple[str, str], int]) -> None:
    for warehouse in WAREHOUSES:
        await core.warehouses.add(warehouse)
    for (sku, code), quantity in stock.items():
        await core.inventory.receive(sku, quantity, warehouse=code)


async def _add(core: OrderCore, order_id: str, lines: dict[str, int]) -> Order:
    order = routing_order(order_id, lines, core.clock.now())
    await core.orders.add(order)
    return order


class RoutingContract(StorageContractBase):
    """Warehouses, routing with reservations, transfers, WMS feeds."""

    reservation_modes = RESERVING

    @pytest.mark.anyio
    async def test_warehouses_are_kept_and_replaced_by_code(self, core: OrderCore) -> None:
        """Warehouses list by code; saving a code again replaces it; closed ones filter out."""
        for warehouse in WAREHOUSES:
            await core.warehouses.add(warehouse)
        await core.warehouses.set_active("GZ", False)
        assert [w.code for w in await core.warehouses.list()] == ["BJ", "GZ", "SH"]
        assert [w.code for w in await core.warehouses.list(active_only=True)] == ["BJ", "SH"]
        assert await core.warehouses.get("SH") == WAREHOUSES[0]

    @pytest.mark.anyio
    async def test_nearest_warehouse_that_fills_the_order_ships_it(self, core: OrderCore) -> None:
        """The nearest warehouse holding every line gets the whole order and its stock."""
        await _setup(core, {("A", "SH"): 1, ("A", "GZ"): 5, ("B", "GZ"): 5, ("B", "SH"): 5})
        await _add(core, "o1", {"A": 2, "B": 1})
        plan = await core.routing.route("o1")
        assert [p.warehouse for p in plan.packages] == ["GZ"]
        assert await stock_of(core, "A", "GZ") == (5, 2)
        assert await stock_of(core, "A", "SH") == (1, 0)
        order = await core.orders.get("o1")
        assert [line.warehouse for line in order.lines] == ["GZ", "GZ"]
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_routing_moves_a_reservation_held_in_the_default_warehouse(
        self, core: OrderCore
    ) -> None:
        """An order reserved in the default warehouse is moved to the routed one, atomically."""
        await _setup(core, {("A", "main"): 10, ("A", "SH"): 3})
        order = await _add(core, "o1", {"A": 2})
        await core.inventory.reserve_order(order)
        await core.routing.route("o1")
        held = await core.inventory.reservation("o1")
        assert held.lines == (ReservationLine("A", "SH", 2),)
        assert await stock_of(core, "A", "main") == (10, 0)
        assert await stock_of(core, "A", "SH") == (3, 2)
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_a_split_ships_lines_from_different_warehouses(self, core: OrderCore) -> None:
        """When no warehouse holds everything, each line goes to the nearest that holds it."""
        await _setup(core, {("A", "SH"): 5, ("B", "GZ"): 5, ("B", "BJ"): 5})
        await _add(core, "o1", {"A": 1, "B": 1})
        plan = await core.routing.route("o1")
        assert plan.is_split
        assert {p.warehouse: [line.sku for line in p.lines] for p in plan.packages} == {
            "SH": ["A"],
            "GZ": ["B"],
        }
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_no_split_policy_requests_a_transfer_and_holds_its_source(
        self, core: OrderCore
    ) -> None:
        """Without splits, the shortfall is a transfer request whose units are held at source."""
        await _setup(core, {("A", "SH"): 5, ("B", "SH"): 2, ("B", "GZ"): 5})
        await _add(core, "o1", {"A": 2, "B": 3})
        plan = await core.routing.route("o1", policy="nearest_no_split")
        assert [p.warehouse for p in plan.packages] == ["SH"]
        (transfer,) = plan.transfers
        assert (transfer.sku, transfer.quantity, transfer.from_warehouse) == ("B", 1, "GZ")
        assert await stock_of(core, "B", "SH") == (2, 2)
        assert await stock_of(core, "B", "GZ") == (5, 1)
        assert [t.id for t in await core.routing.transfers(warehouse="GZ")] == [transfer.id]
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_a_transfer_completes_once_its_units_arrived(self, core: OrderCore) -> None:
        """Completion moves the hold from source to target, only after the units arrived."""
        await _setup(core, {("A", "SH"): 2, ("A", "GZ"): 2})
        await _add(core, "o1", {"A": 3})
        (transfer,) = (await core.routing.route("o1", policy="nearest_no_split")).transfers
        assert (transfer.from_warehouse, transfer.to_warehouse) == ("GZ", "SH")
        with pytest.raises(InsufficientStock):  # not received at SH yet
            await core.routing.complete_transfer(transfer.id)
        assert (await core.routing.transfers())[0].status is TransferStatus.REQUESTED
        await core.inventory.receive("A", 1, warehouse="SH", reason="transfer in")
        done = await core.routing.complete_transfer(transfer.id)
        assert done.status is TransferStatus.COMPLETED
        held = await core.inventory.reservation("o1")
        assert held.lines == (ReservationLine("A", "SH", 3),)
        assert await stock_of(core, "A", "GZ") == (2, 0)
        with pytest.raises(InvalidInput):
            await core.routing.complete_transfer(transfer.id)
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_a_routed_order_keeps_its_plan_unless_rerouted(self, core: OrderCore) -> None:
        """route() twice returns the stored plan and takes stock once."""
        await _setup(core, {("A", "SH"): 5})
        await _add(core, "o1", {"A": 2})
        first = await core.routing.route("o1")
        again = await core.routing.route("o1")
        assert again == first
        assert await stock_of(core, "A", "SH") == (5, 2)

    @pytest.mark.anyio
    async def test_unroutable_order_holds_nothing(self, core: OrderCore) -> None:
        """When all warehouses together lack a SKU, Unroutable names it and nothing is held."""
        await _setup(core, {("A", "SH"): 1, ("A", "GZ"): 1, ("B", "SH"): 9})
        await _add(core, "o1", {"A": 3, "B": 1})
        with pytest.raises(Unroutable) as caught:
            await core.routing.route("o1")
        assert (caught.value.sku, caught.value.available) == ("A", 2)
        assert await core.routing.plan("o1") is None
        assert await stock_of(core, "B", "SH") == (9, 0)

    @pytest.mark.anyio
    async def test_racing_orders_for_the_last_units_never_oversell(self, core: OrderCore) -> None:
        """Two orders race for the nearest warehouse's last units: one is routed further."""
        await _setup(core, {("A", "SH"): 2, ("A", "GZ"): 10})
        for n in range(4):
            await _add(core, f"o{n}", {"A": 1})
        async with anyio.create_task_group() as group:
            for n in range(4):
                group.start_soon(core.routing.route, f"o{n}")
        places = []
        for n in range(4):
            plan = await core.routing.plan(f"o{n}")
            assert plan is not None
            places.append(plan.packages[0].warehouse)
        assert sorted(places) == ["GZ", "GZ", "SH", "SH"]
        assert await stock_of(core, "A", "SH") == (2, 2)
        assert await stock_of(core, "A", "GZ") == (10, 2)
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_racing_relocations_never_oversell(self, core: OrderCore) -> None:
        """Orders reserved in the default warehouse race to move to the nearest one."""
        await _setup(core, {("A", "main"): 10, ("A", "SH"): 1, ("A", "GZ"): 10})
        for n in range(3):
            await core.inventory.reserve_order(await _add(core, f"o{n}", {"A": 1}))
        async with anyio.create_task_group() as group:
            for n in range(3):
                group.start_soon(core.routing.route, f"o{n}")
        assert await stock_of(core, "A", "SH") == (1, 1)
        assert await stock_of(core, "A", "GZ") == (10, 2)
        assert await stock_of(core, "A", "main") == (10, 0)
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_relocating_a_flash_sale_reservation_keeps_its_sale_counts(
        self, core: OrderCore
    ) -> None:
        """Units reserved under a flash sale stay counted under it after routing moves them."""
        await _setup(core, {("A", "main"): 10, ("A", "SH"): 10, ("B", "main"): 5, ("B", "SH"): 5})
        await core.inventory.start_flash_sale("A", cap=4)
        order = await _add(core, "o1", {"A": 3, "B": 1})
        await core.inventory.reserve_order(order)
        await core.routing.route("o1")
        sale = await core.inventory.flash_sale("A")
        assert sale is not None
        assert sale.sold == 3
        assert await core.inventory.remaining("A") == 1
        await core.inventory.release("o1")
        assert (await core.inventory.flash_sale("A")).sold == 0  # type: ignore[union-attr]
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_relocate_refused_for_lack_of_stock_changes_nothing(
        self, core: OrderCore
    ) -> None:
        """A relocation the target cannot take raises and leaves the reservation as it was."""
        await _setup(core, {("A", "main"): 5, ("A", "SH"): 1})
        await core.inventory.reserve_order(await _add(core, "o1", {"A": 3}))
        async with core.storage.unit_of_work() as uow:
            with pytest.raises(InsufficientStock):
                await uow.routing.relocate("o1", [ReservationLine("A", "SH", 3)], core.clock.now())
            await uow.commit()
        held = await core.inventory.reservation("o1")
        assert held.lines == (ReservationLine("A", "main", 3),)
        assert await stock_of(core, "A", "SH") == (1, 0)
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_a_feed_batch_applies_once_and_moves_the_cursor(self, core: OrderCore) -> None:
        """A WMS batch sets on_hand; the same batch again changes nothing."""
        await core.inventory.receive("A", 3, warehouse="SH")
        batch = StockFeedBatch(
            batch_id="b1",
            cursor="c1",
            entries=(
                StockFeedEntry(sku="A", warehouse="SH", on_hand=8),
                StockFeedEntry(sku="B", warehouse="SH", delta=4),
            ),
        )
        first = await core.warehouses.apply_feed("wms", batch)
        again = await core.warehouses.apply_feed("wms", batch)
        assert (first.applied, first.duplicate, again.duplicate) == (2, False, True)
        assert await stock_of(core, "A", "SH") == (8, 0)
        assert await stock_of(core, "B", "SH") == (4, 0)
        assert await core.warehouses.feed_cursor("wms") == "c1"
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_a_feed_below_reserved_is_rejected_alone(self, core: OrderCore) -> None:
        """An on_hand below what is reserved is reported back; the batch's other entries apply."""
        await core.inventory.receive("A", 5, warehouse="SH")
        await core.inventory.reserve("o1", {"A": 4}, warehouse="SH")
        batch = StockFeedBatch(
            batch_id="b1",
            cursor="c1",
            entries=(
                StockFeedEntry(sku="A", warehouse="SH", on_hand=2),
                StockFeedEntry(sku="B", warehouse="SH", on_hand=7),
            ),
        )
        result = await core.warehouses.apply_feed("wms", batch)
        assert [entry.sku for entry, _reason in result.rejected] == ["A"]
        assert await stock_of(core, "A", "SH") == (5, 4)
        assert await stock_of(core, "B", "SH") == (7, 0)
        await assert_no_drift(core)
