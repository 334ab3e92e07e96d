"""SqlStorage behaviour beyond the shared contract: transactions, engines, errors, times."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import anyio
import pytest
from sqlalchemy import Connection, text, update
from sqlalchemy.exc import IntegrityError

from ordercore.config import Settings
from ordercore.core import create_storage
from ordercore.domain.inventory import Reservation, ReservationLine, ReservationStatus
from ordercore.errors import (
    DuplicateOrder,
    InsufficientStock,
    InvalidInput,
    StorageError,
    StorageUnavailable,
)
from ordercore.testing.storage_orders import sample_order
from ordercore_adapters.storage.sql import SqlStorage
from ordercore_adapters.storage.sql.schema import stock_levels
from support.postgres import fresh_postgres_database

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'storage.db'}"
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


def draft(order_id: str, lines: dict[str, int], *, at: datetime = T0) -> Reservation:
    """A reservation request as the service builds it (lines merged and sorted)."""
    return Reservation(
        id=f"r-{order_id}",
        order_id=order_id,
        lines=tuple(ReservationLine(sku, "main", qty) for sku, qty in sorted(lines.items())),
        status=ReservationStatus.ACTIVE,
        created_at=at,
        updated_at=at,
        expires_at=at + timedelta(minutes=30),
    )


async def receive(storage: SqlStorage, sku: str, quantity: int) -> None:
    """Receive stock in its own committed unit."""
    async with storage.unit_of_work() as uow:
        await uow.inventory.receive(sku, "main", quantity, T0, reason="receipt", reference="")
        await uow.commit()


async def on_hand_reserved(storage: SqlStorage, sku: str) -> tuple[int, int] | None:
    """(on_hand, reserved) of a level in the main warehouse, None when it does not exist."""
    async with storage.unit_of_work() as uow:
        levels = await uow.inventory.stock_levels(sku, "main")
    return (levels[0].on_hand, levels[0].reserved) if levels else None


# -- transactions -------------------------------------------------------------------------


async def test_failed_primitive_after_other_work_is_undone_alone(storage: SqlStorage) -> None:
    """A reserve failing after earlier work in its unit leaves no trace; the rest commits."""
    await receive(storage, "A", 10)
    await receive(storage, "B", 1)
    async with storage.unit_of_work() as uow:
        await uow.inventory.receive("C", "main", 4, T0, reason="receipt", reference="")
        with pytest.raises(InsufficientStock):
            await uow.inventory.reserve(draft("o1", {"A": 2, "B": 5}))
        await uow.commit()
    assert await on_hand_reserved(storage, "A") == (10, 0)
    assert await on_hand_reserved(storage, "C") == (4, 0)
    async with storage.unit_of_work() as uow:
        assert await uow.inventory.reservation("o1") is None
        assert await uow.inventory.verify() == []


async def test_driver_error_poisons_the_unit(storage: SqlStorage) -> None:
    """After a driver error mid-unit, commit() refuses and nothing of the unit is stored."""
    async with storage.unit_of_work() as uow:
        await uow.inventory.receive("A", "main", 5, T0, reason="receipt", reference="")
        with pytest.raises(StorageError):
            await uow.run(lambda conn: conn.execute(text("SELECT * FROM no_such_table")))
        with pytest.raises(StorageError, match="nothing was committed"):
            await uow.commit()
    assert await on_hand_reserved(storage, "A") is None


async def test_check_constraint_is_the_last_line_of_defence(storage: SqlStorage) -> None:
    """A direct UPDATE setting reserved above on_hand is refused by the database."""
    await receive(storage, "A", 3)

    def overbook(conn: Connection) -> None:
        conn.execute(update(stock_levels).values(reserved=stock_levels.c.on_hand + 1))

    async with storage.unit_of_work() as uow:
        with pytest.raises(StorageError) as caught:
            await uow.run(overbook)
    assert not isinstance(caught.value, StorageUnavailable)
    assert isinstance(caught.value.__cause__, IntegrityError)
    assert await on_hand_reserved(storage, "A") == (3, 0)


async def test_cancelled_unit_rolls_back_and_frees_its_slot(storage: SqlStorage) -> None:
    """Cancelling a task inside a unit rolls it back and the next unit starts at once."""
    with anyio.move_on_after(0.2):
        async with storage.unit_of_work() as uow:
            await uow.inventory.receive("A", "main", 5, T0, reason="receipt", reference="")
            await anyio.sleep(30)
    with anyio.fail_after(5):
        assert await on_hand_reserved(storage, "A") is None


async def test_unit_of_work_must_be_entered(storage: SqlStorage) -> None:
    """Using a unit outside 'async with' is a RuntimeError, not a silent autocommit."""
    uow = storage.unit_of_work()
    with pytest.raises(RuntimeError, match="async with"):
        await uow.inventory.stock_levels()


async def test_times_come_back_as_aware_utc_whatever_zone_went_in(storage: SqlStorage) -> None:
    """Times given in +08:00 are stored as UTC; the expiry sweep compares instants."""
    await receive(storage, "A", 10)
    beijing = timezone(timedelta(hours=8))
    at = T0.astimezone(beijing)
    async with storage.unit_of_work() as uow:
        await uow.inventory.reserve(draft("o1", {"A": 1}, at=at))
        await uow.commit()
    async with storage.unit_of_work() as uow:
        stored = await uow.inventory.reservation("o1")
        assert stored is not None
        assert stored.created_at == T0
        assert stored.created_at.utcoffset() == timedelta(0)
        assert stored.expires_at == T0 + timedelta(minutes=30)
        before = (T0 + timedelta(minutes=29)).astimezone(beijing)
        assert await uow.inventory.expire_due(before, 10) == []
        after = T0 + timedelta(minutes=31)
        assert [r.order_id for r in await uow.inventory.expire_due(after, 10)] == ["o1"]
        await uow.commit()


async def test_duplicate_order_leaves_the_unit_usable(storage: SqlStorage) -> None:
    """DuplicateOrder (either key) does not abort the transaction: the unit goes on and commits."""
    order = sample_order("o1", at=T0)
    twin = sample_order("o2", at=T0).model_copy(update={"external_id": "ext-o1"})
    async with storage.unit_of_work() as uow:
        await uow.orders.add(order)
        with pytest.raises(DuplicateOrder, match="id 'o1'"):
            await uow.orders.add(order)
        with pytest.raises(DuplicateOrder, match="taobao/ext-o1"):
            await uow.orders.add(twin)
        await uow.orders.add(sample_order("o3", at=T0))
        await uow.commit()
    async with storage.unit_of_work() as uow:
        assert [o.id for o in await uow.orders.list()] == ["o3", "o1"]


async def test_saving_an_order_onto_another_orders_key_is_a_duplicate(
    storage: SqlStorage,
) -> None:
    """Changing (channel, external_id) to another order's raises DuplicateOrder; nothing changes."""
    async with storage.unit_of_work() as uow:
        await uow.orders.add(sample_order("o1", at=T0))
        await uow.orders.add(sample_order("o2", at=T0))
        await uow.commit()
    async with storage.unit_of_work() as uow:
        stored = await uow.orders.get("o2")
        assert stored is not None
        with pytest.raises(DuplicateOrder):
            await uow.orders.save(stored.model_copy(update={"external_id": "ext-o1"}))
        saved = await uow.orders.save(stored.model_copy(update={"remark": "fragile"}))
        await uow.commit()
    assert saved.version == 1
    async with storage.unit_of_work() as uow:
        assert await uow.orders.get("o2") == saved


async def test_a_cap_below_units_sold_is_refused(storage: SqlStorage) -> None:
    """Lowering a running sale's cap below what it sold raises InvalidInput naming cap."""
    await receive(storage, "A", 10)
    async with storage.unit_of_work() as uow:
        await uow.inventory.set_flash_sale("A", cap=5, per_buyer_limit=None)
        await uow.inventory.reserve(draft("o1", {"A": 4}))
        with pytest.raises(InvalidInput, match="cap"):
            await uow.inventory.set_flash_sale("A", cap=3, per_buyer_limit=None)
        sale = await uow.inventory.set_flash_sale("A", cap=4, per_buyer_limit=None)
        await uow.commit()
    assert (sale.cap, sale.sold) == (4, 4)


# -- engines and URLs ---------------------------------------------------------------------


async def test_sqlite_runs_in_wal_mode_with_normal_sync_and_foreign_keys(tmp_path: Path) -> None:
    """The SQLite file is in WAL mode; each connection has synchronous=NORMAL and FKs on."""
    path = tmp_path / "wal.db"
    storage = SqlStorage(f"sqlite:///{path}", Settings())
    await storage.open()
    try:
        async with storage.unit_of_work() as uow:
            pragmas = await uow.run(
                lambda conn: [
                    conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                    for name in ("journal_mode", "synchronous", "foreign_keys")
                ]
            )
    finally:
        await storage.close()
    assert pragmas == ["wal", 1, 1]


async def test_sqlite_unit_holds_the_write_lock_from_its_first_statement(
    tmp_path: Path,
) -> None:
    """BEGIN IMMEDIATE: even a unit that has only read blocks other writers until it ends."""
    path = tmp_path / "immediate.db"
    storage = SqlStorage(f"sqlite:///{path}", Settings())
    await storage.open()
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        async with storage.unit_of_work() as uow:
            await uow.inventory.stock_levels()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()
        await storage.close()


async def test_sqlite_writer_waits_for_another_process_lock(tmp_path: Path) -> None:
    """A writer from another connection pool waits (busy_timeout) instead of failing."""
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    first, second = SqlStorage(url, Settings()), SqlStorage(url, Settings())
    await first.open()
    await second.open()
    try:
        async with anyio.create_task_group() as group, first.unit_of_work() as uow:
            await uow.inventory.receive("A", "main", 1, T0, reason="r", reference="")
            group.start_soon(receive, second, "A", 2)
            await anyio.sleep(0.3)
            await uow.commit()
        assert await on_hand_reserved(second, "A") == (3, 0)
    finally:
        await first.close()
        await second.close()


async def test_sqlite_lock_timeout_is_storage_unavailable(tmp_path: Path) -> None:
    """When the write lock stays taken past busy_timeout, the error is StorageUnavailable."""
    path = tmp_path / "timeout.db"
    storage = SqlStorage(f"sqlite:///{path}", Settings(sqlite_busy_timeout=timedelta(seconds=0.05)))
    await storage.open()
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        async with storage.unit_of_work() as uow:
            with pytest.raises(StorageUnavailable, match="locked"):
                await uow.inventory.stock_levels()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        await storage.close()


async def test_unreachable_server_is_unavailable_and_password_is_masked() -> None:
    """Connection failures raise StorageUnavailable; neither it nor repr shows the password."""
    storage = SqlStorage("postgresql://alice:s3cr3t@127.0.0.1:1/shop", Settings())
    with pytest.raises(StorageUnavailable) as caught:
        await storage.open()
    assert "s3cr3t" not in str(caught.value)
    assert "s3cr3t" not in repr(storage)
    assert storage.name == "postgresql"


async def test_unopenable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    """A SQLite path in a missing directory raises StorageUnavailable from open()."""
    storage = SqlStorage(f"sqlite:///{tmp_path / 'missing' / 'x.db'}", Settings())
    with pytest.raises(StorageUnavailable, match="sqlite"):
        await storage.open()


@pytest.mark.parametrize(
    "bad",
    ["mysql://localhost/shop", "sqlite://", "sqlite:///:memory:", "postgresql+asyncpg://h/d"],
)
def test_unsupported_urls_are_invalid_input(bad: str) -> None:
    """Other databases, in-memory SQLite and other PostgreSQL drivers are refused up front."""
    with pytest.raises(InvalidInput, match="url"):
        SqlStorage(bad, Settings())


def test_entry_points_build_sql_storages(tmp_path: Path) -> None:
    """The core's registry maps sqlite:// and postgresql:// URLs to SqlStorage."""
    sqlite_storage = create_storage(f"sqlite:///{tmp_path / 'x.db'}")
    pg_storage = create_storage("postgresql://127.0.0.1/shop")
    assert isinstance(sqlite_storage, SqlStorage)
    assert isinstance(pg_storage, SqlStorage)
    assert (sqlite_storage.name, pg_storage.name) == ("sqlite", "postgresql")


async def test_server_time(storage: SqlStorage) -> None:
    """PostgreSQL reports its clock as aware UTC; SQLite has no clock of its own."""
    server = await storage.server_time()
    if storage.name == "sqlite":
        assert server is None
    else:
        assert server is not None
        assert server.utcoffset() == timedelta(0)
        assert abs(server - datetime.now(UTC)) < timedelta(seconds=30)


async def test_plain_postgresql_scheme_uses_psycopg() -> None:
    """postgresql:// (no driver) works and means psycopg 3."""
    with fresh_postgres_database() as url:
        plain = "postgresql://" + url.split("://", 1)[1]
        storage = SqlStorage(plain, Settings())
        await storage.open()
        try:
            await storage.ping()
        finally:
            await storage.close()
