"""The curated public API: exported names, typing marker, and the blocking twins."""

from __future__ import annotations

import inspect
from importlib.resources import files
from typing import Any, cast

import pytest
from anyio.from_thread import BlockingPortal

import ordercore
from ordercore import ManualClock, Settings
from ordercore.ports.storage import Storage
from ordercore.services.intake import IntakeService
from ordercore.services.orders import OrderService
from ordercore.services.reservations import InventoryService
from ordercore.services.tickets import TicketService
from ordercore.sync import SyncIntake, SyncInventory, SyncOrders, SyncTickets

# Change this list only on purpose: every entry is a promise to users (and a CHANGELOG line).
EXPECTED_ALL = [
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

# The services are built on a stand-in storage: only their method signatures are read.
_NO_STORAGE = cast(Storage, object())
_NO_PORTAL = cast(BlockingPortal, object())


def _public_coroutines(service: object) -> dict[str, Any]:
    """The public ``async def`` methods of a service instance, by name."""
    return {
        name: getattr(service, name)
        for name, member in inspect.getmembers(type(service))
        if not name.startswith("_") and inspect.iscoroutinefunction(member)
    }


_TWINS = [
    pytest.param(
        InventoryService(_NO_STORAGE, ManualClock(), Settings()), SyncInventory, id="inventory"
    ),
    pytest.param(OrderService(_NO_STORAGE, ManualClock()), SyncOrders, id="orders"),
    pytest.param(
        IntakeService(
            _NO_STORAGE,
            ManualClock(),
            Settings(),
            InventoryService(_NO_STORAGE, ManualClock(), Settings()),
        ),
        SyncIntake,
        id="intake",
    ),
    pytest.param(TicketService(_NO_STORAGE, ManualClock()), SyncTickets, id="tickets"),
]


def test_all_is_pinned() -> None:
    """ordercore.__all__ is exactly the pinned, sorted list of public names."""
    assert sorted(EXPECTED_ALL) == EXPECTED_ALL
    assert list(ordercore.__all__) == EXPECTED_ALL


@pytest.mark.parametrize("name", EXPECTED_ALL)
def test_exported_name_exists(name: str) -> None:
    """Every name in ordercore.__all__ can be imported from ordercore."""
    assert getattr(ordercore, name, None) is not None, f"ordercore.{name} is exported but missing"


@pytest.mark.parametrize("package", ["ordercore", "ordercore_adapters"])
def test_py_typed_ships(package: str) -> None:
    """Each package ships the PEP 561 py.typed marker."""
    assert files(package).joinpath("py.typed").is_file()


@pytest.mark.parametrize(("service", "twin_class"), _TWINS)
def test_every_coroutine_has_a_blocking_twin(service: object, twin_class: type) -> None:
    """Each public coroutine method has a same-named, same-signature blocking twin."""
    coroutines = _public_coroutines(service)
    assert coroutines, f"{type(service).__name__} has no public coroutine methods"
    twins = twin_class(service, _NO_PORTAL)
    for name, method in coroutines.items():
        twin = getattr(twins, name, None)
        assert twin is not None, f"{twin_class.__name__}.{name} is missing"
        assert not inspect.iscoroutinefunction(twin), f"{twin_class.__name__}.{name} is async"
        assert inspect.signature(twin) == inspect.signature(method), (
            f"{twin_class.__name__}.{name}{inspect.signature(twin)} differs from "
            f"{type(service).__name__}.{name}{inspect.signature(method)}"
        )
