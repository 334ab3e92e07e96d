"""core.routing and core.warehouses on the memory storage: service-level rules."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from anyio.from_thread import BlockingPortal

from ordercore import ManualClock, OrderCore, Settings
from ordercore.domain.orders import Address, OrderStatus
from ordercore.domain.warehouses import StockFeedBatch, StockFeedEntry, Warehouse
from ordercore.errors import InvalidInput, OrderNotFound, ReservationStateConflict, UnknownWarehouse
from ordercore.ports.storage import Storage
from ordercore.services.reservations import InventoryService
from ordercore.services.routing import RoutingService
from ordercore.services.warehouses import WarehouseService
from ordercore.sync import SyncRouting, SyncWarehouses
from ordercore.testing.storage_routing import routing_order
from ordercore_adapters.storage.memory import MemoryStorage

pytestmark = pytest.mark.anyio

SH = Warehouse.located("SH", "上海市嘉定区", priority=20)
GZ = Warehouse.located("GZ", "广东省广州市白云区", priority=10, capabilities=frozenset({"cold"}))


@pytest.fixture
async def core() -> AsyncIterator[OrderCore]:
    storage = MemoryStorage("memory://")
    await storage.open()
    built = OrderCore(storage, ManualClock(), Settings())
    for warehouse in (SH, GZ):
        await built.warehouses.add(warehouse)
    await built.inventory.receive("A", 5, warehouse="SH")
    await built.inventory.receive("A", 5, warehouse="GZ")
    yield built
    await storage.close()


async def test_required_capabilities_exclude_other_warehouses(core: OrderCore) -> None:
    """requires={'cold'} routes to GZ although SH is nearer."""
    await core.orders.add(routing_order("o1", {"A": 1}, core.clock.now()))
    plan = await core.routing.route("o1", requires={"cold"})
    assert [p.warehouse for p in plan.packages] == ["GZ"]


async def test_closed_warehouses_are_not_routed_to(core: OrderCore) -> None:
    """A warehouse set inactive takes no new orders."""
    await core.warehouses.set_active("SH", False)
    await core.orders.add(routing_order("o1", {"A": 1}, core.clock.now()))
    plan = await core.routing.route("o1")
    assert [p.warehouse for p in plan.packages] == ["GZ"]


async def test_an_unplaceable_address_still_routes_by_priority(core: OrderCore) -> None:
    """A receiver the map cannot place is routed by warehouse priority, with no region."""
    address = Address(province="", city="", detail="某小区3号楼")
    await core.orders.add(routing_order("o1", {"A": 1}, core.clock.now(), address))
    plan = await core.routing.route("o1")
    assert (plan.region, plan.packages[0].warehouse) == (None, "GZ")


async def test_the_default_policy_comes_from_settings() -> None:
    """Settings(routing_policy='priority') makes route() prefer GZ over the nearer SH."""
    storage = MemoryStorage("memory://")
    core = OrderCore(storage, ManualClock(), Settings(routing_policy="priority"))
    for warehouse in (SH, GZ):
        await core.warehouses.add(warehouse)
        await core.inventory.receive("A", 5, warehouse=warehouse.code)
    await core.orders.add(routing_order("o1", {"A": 1}, core.clock.now()))
    assert (await core.routing.route("o1")).policy == "priority"
    assert (await core.orders.get("o1")).lines[0].warehouse == "GZ"


async def test_reroute_replaces_the_plan_and_moves_the_stock(core: OrderCore) -> None:
    """route(reroute=True) with another policy moves the held units to the new choice."""
    await core.orders.add(routing_order("o1", {"A": 2}, core.clock.now()))
    await core.routing.route("o1")
    plan = await core.routing.route("o1", policy="priority", reroute=True)
    assert plan.packages[0].warehouse == "GZ"
    assert (await core.inventory.stock("A", "SH")).reserved == 0
    assert (await core.inventory.stock("A", "GZ")).reserved == 2


async def test_unknown_orders_and_warehouses_are_typed_errors(core: OrderCore) -> None:
    """route() of an unknown order and get() of an unknown warehouse raise typed errors."""
    with pytest.raises(OrderNotFound):
        await core.routing.route("nope")
    with pytest.raises(UnknownWarehouse):
        await core.warehouses.get("XX")


async def test_a_released_reservation_is_not_routed(core: OrderCore) -> None:
    """An order whose stock was released (cancelled) raises ReservationStateConflict."""
    order = routing_order("o1", {"A": 1}, core.clock.now())
    await core.orders.add(order)
    await core.inventory.reserve("o1", {"A": 1}, warehouse="SH")
    await core.inventory.release("o1")
    with pytest.raises(ReservationStateConflict):
        await core.routing.route("o1")


async def test_a_shipped_order_is_not_routed(core: OrderCore) -> None:
    """Routing refuses an order that has already left, naming its status."""
    order = routing_order("o1", {"A": 1}, core.clock.now())
    await core.orders.add(order.model_copy(update={"status": OrderStatus.SHIPPED}))
    with pytest.raises(InvalidInput, match="status"):
        await core.routing.route("o1")


async def test_a_feed_clears_the_sold_out_mark(core: OrderCore) -> None:
    """Stock a WMS reports back is sellable at once, not after the sold-out TTL."""
    await core.inventory.reserve("o1", {"A": 5}, warehouse="SH")
    with pytest.raises(Exception, match="insufficient"):
        await core.inventory.reserve("o2", {"A": 1}, warehouse="SH")
    batch = StockFeedBatch(
        batch_id="b1", cursor="c1", entries=(StockFeedEntry(sku="A", warehouse="SH", delta=3),)
    )
    await core.warehouses.apply_feed("wms", batch)
    assert (await core.inventory.reserve("o2", {"A": 1}, warehouse="SH")).quantity == 1


def _public_coroutines(service: object) -> dict[str, Any]:
    return {
        name: getattr(service, name)
        for name, member in inspect.getmembers(type(service))
        if not name.startswith("_") and inspect.iscoroutinefunction(member)
    }


@pytest.mark.parametrize(
    ("service_class", "twin_class"),
    [(RoutingService, SyncRouting), (WarehouseService, SyncWarehouses)],
)
def test_every_coroutine_has_a_blocking_twin(service_class: type, twin_class: type) -> None:
    """core.routing and core.warehouses have same-signature blocking twins in sync.py."""
    storage = cast(Storage, object())
    inventory = InventoryService(storage, ManualClock(), Settings())
    if service_class is RoutingService:
        service: object = RoutingService(storage, ManualClock(), inventory)
    else:
        service = WarehouseService(storage, ManualClock(), inventory)
    twins = twin_class(service, cast(BlockingPortal, object()))
    for name, method in _public_coroutines(service).items():
        twin = getattr(twins, name, None)
        assert twin is not None, f"{twin_class.__name__}.{name} is missing"
        assert inspect.signature(twin) == inspect.signature(method)
