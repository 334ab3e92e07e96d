"""The sold-out fast path and its staleness bound."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ordercore.config import Settings
from ordercore.errors import InsufficientStock
from ordercore.ports.clock import ManualClock
from ordercore.services.reservations import InventoryService
from ordercore.services.sold_out import SoldOutBoard
from ordercore_adapters.storage.memory import MemoryStorage

TTL = 1.0


class FakeMonotonic:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStorage(MemoryStorage):
    """A memory storage that counts units of work (each one a database round trip elsewhere)."""

    units = 0

    def unit_of_work(self):  # type: ignore[no-untyped-def]
        CountingStorage.units += 1
        return super().unit_of_work()


def test_a_mark_expires_after_its_ttl() -> None:
    """A sold-out mark is trusted for ttl seconds, then forgotten."""
    tick = FakeMonotonic()
    board = SoldOutBoard(TTL, tick)
    board.mark("A", "main")
    assert board.is_sold_out("A", "main")
    assert not board.is_sold_out("A", "east")
    tick.now += TTL - 0.001
    assert board.is_sold_out("A", "main")
    tick.now += 0.002
    assert not board.is_sold_out("A", "main")


def test_a_zero_ttl_turns_the_fast_path_off() -> None:
    """With sold_out_ttl 0 nothing is ever marked."""
    board = SoldOutBoard(0.0)
    board.mark("A", "main")
    assert not board.is_sold_out("A", "main")


@pytest.fixture(params=["off", "on"])
def two_processes(
    request: pytest.FixtureRequest,
) -> tuple[InventoryService, InventoryService, FakeMonotonic, CountingStorage]:
    """Two services over one storage: 'this process' (with a fake monotonic clock) and 'another'."""
    storage = CountingStorage("memory://")
    settings = Settings(sold_out_ttl=timedelta(seconds=TTL), coalesce_reservations=request.param)
    clock = ManualClock()
    tick = FakeMonotonic()
    here = InventoryService(storage, clock, settings, monotonic=tick)
    there = InventoryService(storage, clock, settings)
    return here, there, tick, storage


@pytest.mark.anyio
async def test_sold_out_requests_skip_the_stock_row(
    two_processes: tuple[InventoryService, InventoryService, FakeMonotonic, CountingStorage],
) -> None:
    """Once sold out, a new order is refused by one read, never a reserve attempt."""
    here, _, _, storage = two_processes
    await here.receive("A", 1)
    await here.reserve("o1", {"A": 1})
    with pytest.raises(InsufficientStock):
        await here.reserve("o2", {"A": 1})
    assert here.sold_out.is_sold_out("A", "main")
    before = storage.units
    with pytest.raises(InsufficientStock) as caught:
        await here.reserve("o3", {"A": 1})
    assert caught.value.available == 0
    assert storage.units - before == 1  # the read that checks o3 holds nothing yet


@pytest.mark.anyio
async def test_a_retried_order_gets_its_reservation_while_sold_out(
    two_processes: tuple[InventoryService, InventoryService, FakeMonotonic, CountingStorage],
) -> None:
    """The fast path never refuses an order that already holds its stock."""
    here, _, _, _ = two_processes
    await here.receive("A", 1)
    first = await here.reserve("o1", {"A": 1})
    with pytest.raises(InsufficientStock):
        await here.reserve("o2", {"A": 1})
    assert (await here.reserve("o1", {"A": 1})).id == first.id


@pytest.mark.anyio
async def test_local_stock_changes_clear_the_mark_at_once(
    two_processes: tuple[InventoryService, InventoryService, FakeMonotonic, CountingStorage],
) -> None:
    """A receipt or a release through this process makes the units sellable immediately."""
    here, _, _, _ = two_processes
    await here.receive("A", 1)
    await here.reserve("o1", {"A": 1})
    with pytest.raises(InsufficientStock):
        await here.reserve("o2", {"A": 1})
    await here.release("o1")
    await here.reserve("o2", {"A": 1})
    with pytest.raises(InsufficientStock):
        await here.reserve("o3", {"A": 1})
    await here.receive("A", 1)
    await here.reserve("o3", {"A": 1})


@pytest.mark.anyio
async def test_stock_from_another_process_is_sold_within_the_bound(
    two_processes: tuple[InventoryService, InventoryService, FakeMonotonic, CountingStorage],
) -> None:
    """Stock received elsewhere may be refused here for at most sold_out_ttl, never longer."""
    here, there, tick, _ = two_processes
    await here.receive("A", 1)
    await here.reserve("o1", {"A": 1})
    with pytest.raises(InsufficientStock):
        await here.reserve("o2", {"A": 1})
    await there.receive("A", 5)
    assert await there.sellable("A") == 5
    tick.now += TTL / 2
    with pytest.raises(InsufficientStock):  # inside the bound: allowed to be stale
        await here.reserve("o2", {"A": 1})
    tick.now += TTL / 2
    assert (await here.reserve("o2", {"A": 1})).quantity == 1  # at the bound: granted
    assert await there.sellable("A") == 4


@pytest.mark.anyio
async def test_display_counter_staleness_is_bounded(
    two_processes: tuple[InventoryService, InventoryService, FakeMonotonic, CountingStorage],
) -> None:
    """remaining() may lag changes made elsewhere by remaining_staleness, not more."""
    here, there, tick, _ = two_processes
    await here.receive("A", 10)
    assert await here.remaining("A") == 10
    await there.reserve("x", {"A": 4})
    assert await here.remaining("A") == 10
    tick.now += Settings().remaining_staleness.total_seconds()
    assert await here.remaining("A") == 6
    await here.reserve("y", {"A": 1})
    await here.release("y")
    assert await here.remaining("A") == 6
