"""Hot-SKU group commit: batching, arrival order, failures and cancellation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import anyio.lowlevel
import pytest

from ordercore.config import Settings
from ordercore.domain.inventory import Reservation, ReservationLine, ReservationStatus
from ordercore.errors import InsufficientStock, StorageUnavailable
from ordercore.ports.clock import ManualClock
from ordercore.services.coalescer import ReservationCoalescer
from ordercore.services.reservations import InventoryService
from ordercore.services.sold_out import SoldOutBoard
from ordercore_adapters.storage.memory import MemoryStorage

T0 = datetime(2026, 11, 11, tzinfo=UTC)


def draft(order_id: str, quantity: int = 1, sku: str = "A") -> Reservation:
    return Reservation(
        id=f"r-{order_id}",
        order_id=order_id,
        lines=(ReservationLine(sku, "main", quantity),),
        status=ReservationStatus.ACTIVE,
        created_at=T0,
        updated_at=T0,
        expires_at=T0 + timedelta(minutes=30),
    )


async def stocked(units: int) -> MemoryStorage:
    storage = MemoryStorage("memory://")
    inventory = InventoryService(storage, ManualClock(), Settings())
    await inventory.receive("A", units)
    return storage


@pytest.mark.anyio
async def test_concurrent_requests_share_batches_in_arrival_order() -> None:
    """500 concurrent requests form far fewer batches, granted first come first served."""
    storage = await stocked(100)
    sizes: list[int] = []
    coalescer = ReservationCoalescer(
        storage, SoldOutBoard(0.0), batch_size=64, window=0.0, on_batch=sizes.append
    )
    granted: list[int] = []

    async def buy(index: int) -> None:
        try:
            await coalescer.reserve(draft(f"o{index}"))
        except InsufficientStock:
            return
        granted.append(index)

    async with anyio.create_task_group() as group:
        for index in range(500):
            group.start_soon(buy, index)
    assert sum(sizes) == 500
    assert len(sizes) < 50
    assert max(sizes) <= 64
    assert sorted(granted) == list(range(100))


@pytest.mark.anyio
async def test_each_request_gets_its_own_answer() -> None:
    """A request too big for what is left fails alone; smaller ones after it still fit."""
    storage = await stocked(5)
    coalescer = ReservationCoalescer(storage, SoldOutBoard(0.0), batch_size=10, window=0.01)
    answers: dict[str, object] = {}

    async def ask(order_id: str, quantity: int) -> None:
        try:
            answers[order_id] = (await coalescer.reserve(draft(order_id, quantity))).quantity
        except InsufficientStock as exc:
            answers[order_id] = exc.available

    async with anyio.create_task_group() as group:
        for order_id, quantity in (("big", 4), ("huge", 3), ("small", 1)):
            group.start_soon(ask, order_id, quantity)
            await anyio.lowlevel.checkpoint()
    assert answers == {"big": 4, "huge": 1, "small": 1}


class FailingStorage(MemoryStorage):
    """A storage whose batches fail while ``down`` is set."""

    down = True

    def unit_of_work(self):  # type: ignore[no-untyped-def]
        if self.down:
            raise StorageUnavailable("database restarting")
        return super().unit_of_work()


@pytest.mark.anyio
async def test_a_storage_failure_reaches_every_waiter_and_the_lane_recovers() -> None:
    """When a batch's transaction fails, each request in it raises; later ones succeed."""
    storage = FailingStorage("memory://")
    storage.down = False
    await InventoryService(storage, ManualClock(), Settings()).receive("A", 10)
    storage.down = True
    coalescer = ReservationCoalescer(storage, SoldOutBoard(0.0), batch_size=10, window=0.01)
    failures: list[str] = []

    async def ask(order_id: str) -> None:
        try:
            await coalescer.reserve(draft(order_id))
        except StorageUnavailable as exc:
            failures.append(str(exc))

    async with anyio.create_task_group() as group:
        for index in range(5):
            group.start_soon(ask, f"o{index}")
    assert failures == ["database restarting"] * 5
    storage.down = False
    assert (await coalescer.reserve(draft("after"))).order_id == "after"


@pytest.mark.anyio
async def test_cancelled_waiters_take_nothing_and_do_not_stall_the_lane() -> None:
    """Callers cancelled before their turn hold no stock, and the next caller is served."""
    storage = await stocked(10)
    coalescer = ReservationCoalescer(storage, SoldOutBoard(0.0), batch_size=2, window=0.05)
    results: list[str] = []

    async def ask(order_id: str) -> None:
        results.append((await coalescer.reserve(draft(order_id))).order_id)

    async with anyio.create_task_group() as group:
        group.start_soon(ask, "leader")
        await anyio.lowlevel.checkpoint()
        with anyio.move_on_after(0.01):  # cancelled while the leader gathers its batch
            async with anyio.create_task_group() as doomed:
                for index in range(5):
                    doomed.start_soon(ask, f"gone{index}")
    assert results == ["leader"]
    with anyio.fail_after(2):
        assert (await coalescer.reserve(draft("next"))).order_id == "next"
    inventory = InventoryService(storage, ManualClock(), Settings())
    assert (await inventory.stock("A")).reserved == 2
    assert await inventory.verify() == []


@pytest.mark.anyio
async def test_auto_mode_follows_the_storage() -> None:
    """'auto' groups requests on storages that prefer batching (memory does), not on others."""
    storage = MemoryStorage("memory://")
    assert InventoryService(storage, ManualClock(), Settings()).coalescer is not None
    storage.prefers_batching = False  # type: ignore[misc]
    assert InventoryService(storage, ManualClock(), Settings()).coalescer is None
    off = Settings(coalesce_reservations="off")
    assert InventoryService(storage, ManualClock(), off).coalescer is None


@pytest.mark.anyio
async def test_a_batch_whose_leader_gave_up_is_led_by_its_next_request() -> None:
    """A batch's first request cancelled before its turn: the rest of the batch is served."""
    storage = await stocked(10)
    coalescer = ReservationCoalescer(storage, SoldOutBoard(0.0), batch_size=3, window=0.05)
    results: list[str] = []

    async def ask(order_id: str) -> None:
        results.append((await coalescer.reserve(draft(order_id))).order_id)

    with anyio.fail_after(2):
        async with anyio.create_task_group() as group:
            group.start_soon(ask, "first")  # leads the first batch, gathering for 50 ms
            await anyio.lowlevel.checkpoint()
            for index in range(2):
                group.start_soon(ask, f"fill{index}")  # fill the first batch
            await anyio.lowlevel.checkpoint()
            doomed = anyio.CancelScope()
            group.start_soon(_cancellable, coalescer, "second-leader", doomed)
            await anyio.lowlevel.checkpoint()
            group.start_soon(ask, "after0")  # waits in the second batch behind its leader
            await anyio.lowlevel.checkpoint()
            doomed.cancel()
            await anyio.lowlevel.checkpoint()
            group.start_soon(ask, "after1")
    assert sorted(results) == ["after0", "after1", "fill0", "fill1", "first"]
    inventory = InventoryService(storage, ManualClock(), Settings())
    assert (await inventory.stock("A")).reserved == 5
    assert await inventory.verify() == []


async def _cancellable(
    coalescer: ReservationCoalescer, order_id: str, scope: anyio.CancelScope
) -> None:
    with scope:
        await coalescer.reserve(draft(order_id))


@pytest.mark.anyio
async def test_every_refused_caller_raises_its_own_error() -> None:
    """Refusals shared by a batch reach each caller as a separate error with its own traceback."""
    storage = await stocked(1)
    coalescer = ReservationCoalescer(storage, SoldOutBoard(60.0), batch_size=50, window=0.0)
    caught: list[InsufficientStock] = []

    async def ask(order_id: str) -> None:
        try:
            await coalescer.reserve(draft(order_id))
        except InsufficientStock as exc:
            caught.append(exc)

    async with anyio.create_task_group() as group:
        for index in range(20):
            group.start_soon(ask, f"o{index}")
    assert len(caught) == 19
    assert len({id(exc) for exc in caught}) == 19
    assert len({id(exc.__traceback__) for exc in caught}) == 19
    assert all((exc.sku, exc.requested, exc.available) == ("A", 1, 0) for exc in caught)
    assert all(str(exc) == str(caught[0]) for exc in caught)
