"""What is specific to the memory storage: its lock, its undo log and its expiry index.

The behaviour every storage shares is in the contract suite (tests/contract).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import anyio.lowlevel
import pytest

from ordercore.config import Settings
from ordercore.core import create_storage
from ordercore.domain.channels import RecordKind
from ordercore.domain.intake import Cursor, Feed, RejectedRecord, RunStatus, SyncRun
from ordercore.domain.inventory import (
    Drift,
    FlashSale,
    Reservation,
    ReservationLine,
    ReservationStatus,
    StockLevel,
)
from ordercore.domain.orders import Order, OrderLine
from ordercore.errors import (
    BuyerLimitExceeded,
    InsufficientStock,
    SaleCapReached,
    UnknownSku,
)
from ordercore.ports.storage import Storage, UnitOfWork
from ordercore_adapters.storage.memory import MemoryStorage

T0 = datetime(2026, 11, 11, tzinfo=UTC)
TTL = timedelta(minutes=30)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage("memory://", Settings())


def draft(
    order_id: str,
    lines: dict[str, int],
    *,
    buyer_id: str = "",
    expires_at: datetime | None = T0 + TTL,
    warehouse: str = "main",
) -> Reservation:
    return Reservation(
        id=f"r-{order_id}",
        order_id=order_id,
        lines=tuple(ReservationLine(sku, warehouse, qty) for sku, qty in sorted(lines.items())),
        status=ReservationStatus.ACTIVE,
        created_at=T0,
        updated_at=T0,
        expires_at=expires_at,
        buyer_id=buyer_id,
    )


def order(order_id: str) -> Order:
    return Order(
        id=order_id,
        external_id=f"ext-{order_id}",
        lines=(OrderLine(sku="A", quantity=1),),
        created_at=T0,
        updated_at=T0,
    )


async def receive(storage: MemoryStorage, **units: int) -> None:
    async with storage.unit_of_work() as uow:
        for sku, quantity in units.items():
            await uow.inventory.receive(sku, "main", quantity, T0, reason="receipt", reference="")
        await uow.commit()


async def reserve(storage: MemoryStorage, reservation: Reservation) -> None:
    async with storage.unit_of_work() as uow:
        await uow.inventory.reserve(reservation)
        await uow.commit()


@dataclass(frozen=True)
class View:
    """Everything the port can read back, for before/after comparisons."""

    levels: list[StockLevel]
    sales: tuple[FlashSale | None, ...]
    reservations: tuple[Reservation | None, ...]
    orders: Sequence[Order]
    drift: list[Drift]


async def view_in(uow: UnitOfWork) -> View:
    """Read a View inside an open unit."""
    inventory = uow.inventory
    return View(
        await inventory.stock_levels(),
        (await inventory.flash_sale("A"), await inventory.flash_sale("B")),
        (await inventory.reservation("o1"), await inventory.reservation("o2")),
        list(await uow.orders.list()),
        await inventory.verify(),
    )


async def view(storage: MemoryStorage) -> View:
    """Read a View in a unit of its own."""
    async with storage.unit_of_work() as uow:
        return await view_in(uow)


async def test_the_entry_point_builds_a_memory_storage() -> None:
    """create_storage("memory://...") gives a MemoryStorage that implements the port."""
    storage = create_storage("memory://shop-1")
    assert isinstance(storage, MemoryStorage)
    assert isinstance(storage, Storage)
    await storage.open()
    await storage.ping()
    assert await storage.server_time() is None
    await storage.close()
    with pytest.raises(ValueError, match="memory://"):
        MemoryStorage("sqlite:///x.db", Settings())


async def test_a_failed_reserve_leaves_no_trace_when_the_unit_commits(
    storage: MemoryStorage,
) -> None:
    """A reserve that fails after taking earlier lines undoes them itself; commit keeps nothing."""
    await receive(storage, A=10, B=10)
    async with storage.unit_of_work() as uow:
        await uow.inventory.set_flash_sale("B", cap=1, per_buyer_limit=None)
        await uow.inventory.set_flash_sale("A", cap=None, per_buyer_limit=5)
        await uow.commit()
    before = await view(storage)
    async with storage.unit_of_work() as uow:
        with pytest.raises(SaleCapReached):
            await uow.inventory.reserve(draft("o1", {"A": 2, "B": 2}, buyer_id="ann"))
        with pytest.raises(InsufficientStock):
            await uow.inventory.reserve(draft("o1", {"A": 2, "B": 11}, buyer_id="ann"))
        with pytest.raises(UnknownSku):
            await uow.inventory.reserve(draft("o1", {"A": 2, "ZZZ": 1}, buyer_id="ann"))
        await uow.commit()
    assert await view(storage) == before
    async with storage.unit_of_work() as uow:
        await uow.inventory.reserve(draft("o1", {"A": 5}, buyer_id="ann"))
        with pytest.raises(BuyerLimitExceeded):
            await uow.inventory.reserve(draft("o2", {"A": 1, "B": 1}, buyer_id="ann"))
        await uow.commit()
    after = await view(storage)
    assert [level.reserved for level in after.levels] == [5, 0]
    assert [sale.sold if sale else None for sale in after.sales] == [5, 0]
    assert after.drift == []


async def test_rollback_undoes_a_mix_of_changes_newest_first(storage: MemoryStorage) -> None:
    """rollback() reverses receipts, reservations, commits, sales and orders in one go."""
    await receive(storage, A=10)
    await reserve(storage, draft("o1", {"A": 2}))
    before = await view(storage)
    async with storage.unit_of_work() as uow:
        inventory = uow.inventory
        await inventory.receive("B", "main", 7, T0, reason="receipt", reference="po-1")
        await inventory.set_safety("A", "main", units=None, basis_points=1000)
        await inventory.set_flash_sale("A", cap=3, per_buyer_limit=None)
        await inventory.reserve(draft("o2", {"A": 1, "B": 2}))
        await inventory.transition("o1", ReservationStatus.COMMITTED, T0)
        await inventory.transition("o2", ReservationStatus.RELEASED, T0)
        await inventory.count("A", "main", 5, T0, reference="stocktake-1")
        await inventory.end_flash_sale("A")
        await uow.orders.add(order("o1"))
        saved = await uow.orders.save(order("o1"))
        assert saved.version == 1
        assert await view_in(uow) != before
        await uow.rollback()
        assert await view_in(uow) == before
        await inventory.receive("C", "main", 1, T0, reason="receipt", reference="")
        await uow.commit()
    levels = (await view(storage)).levels
    assert [(level.sku, level.on_hand) for level in levels] == [("A", 10), ("C", 1)]


async def test_a_unit_cannot_be_used_after_commit_or_outside_its_block(
    storage: MemoryStorage,
) -> None:
    """Reads, writes and a second commit after commit(), or before entering, raise."""
    await receive(storage, A=1)
    unit = storage.unit_of_work()
    with pytest.raises(RuntimeError, match="not open"):
        await unit.inventory.stock_levels()
    async with unit as uow:
        await uow.commit()
        with pytest.raises(RuntimeError, match="not open"):
            await uow.inventory.reserve(draft("o1", {"A": 1}))
        with pytest.raises(RuntimeError, match="not open"):
            await uow.orders.get("o1")
        with pytest.raises(RuntimeError, match="not open"):
            await uow.commit()
    with pytest.raises(RuntimeError, match="only once"):
        async with unit:
            pass
    async with storage.unit_of_work() as uow:
        assert await uow.inventory.reservation("o1") is None


async def test_expire_due_pops_the_index_earliest_first(storage: MemoryStorage) -> None:
    """The sweep takes due reservations in expires_at order and touches only those entries."""
    await receive(storage, A=10_000)
    offsets = [7, 3, 9, 1, 5]
    for index, minutes in enumerate(offsets):
        await reserve(
            storage, draft(f"due-{index}", {"A": 1}, expires_at=T0 + timedelta(minutes=minutes))
        )
    for index in range(2_000):
        await reserve(storage, draft(f"later-{index}", {"A": 1}, expires_at=T0 + TTL))
    async with storage.unit_of_work() as uow:
        assert await uow.inventory.mark_paid("due-1", T0)  # paid: its entry is stale
        deadline = T0 + timedelta(minutes=20)
        assert await uow.inventory.begin_payment("due-4", deadline, T0)  # payment in flight
        await uow.commit()
    index_size = len(storage._state.expiry)
    now = T0 + timedelta(minutes=10)
    async with storage.unit_of_work() as uow:
        first = await uow.inventory.expire_due(now, 2)
        rest = await uow.inventory.expire_due(now, 100)
        await uow.commit()
    assert [r.order_id for r in first] == ["due-3", "due-0"]
    assert [r.order_id for r in rest] == ["due-2"]
    assert len(storage._state.expiry) == index_size - 5  # the 2,000 later ones untouched
    async with storage.unit_of_work() as uow:
        late = await uow.inventory.expire_due(deadline, 100)
        await uow.commit()
    assert [(r.order_id, r.status) for r in late] == [("due-4", ReservationStatus.EXPIRED)]


async def test_a_rolled_back_sweep_leaves_its_reservations_due(storage: MemoryStorage) -> None:
    """Entries a sweep popped come back with its rollback: the next sweep expires them once."""
    await receive(storage, A=10)
    await reserve(storage, draft("o1", {"A": 2}))
    await reserve(storage, draft("o2", {"A": 3}))
    now = T0 + TTL
    async with storage.unit_of_work() as uow:
        assert await uow.inventory.mark_paid("o2", now)
        assert len(await uow.inventory.expire_due(now, 10)) == 1
    async with storage.unit_of_work() as uow:
        expired = await uow.inventory.expire_due(now, 10)
        assert await uow.inventory.expire_due(now, 10) == []
        await uow.commit()
    assert [r.order_id for r in expired] == ["o1", "o2"]
    async with storage.unit_of_work() as uow:
        assert (await uow.inventory.stock_levels("A"))[0].reserved == 0
        assert await uow.inventory.verify() == []


async def test_ten_thousand_tasks_share_one_thousand_units(storage: MemoryStorage) -> None:
    """10,000 concurrent units on 1,000 units: exactly 1,000 keep one, whoever rolls back."""
    await receive(storage, A=1_000)
    outcomes: Counter[str] = Counter()

    async def buy(index: int) -> None:
        async with storage.unit_of_work() as uow:
            try:
                await uow.inventory.reserve(draft(f"o{index}", {"A": 1}))
            except InsufficientStock:
                outcomes["refused"] += 1
                return
            await anyio.lowlevel.checkpoint()  # others run meanwhile; they must wait
            if index % 2:
                outcomes["rolled back"] += 1
                return  # leaving without commit gives the unit back
            await uow.commit()
            outcomes["reserved"] += 1

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            for index in range(10_000):
                group.start_soon(buy, index)
    assert outcomes["reserved"] == 1_000
    assert outcomes.total() == 10_000
    async with storage.unit_of_work() as uow:
        level = (await uow.inventory.stock_levels("A", "main"))[0]
        assert (level.on_hand, level.reserved, level.sellable) == (1_000, 1_000, 0)
        assert await uow.inventory.verify() == []


async def test_a_unit_never_reads_another_units_uncommitted_change(
    storage: MemoryStorage,
) -> None:
    """A second unit waits for the first to end, so it never sees stock the first gave back."""
    await receive(storage, A=5)
    seen: list[int] = []
    reserved = anyio.Event()

    async def first() -> None:
        async with storage.unit_of_work() as uow:
            await uow.inventory.reserve(draft("o1", {"A": 2}))
            reserved.set()
            for _ in range(10):
                await anyio.lowlevel.checkpoint()
            # leaves without commit()

    async def second() -> None:
        await reserved.wait()
        async with storage.unit_of_work() as uow:
            seen.append((await uow.inventory.stock_levels("A"))[0].reserved)

    async with anyio.create_task_group() as group:
        group.start_soon(first)
        group.start_soon(second)
    assert seen == [0]


async def test_verify_recomputes_instead_of_trusting_counters(storage: MemoryStorage) -> None:
    """Corrupted counters show up as drift of each kind, against what the records say."""
    await receive(storage, A=10)
    async with storage.unit_of_work() as uow:
        await uow.inventory.set_flash_sale("A", cap=None, per_buyer_limit=3)
        await uow.inventory.reserve(draft("o1", {"A": 2}, buyer_id="ann"))
        await uow.commit()
    state = storage._state
    level = state.levels["A"]["main"]
    level.reserved += 1
    level.on_hand += 4
    state.sales["A"].sold = 9
    state.purchases["A"]["ann"] = 1
    async with storage.unit_of_work() as uow:
        drift = await uow.inventory.verify()
    assert [(d.kind, d.key, d.recorded, d.expected) for d in drift] == [
        ("reserved", ("A", "main"), 3, 2),
        ("on_hand", ("A", "main"), 14, 10),
        ("flash_sold", ("A",), 9, 2),
        ("buyer_purchases", ("A", "ann"), 1, 2),
    ]


async def test_rollback_undoes_intake_changes_to_their_previous_values(
    storage: MemoryStorage,
) -> None:
    """rollback() restores replaced orders, moved cursors, replaced runs and resolved rejects."""
    v1 = order("o1").model_copy(update={"source_modified_at": T0, "channel": "jd"})
    v2 = v1.model_copy(update={"source_modified_at": T0 + TTL, "remark": "newer"})
    run = SyncRun(id="r1", channel="jd", started_at=T0)
    kept = RejectedRecord(
        id="x1",
        channel="jd",
        kind=RecordKind.ORDER,
        external_id="ext-o9",
        modified_at=T0,
        payload={"a": 1},
        reason="bad",
        rejected_at=T0,
    )
    async with storage.unit_of_work() as uow:
        await uow.orders.upsert_many([v1])
        await uow.intake.advance_cursor(
            Cursor(channel="jd", feed=Feed.ORDERS, position=T0, updated_at=T0)
        )
        await uow.intake.save_run(run)
        await uow.intake.add_rejects([kept])
        await uow.intake.remember_deliveries("jd", ["m1"], T0)
        await uow.commit()

    async def snapshot(uow: UnitOfWork) -> tuple[object, ...]:
        return (
            await uow.orders.get_many_by_external("jd", ["ext-o1", "ext-o2"]),
            await uow.intake.cursor("jd", Feed.ORDERS),
            await uow.intake.runs(),
            await uow.intake.rejects(unresolved_only=False),
        )

    async with storage.unit_of_work() as uow:
        before = await snapshot(uow)
        later = T0 + TTL
        assert await uow.orders.upsert_many([v2, order("o2").model_copy(update={"channel": "jd"})])
        assert await uow.intake.advance_cursor(
            Cursor(channel="jd", feed=Feed.ORDERS, position=later, updated_at=later)
        )
        await uow.intake.save_run(run.model_copy(update={"status": RunStatus.SUCCEEDED}))
        assert await uow.intake.resolve_reject("x1", later)
        assert await uow.intake.remember_deliveries("jd", ["m1", "m2"], later) == {"m2"}
        assert await snapshot(uow) != before
        await uow.rollback()
        assert await snapshot(uow) == before
        assert await uow.intake.remember_deliveries("jd", ["m1", "m2"], later) == {"m2"}
