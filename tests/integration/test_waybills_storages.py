"""Exactly one waybill per package on memory, SQLite and PostgreSQL, under duplicate runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from ordercore.config import Settings
from ordercore.core import OrderCore
from ordercore.domain.couriers import WaybillState
from ordercore.domain.outbox import OutboxState
from ordercore.ports.clock import ManualClock
from ordercore.services.outbox import HandlerRegistry
from ordercore.testing.couriers import FakeCourier
from ordercore.testing.storage_orders import sample_order
from ordercore_adapters.storage.memory import MemoryStorage
from ordercore_adapters.storage.sql import SqlStorage
from support.postgres import fresh_postgres_database, postgres_url_or_skip
from support.waybills import LosingCourier, live_waybills, waybill_service

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 31, 20, 0, tzinfo=UTC)
SETTINGS = Settings(outbox_poll_interval=timedelta(milliseconds=5))
ORDERS = 20


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A storage URL on each backend (a fresh database each time)."""
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'waybills.db'}"
    else:
        postgres_url_or_skip()
        with fresh_postgres_database() as fresh:
            yield fresh


@pytest.fixture
async def core(url: str) -> AsyncIterator[OrderCore]:
    storage = (
        MemoryStorage(url, SETTINGS) if url.startswith("memory") else SqlStorage(url, SETTINGS)
    )
    await storage.open()
    try:
        yield OrderCore(storage, ManualClock(T0), SETTINGS)
    finally:
        await storage.close()


async def test_duplicate_runs_and_lost_answers_leave_one_waybill_per_package(
    core: OrderCore,
) -> None:
    """Three runs per order at once, two lost answers at the primary: one waybill each."""
    primary = LosingCourier("zto", prefix="ZT", lose=2)
    primary.delay = 0.005
    backup = FakeCourier("sf", prefix="SF")
    service, _ = waybill_service(core, [primary, backup])
    for n in range(ORDERS):
        await core.orders.add(sample_order(f"o-{n}", at=T0))

    async with anyio.create_task_group() as group:
        for n in range(ORDERS):
            for _ in range(3):
                group.start_soon(service.create, f"o-{n}")

    registry = HandlerRegistry()
    service.register(registry)
    await core.outbox.worker(registry).run(stop_when="drained")

    async with core.storage.unit_of_work() as uow:
        counts = await uow.waybills.counts()
        records = [await uow.waybills.for_order(f"o-{n}") for n in range(ORDERS)]
    assert counts == {WaybillState.REQUESTED: 0, WaybillState.CREATED: ORDERS}
    kept = {(r[0].key, r[0].courier) for r in records}
    live = live_waybills([primary, backup])
    assert {(key, holders[0]) for key, holders in live.items()} == kept
    assert all(len(holders) == 1 for holders in live.values())
    assert (await core.outbox.counts())[OutboxState.DEAD] == 0
    assert primary.cancelled  # the lost answers left orphans, and they were cancelled
    calls = primary.calls + backup.calls
    await service.create("o-0")
    assert primary.calls + backup.calls == calls  # a finished order is a no-op
