"""OrderCore: the facade that wires the services to a storage adapter.

::

    async with OrderCore.open("sqlite:///shop.db") as core:
        await core.inventory.receive("SKU-1", 100)
        await core.inventory.reserve("order-1", {"SKU-1": 2})
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from ordercore import registry
from ordercore.config import Settings
from ordercore.domain.couriers import Party
from ordercore.domain.exceptions import ExceptionCase
from ordercore.domain.tickets import Ticket
from ordercore.errors import UnknownAdapter
from ordercore.ports.clock import Clock, OffsetClock
from ordercore.ports.couriers import CourierPort
from ordercore.ports.messaging import CustomerMessagePort
from ordercore.ports.notifiers import NotifierPort
from ordercore.ports.screening import ScreeningStoreProvider
from ordercore.ports.storage import Storage
from ordercore.resilience.fallback import Failover
from ordercore.services.after_sales import AfterSalesService
from ordercore.services.credentials import CredentialService
from ordercore.services.exceptions import ExceptionService
from ordercore.services.fulfilment import FulfilmentService
from ordercore.services.imports import ImportService
from ordercore.services.intake import IntakeService
from ordercore.services.orders import OrderService
from ordercore.services.outbox import OutboxService
from ordercore.services.replay import ReplayService
from ordercore.services.reservations import InventoryService
from ordercore.services.routing import RoutingService
from ordercore.services.shipments import ShipmentService
from ordercore.services.stock_push import StockPushService
from ordercore.services.tickets import TicketService
from ordercore.services.warehouses import WarehouseService
from ordercore.services.waybills import WaybillService

__all__ = ["OrderCore", "create_storage"]


def create_storage(url: str, settings: Settings | None = None) -> Storage:
    """Build (not open) the storage adapter a URL names: memory://, sqlite:///, postgresql://."""
    name = registry.storage_name_for_url(url)
    factory = registry.load("ordercore.storage", name)
    storage = factory(url, settings or Settings())
    if not isinstance(storage, Storage):
        raise UnknownAdapter("storage", f"{name} (does not implement the Storage port)", [name])
    return storage


class _StorageClock:
    """The local clock aligned to the storage server's, re-measured every so often.

    With many processes on one PostgreSQL, every process then judges reservation expiry
    on the database's clock, within about one round trip.
    """

    def __init__(self, storage: Storage, interval: timedelta) -> None:
        self._storage = storage
        self._interval = interval.total_seconds()
        self.clock = OffsetClock()
        self._measured = False

    async def sync(self) -> None:
        """Measure the offset again when the interval has passed (or never measured)."""
        if self._measured and time.monotonic() - self.clock.measured_at < self._interval:
            return
        before = datetime.now(UTC)
        server = await self._storage.server_time()
        after = datetime.now(UTC)
        self._measured = True
        if server is not None:
            self.clock.set_offset(server - (before + (after - before) / 2))
        else:
            self.clock.set_offset(timedelta(0))


class OrderCore:
    """Everything ordercore does, over one storage. Make one with :meth:`open`."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        settings: Settings,
        *,
        notifier: NotifierPort | None = None,
        messenger: CustomerMessagePort | None = None,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.settings = settings
        self.inventory = InventoryService(storage, clock, settings)
        self.orders = OrderService(storage, clock)
        self.intake = IntakeService(storage, clock, settings, self.inventory)
        self.credentials = CredentialService(storage, clock)
        self.imports = ImportService(storage, clock, self.intake)
        self.replay = ReplayService(storage, clock, settings, self.intake)
        self.outbox = OutboxService(storage, clock, settings)
        self.stock_push = StockPushService(storage, clock, self.inventory)
        self.warehouses = WarehouseService(storage, clock, self.inventory)
        self.routing = RoutingService(
            storage, clock, self.inventory, default_policy=settings.routing_policy
        )
        self.tickets = TicketService(
            storage, clock, settings.tickets, notifier=notifier, messenger=messenger
        )
        self.shipments = ShipmentService(storage, clock, self.inventory, self.tickets, settings)
        self.intake.on_cancelled = self._intercept
        self.after_sales = AfterSalesService(
            storage, clock, settings, self.inventory, intercept=self.shipments.intercept
        )
        salt = settings.screening_salt
        self.exceptions = ExceptionService(
            storage,
            clock,
            rules=settings.exception_rules,
            notifier=notifier,
            store=storage.screening_store()
            if isinstance(storage, ScreeningStoreProvider)
            else None,
            open_ticket=self._open_ticket,
            payment_grace=settings.payment_grace,
            salt=salt.get_secret_value().encode() if salt is not None else None,
        )
        self.fulfilment = FulfilmentService(
            storage,
            clock,
            settings,
            intake=self.intake,
            inventory=self.inventory,
            exceptions=self.exceptions,
            routing=self.routing,
        )

    def waybills(
        self, chain: Failover[CourierPort], senders: Mapping[str, Party]
    ) -> WaybillService:
        """A WaybillService over this core's storage and clock (docs/couriers.md).

        ``chain`` is the courier failover chain (``ordercore_adapters.couriers.
        courier_chain(...).failover``); ``senders`` maps a warehouse to its sender.
        """
        return WaybillService(self.storage, self.clock, chain, senders, settings=self.settings)

    async def _intercept(self, order_id: str) -> None:
        """A platform cancelled (or refunded) an order before it shipped: stop its parcels."""
        await self.shipments.intercept(order_id, "cancelled or refunded on the platform")

    async def _open_ticket(self, case: ExceptionCase) -> Ticket:
        """Each exception case the rules raise opens (or adds to) a ticket."""
        return await self.tickets.open(
            case.ticket_type,
            case.severity,
            order_id=case.order_id,
            channel=case.channel,
            reasons=case.reasons,
            rule_ids=case.rule_ids,
        )

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        url: str,
        *,
        settings: Settings | None = None,
        clock: Clock | None = None,
        notifier: NotifierPort | None = None,
        messenger: CustomerMessagePort | None = None,
    ) -> AsyncIterator[OrderCore]:
        """Open the storage a URL names, migrate it if settings say so, and yield a core.

        ``memory://``, ``sqlite:///path/to.db`` (the embedded default) and
        ``postgresql+psycopg://host/db`` are built in; other schemes come from the
        ``ordercore.storage`` entry points. An unknown scheme raises UnknownAdapter
        listing the known ones. Without ``clock``, time is the storage server's.
        ``notifier`` gets ticket alerts, ``messenger`` sends customer SMS (core.tickets).
        """
        settings = settings or Settings()
        storage = create_storage(url, settings)
        await storage.open()
        try:
            if clock is None:
                aligned = _StorageClock(storage, settings.clock_resync_interval)
                await aligned.sync()
                core = cls(storage, aligned.clock, settings, notifier=notifier, messenger=messenger)
                core.inventory.before_sweep = aligned.sync
            else:
                core = cls(storage, clock, settings, notifier=notifier, messenger=messenger)
            yield core
        finally:
            await storage.close()
