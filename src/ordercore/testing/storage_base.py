"""Fixtures shared by the storage contract suite's parts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import ClassVar

import pytest

from ordercore.config import Settings
from ordercore.core import OrderCore
from ordercore.ports.clock import ManualClock
from ordercore.ports.storage import Storage

__all__ = ["RESERVING", "StorageContractBase", "StorageFactory"]

StorageFactory = Callable[[Settings], Storage]
"""Each call builds a new, unopened Storage on a fresh, empty database."""

TTL = timedelta(minutes=30)

RESERVING: tuple[str, ...] = ("per-request", "coalesced")
"""Both reservation modes: for contract parts whose tests reserve stock."""


class StorageContractBase:
    """Provides ``core`` (an OrderCore on the adapter under test) and ``clock``.

    Subclasses supply the ``make_storage`` fixture: a callable taking Settings and
    returning a new, unopened Storage on a fresh, empty database at each call (the
    stateful test calls it once per example).
    """

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def make_storage(self) -> StorageFactory:
        raise NotImplementedError("provide a make_storage fixture returning a StorageFactory")

    reservation_modes: ClassVar[tuple[str, ...]] = ("per-request",)
    """The reservation modes this part's tests run in. Parts that reserve stock set
    ``RESERVING`` so each of their tests runs with single-request reservations and with
    hot-SKU batching; the others run once."""

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Parametrize ``reservation_mode`` by the part that defines the test."""
        if "reservation_mode" not in metafunc.fixturenames or metafunc.cls is None:
            return
        name = metafunc.function.__name__
        owner = next((klass for klass in metafunc.cls.__mro__ if name in vars(klass)), metafunc.cls)
        modes = getattr(owner, "reservation_modes", RESERVING)
        metafunc.parametrize("reservation_mode", modes)

    @pytest.fixture
    def settings(self, reservation_mode: str) -> Settings:
        """Settings of the test's reservation mode (see ``reservation_modes``)."""
        return Settings(
            reservation_ttl=TTL,
            payment_grace=timedelta(minutes=10),
            coalesce_reservations="on" if reservation_mode == "coalesced" else "off",
        )

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    @pytest.fixture
    async def core(
        self, make_storage: StorageFactory, settings: Settings, clock: ManualClock
    ) -> AsyncIterator[OrderCore]:
        storage = make_storage(settings)
        await storage.open()
        try:
            yield OrderCore(storage, clock, settings)
        finally:
            await storage.close()


async def stock_of(core: OrderCore, sku: str, warehouse: str = "main") -> tuple[int, int]:
    """(on_hand, reserved) of one level."""
    level = await core.inventory.stock(sku, warehouse)
    return level.on_hand, level.reserved


def clock_now(core: OrderCore) -> datetime:
    """The core's current time."""
    return core.clock.now()


async def assert_no_drift(core: OrderCore) -> None:
    """verify() finds nothing to repair."""
    drift = await core.inventory.verify()
    assert drift == [], [str(item) for item in drift]
