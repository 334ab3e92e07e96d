"""ordercore: multi-channel order management that never oversells.

Open a core on a storage URL and use its services::

    async with OrderCore.open("sqlite:///shop.db") as core:
        await core.inventory.receive("SKU-1", 100)
        reservation = await core.inventory.reserve("order-1", {"SKU-1": 2})

``SyncOrderCore`` is the blocking twin for Django and scripts. Errors live in
:mod:`ordercore.errors`; adapter authors find ports in :mod:`ordercore.ports` and the
contract suites in :mod:`ordercore.testing`.
"""

from ordercore.config import Settings
from ordercore.core import OrderCore, create_storage
from ordercore.domain.after_sales import AfterSale, AfterSaleKind, AfterSaleStatus, InspectionLine
from ordercore.domain.couriers import Waybill, WaybillRequest
from ordercore.domain.exceptions import ExceptionCase, Finding, RuleAction, ScreeningResult
from ordercore.domain.inventory import (
    Drift,
    FlashSale,
    PaymentOutcome,
    PaymentResult,
    Reservation,
    ReservationLine,
    ReservationStatus,
    StockLevel,
)
from ordercore.domain.orders import (
    Address,
    Contact,
    Money,
    Order,
    OrderLine,
    OrderStatus,
    StatusChange,
)
from ordercore.domain.outbox import OutboxState, OutboxTask
from ordercore.domain.routing import FulfilmentPlan, TransferRequest
from ordercore.domain.rules import Rule, RuleRegistry, RulesConfig
from ordercore.domain.severity import Severity
from ordercore.domain.tickets import Ticket, TicketPolicy, TicketStatus
from ordercore.domain.warehouses import Warehouse
from ordercore.errors import OrderCoreError
from ordercore.ports.clock import Clock, ManualClock, SystemClock
from ordercore.services.reservations import ReserveRequest
from ordercore.sync import SyncOrderCore

__version__ = "0.1.0.dev0"

__all__ = [
    "Address",
    "AfterSale",
    "AfterSaleKind",
    "AfterSaleStatus",
    "Clock",
    "Contact",
    "Drift",
    "ExceptionCase",
    "Finding",
    "FlashSale",
    "FulfilmentPlan",
    "InspectionLine",
    "ManualClock",
    "Money",
    "Order",
    "OrderCore",
    "OrderCoreError",
    "OrderLine",
    "OrderStatus",
    "OutboxState",
    "OutboxTask",
    "PaymentOutcome",
    "PaymentResult",
    "Reservation",
    "ReservationLine",
    "ReservationStatus",
    "ReserveRequest",
    "Rule",
    "RuleAction",
    "RuleRegistry",
    "RulesConfig",
    "ScreeningResult",
    "Settings",
    "Severity",
    "StatusChange",
    "StockLevel",
    "SyncOrderCore",
    "SystemClock",
    "Ticket",
    "TicketPolicy",
    "TicketStatus",
    "TransferRequest",
    "Warehouse",
    "Waybill",
    "WaybillRequest",
    "__version__",
    "create_storage",
]
