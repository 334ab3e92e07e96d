"""The SQL hot-SKU batch on real databases: uniform batches, shared refusals, cheap lookups."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ordercore.config import Settings
from ordercore.domain.inventory import Reservation, ReservationLine, ReservationStatus
from ordercore.errors import InsufficientStock
from ordercore.ports.clock import ManualClock
from ordercore.services.reservations import InventoryService, ReserveRequest
from ordercore_adapters.storage.sql import SqlStorage
from support.postgres import fresh_postgres_database

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'batch.db'}"
    else:
        with fresh_postgres_database() as fresh:
            yield fresh


@pytest.fixture
async def storage(url: str) -> AsyncIterator[SqlStorage]:
    """An open, migrated SqlStorage on an empty database."""
    opened = SqlStorage(url, Settings())
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def uniform(order_id: str, quantity: int = 2) -> Reservation:
    """A record as reserve_many builds it: one clock reading, one TTL, one quantity."""
    return Reservation(
        f"r-{order_id}",
        order_id,
        (ReservationLine("A", "main", quantity),),
        ReservationStatus.ACTIVE,
        T0,
        T0,
        T0 + timedelta(minutes=15),
        f"buyer-{order_id}",
    )


async def test_a_uniform_batch_writes_each_granted_header_with_its_line(
    storage: SqlStorage,
) -> None:
    """Granted records come back whole; repeats and refusals write nothing; counters agree."""
    inventory = InventoryService(storage, ManualClock(T0), Settings())
    await inventory.receive("A", 9)
    before = await inventory.reserve("held", {"A": 2})
    drafts = [uniform("o1"), uniform("held"), uniform("o2"), uniform("o1"), uniform("o3")]
    drafts += [uniform("o4"), uniform("o5")]
    async with storage.unit_of_work() as uow:
        result = await uow.inventory.reserve_batch(drafts)
        await uow.commit()
    kinds = [type(outcome).__name__ for outcome in result.outcomes]
    assert kinds == ["Reservation"] * 5 + ["InsufficientStock"] * 2
    assert result.outcomes[1] == before
    assert result.outcomes[3] == result.outcomes[0]
    assert result.outcomes[5] is result.outcomes[6]  # one shared refusal
    for order_id in ("o1", "o2", "o3"):
        stored = await inventory.reservation(order_id)
        assert stored.lines == (ReservationLine("A", "main", 2),)
        assert (stored.buyer_id, stored.expires_at) == (
            f"buyer-{order_id}",
            T0 + timedelta(minutes=15),
        )
    assert (await inventory.stock("A")).reserved == 8
    assert await inventory.verify() == []


async def test_a_sold_out_bulk_call_refuses_new_orders_and_returns_held_ones(
    storage: SqlStorage,
) -> None:
    """Past the stock, reserve_many answers held orders with theirs, the rest with a refusal."""
    inventory = InventoryService(storage, ManualClock(T0), Settings(coalesce_batch_size=10))
    await inventory.receive("A", 10)
    first = await inventory.reserve_many([ReserveRequest(f"o{i}", {"A": 1}) for i in range(30)])
    assert sum(isinstance(answer, Reservation) for answer in first) == 10
    again = await inventory.reserve_many([ReserveRequest(f"o{i}", {"A": 1}) for i in range(30)])
    assert again[:10] == first[:10]
    assert all(isinstance(answer, InsufficientStock) for answer in again[10:])
    assert (await inventory.stock("A")).reserved == 10
    assert await inventory.verify() == []
