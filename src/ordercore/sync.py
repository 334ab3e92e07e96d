"""A blocking facade over the async core, for Django views, scripts and notebooks.

::

    with SyncOrderCore.open("sqlite:///shop.db") as core:
        core.inventory.receive("SKU-1", 100)
        core.inventory.reserve("order-1", {"SKU-1": 2})

The async core runs in an anyio blocking portal (its own event-loop thread); every
method mirrors the async one without ``await``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from ordercore.config import Settings
from ordercore.core import OrderCore
from ordercore.ports.clock import Clock
from ordercore.services.after_sales import AfterSalesService
from ordercore.services.exceptions import ExceptionService
from ordercore.services.fulfilment import FulfilmentService
from ordercore.services.intake import IntakeService
from ordercore.services.orders import OrderService
from ordercore.services.outbox import OutboxService
from ordercore.services.reservations import InventoryService
from ordercore.services.routing import RoutingService
from ordercore.services.shipments import ShipmentService
from ordercore.services.stock_push import StockPushService
from ordercore.services.tickets import TicketService
from ordercore.services.warehouses import WarehouseService

__all__ = [
    "SyncAfterSales",
    "SyncExceptions",
    "SyncFulfilment",
    "SyncIntake",
    "SyncInventory",
    "SyncOrderCore",
    "SyncOrders",
    "SyncRouting",
    "SyncShipments",
    "SyncTickets",
    "SyncWarehouses",
]

P = ParamSpec("P")
T = TypeVar("T")


class _Bridge:
    def __init__(self, service: object, portal: BlockingPortal) -> None:
        self._service = service
        self._portal = portal


class _blocking(Generic[P, T]):  # noqa: N801 - used like a decorator, reads as one
    """Expose an async service method as a blocking one with the same signature."""

    def __init__(self, method: Callable[Concatenate[Any, P], Awaitable[T]]) -> None:
        self._name = method.__name__
        self.__doc__ = method.__doc__
        signature = inspect.signature(method)
        self._signature = signature.replace(parameters=list(signature.parameters.values())[1:])

    def __get__(self, bridge: _Bridge, owner: type | None = None) -> Callable[P, T]:
        method = getattr(bridge._service, self._name)

        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            result: T = bridge._portal.call(partial(method, *args, **kwargs))
            return result

        call.__doc__ = self.__doc__
        call.__name__ = self._name
        call.__signature__ = self._signature  # type: ignore[attr-defined]
        return call


class SyncInventory(_Bridge):
    """``core.inventory`` without ``await``; see InventoryService for each method."""

    receive = _blocking(InventoryService.receive)
    adjust = _blocking(InventoryService.adjust)
    count = _blocking(InventoryService.count)
    set_safety_stock = _blocking(InventoryService.set_safety_stock)
    stock = _blocking(InventoryService.stock)
    levels = _blocking(InventoryService.levels)
    sellable = _blocking(InventoryService.sellable)
    remaining = _blocking(InventoryService.remaining)
    start_flash_sale = _blocking(InventoryService.start_flash_sale)
    end_flash_sale = _blocking(InventoryService.end_flash_sale)
    flash_sale = _blocking(InventoryService.flash_sale)
    reserve = _blocking(InventoryService.reserve)
    reserve_order = _blocking(InventoryService.reserve_order)
    reserve_many = _blocking(InventoryService.reserve_many)
    reservation = _blocking(InventoryService.reservation)
    release = _blocking(InventoryService.release)
    commit = _blocking(InventoryService.commit)
    begin_payment = _blocking(InventoryService.begin_payment)
    confirm_payment = _blocking(InventoryService.confirm_payment)
    expire = _blocking(InventoryService.expire)
    verify = _blocking(InventoryService.verify)


class SyncOrders(_Bridge):
    """``core.orders`` without ``await``; see OrderService for each method."""

    add = _blocking(OrderService.add)
    get = _blocking(OrderService.get)
    find = _blocking(OrderService.find)
    list = _blocking(OrderService.list)
    transition = _blocking(OrderService.transition)
    ship = _blocking(OrderService.ship)


class SyncIntake(_Bridge):
    """``core.intake`` without ``await``; see IntakeService for each method."""

    sync = _blocking(IntakeService.sync)
    ingest_webhook = _blocking(IntakeService.ingest_webhook)
    store_orders = _blocking(IntakeService.store_orders)
    fetch_window = _blocking(IntakeService.fetch_window)
    runs = _blocking(IntakeService.runs)
    rejects = _blocking(IntakeService.rejects)
    review_queue = _blocking(IntakeService.review_queue)
    resolve_review = _blocking(IntakeService.resolve_review)
    reserve_unreserved = _blocking(IntakeService.reserve_unreserved)


class SyncTickets(_Bridge):
    """``core.tickets`` without ``await``; see TicketService for each method."""

    open = _blocking(TicketService.open)
    get = _blocking(TicketService.get)
    list = _blocking(TicketService.list)
    assign = _blocking(TicketService.assign)
    start = _blocking(TicketService.start)
    wait_for_customer = _blocking(TicketService.wait_for_customer)
    resolve = _blocking(TicketService.resolve)
    close = _blocking(TicketService.close)
    reopen = _blocking(TicketService.reopen)
    comment = _blocking(TicketService.comment)
    follow_up = _blocking(TicketService.follow_up)
    record_reply = _blocking(TicketService.record_reply)
    tasks = _blocking(TicketService.tasks)
    run_due = _blocking(TicketService.run_due)
    distribution = _blocking(TicketService.distribution)


class SyncExceptions(_Bridge):
    """``core.exceptions`` without ``await``; see ExceptionService for each method."""

    screen = _blocking(ExceptionService.screen)
    screen_many = _blocking(ExceptionService.screen_many)
    result = _blocking(ExceptionService.result)
    flagged = _blocking(ExceptionService.flagged)
    release_hold = _blocking(ExceptionService.release_hold)


class SyncOutbox(_Bridge):
    """``core.outbox`` without ``await`` (inspection and redrive; enqueue needs a unit of work)."""

    list = _blocking(OutboxService.list)
    get = _blocking(OutboxService.get)
    counts = _blocking(OutboxService.counts)
    redrive = _blocking(OutboxService.redrive)
    purge = _blocking(OutboxService.purge)


class SyncFulfilment(_Bridge):
    """``core.fulfilment`` without ``await``; see FulfilmentService for each step."""

    accept = _blocking(FulfilmentService.accept)
    reserve = _blocking(FulfilmentService.reserve)
    route = _blocking(FulfilmentService.route)
    confirm_payment = _blocking(FulfilmentService.confirm_payment)
    request_waybill = _blocking(FulfilmentService.request_waybill)
    ship = _blocking(FulfilmentService.ship)
    complete = _blocking(FulfilmentService.complete)
    cancel = _blocking(FulfilmentService.cancel)


class SyncRouting(_Bridge):
    """``core.routing`` without ``await``; see RoutingService for each method."""

    route = _blocking(RoutingService.route)
    plan = _blocking(RoutingService.plan)
    transfers = _blocking(RoutingService.transfers)
    complete_transfer = _blocking(RoutingService.complete_transfer)
    cancel_transfer = _blocking(RoutingService.cancel_transfer)


class SyncWarehouses(_Bridge):
    """``core.warehouses`` without ``await``; see WarehouseService for each method."""

    add = _blocking(WarehouseService.add)
    get = _blocking(WarehouseService.get)
    list = _blocking(WarehouseService.list)
    set_active = _blocking(WarehouseService.set_active)
    apply_feed = _blocking(WarehouseService.apply_feed)
    feed_cursor = _blocking(WarehouseService.feed_cursor)
    sync_feed = _blocking(WarehouseService.sync_feed)


class SyncStockPush(_Bridge):
    """``core.stock_push`` without ``await`` (plans, reports, enqueueing; run() stays async)."""

    plan = _blocking(StockPushService.plan)
    pushes = _blocking(StockPushService.pushes)
    drift = _blocking(StockPushService.drift)
    enqueue = _blocking(StockPushService.enqueue)
    enqueue_full = _blocking(StockPushService.enqueue_full)
    flush = _blocking(StockPushService.flush)


class SyncAfterSales(_Bridge):
    """``core.after_sales`` without ``await``; see AfterSalesService for each method."""

    sync = _blocking(AfterSalesService.sync)
    link_pending = _blocking(AfterSalesService.link_pending)
    pending_handover = _blocking(AfterSalesService.pending_handover)
    get = _blocking(AfterSalesService.get)
    list = _blocking(AfterSalesService.list)
    inspection = _blocking(AfterSalesService.inspection)
    inspect = _blocking(AfterSalesService.inspect)


class SyncShipments(_Bridge):
    """``core.shipments`` without ``await``; see ShipmentService for each method."""

    record = _blocking(ShipmentService.record)
    prepare = _blocking(ShipmentService.prepare)
    from_waybill = _blocking(ShipmentService.from_waybill)
    pick = _blocking(ShipmentService.pick)
    ship = _blocking(ShipmentService.ship)
    intercept = _blocking(ShipmentService.intercept)
    get = _blocking(ShipmentService.get)
    for_order = _blocking(ShipmentService.for_order)
    pushes = _blocking(ShipmentService.pushes)
    push_counts = _blocking(ShipmentService.push_counts)
    redrive_failed = _blocking(ShipmentService.redrive_failed)


class SyncOrderCore:
    """The blocking twin of :class:`OrderCore`. Make one with :meth:`open`."""

    def __init__(self, core: OrderCore, portal: BlockingPortal) -> None:
        self.core = core
        self.settings = core.settings
        self.inventory = SyncInventory(core.inventory, portal)
        self.orders = SyncOrders(core.orders, portal)
        self.intake = SyncIntake(core.intake, portal)
        self.tickets = SyncTickets(core.tickets, portal)
        self.exceptions = SyncExceptions(core.exceptions, portal)
        self.outbox = SyncOutbox(core.outbox, portal)
        self.stock_push = SyncStockPush(core.stock_push, portal)
        self.routing = SyncRouting(core.routing, portal)
        self.warehouses = SyncWarehouses(core.warehouses, portal)
        self.fulfilment = SyncFulfilment(core.fulfilment, portal)
        self.after_sales = SyncAfterSales(core.after_sales, portal)
        self.shipments = SyncShipments(core.shipments, portal)

    @classmethod
    @contextmanager
    def open(
        cls, url: str, *, settings: Settings | None = None, clock: Clock | None = None
    ) -> Iterator[SyncOrderCore]:
        """Open a core on ``url`` (as OrderCore.open) behind a blocking portal."""
        with start_blocking_portal() as portal:
            opened = OrderCore.open(url, settings=settings, clock=clock)
            with portal.wrap_async_context_manager(opened) as core:
                yield cls(core, portal)
