"""Alembic migrations of the SQL storage, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, Integer, MetaData, inspect, text

from ordercore.config import Settings
from ordercore.domain.intake import UpsertOutcome
from ordercore.domain.orders import Order, OrderLine
from ordercore.errors import StorageError
from ordercore_adapters.storage.sql import SqlStorage
from ordercore_adapters.storage.sql.engine import create_sql_engine, parse_url
from ordercore_adapters.storage.sql.migrate import MIGRATIONS, alembic_config
from ordercore_adapters.storage.sql.schema import metadata
from support.postgres import fresh_postgres_database
from support.sql_workers import open_and_close

pytestmark = pytest.mark.anyio

TABLES = {
    "buyer_purchases",
    "flash_sales",
    "orders",
    "reservation_lines",
    "reservations",
    "review_queue",
    "stock_levels",
    "stock_movements",
    "sync_cursors",
    "sync_rejects",
    "sync_runs",
    "webhook_deliveries",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
    else:
        with fresh_postgres_database() as fresh:
            yield fresh


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    """A bare engine on the test database (the storage's engine factory, no storage)."""
    made = create_sql_engine(parse_url(url), Settings())
    yield made
    made.dispose()


def _diffs(engine: Engine, target: MetaData) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, target))


async def test_migrated_database_matches_schema_py(url: str, engine: Engine) -> None:
    """After open() the database has exactly the tables, columns and indexes of schema.py."""
    storage = SqlStorage(url, Settings())
    await storage.open()
    await storage.close()
    assert _diffs(engine, metadata) == []
    assert set(inspect(engine).get_table_names()) >= TABLES


async def test_comparison_catches_a_schema_change_without_migration(
    url: str, engine: Engine
) -> None:
    """The comparison above is not vacuous: a column added only in metadata is a diff."""
    storage = SqlStorage(url, Settings())
    await storage.open()
    await storage.close()
    changed = MetaData()
    for table in metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["flash_sales"].append_column(Column("extra", Integer(), nullable=True))
    assert _diffs(engine, changed) != []


async def test_reopening_a_migrated_database_keeps_data(url: str, engine: Engine) -> None:
    """Opening an up-to-date database again migrates nothing and keeps every row."""
    first = SqlStorage(url, Settings())
    await first.open()
    async with first.unit_of_work() as uow:
        now = datetime.now(UTC)
        await uow.inventory.receive("A", "main", 5, now, reason="receipt", reference="")
        await uow.commit()
    await first.close()

    again = SqlStorage(url, Settings())
    await again.open()
    await again.migrate()
    async with again.unit_of_work() as uow:
        levels = await uow.inventory.stock_levels()
    await again.close()
    assert [(level.sku, level.on_hand) for level in levels] == [("A", 5)]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [
            _newest_revision()
        ]


def _revisions() -> list[str]:
    """Every revision from the base up, following down_revision links."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    script = ScriptDirectory.from_config(config)
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def _newest_revision() -> str:
    return _revisions()[-1]


def test_migrations_form_one_chain_in_numeric_order() -> None:
    """Revisions are 0001, 0002, ... each revising the one before: one head, no gaps."""
    revisions = _revisions()
    assert revisions == [f"{n:04d}" for n in range(1, len(revisions) + 1)]


def _migrate_to(engine: Engine, revision: str, *, down: bool = False) -> None:
    with engine.connect() as conn, conn.begin():
        step = command.downgrade if down else command.upgrade
        step(alembic_config(conn), revision)


async def test_an_0001_database_with_orders_upgrades_to_intake(url: str, engine: Engine) -> None:
    """0002 adds the intake tables to a 0001 database; its orders stay, as the oldest version."""
    _migrate_to(engine, "0001")
    now = datetime.now(UTC)
    order = Order(
        id="o1",
        external_id="e1",
        lines=(OrderLine(sku="A", quantity=1),),
        created_at=now,
        updated_at=now,
    )
    with engine.connect() as conn, conn.begin():
        conn.execute(
            text(
                "INSERT INTO orders (id, channel, external_id, status, buyer_id, version,"
                " created_at, updated_at, document) VALUES ('o1', 'direct', 'e1',"
                " 'pending_payment', '', 0, :now, :now, :document)"
            ),
            {"now": now, "document": order.model_dump_json(exclude={"source_modified_at"})},
        )
    storage = SqlStorage(url, Settings())
    await storage.open()
    try:
        async with storage.unit_of_work() as uow:
            assert await uow.orders.get("o1") == order
            newer = order.model_copy(update={"source_modified_at": now, "remark": "newer"})
            assert await uow.orders.upsert_many([newer]) == [UpsertOutcome.UPDATED]
            await uow.commit()
    finally:
        await storage.close()
    assert _diffs(engine, metadata) == []


async def test_0002_downgrades_and_upgrades_again(url: str, engine: Engine) -> None:
    """Downgrading to 0001 drops the intake schema; upgrading again matches schema.py."""
    storage = SqlStorage(url, Settings())
    await storage.open()
    await storage.close()
    _migrate_to(engine, "0001", down=True)
    names = set(inspect(engine).get_table_names())
    assert not names & {
        "sync_cursors",
        "sync_runs",
        "sync_rejects",
        "webhook_deliveries",
        "review_queue",
    }
    assert "source_modified_at" not in {c["name"] for c in inspect(engine).get_columns("orders")}
    _migrate_to(engine, "head")
    assert _diffs(engine, metadata) == []


async def test_0003_downgrades_and_upgrades_again(url: str, engine: Engine) -> None:
    """Downgrading to 0002 drops only the review queue; upgrading again matches schema.py."""
    storage = SqlStorage(url, Settings())
    await storage.open()
    await storage.close()
    _migrate_to(engine, "0002", down=True)
    names = set(inspect(engine).get_table_names())
    assert "review_queue" not in names
    assert "sync_rejects" in names
    _migrate_to(engine, "head")
    assert _diffs(engine, metadata) == []


async def test_migrate_on_open_off_leaves_the_schema_to_migrate(url: str) -> None:
    """With migrate_on_open=False, open() only connects; migrate() creates the schema."""
    storage = SqlStorage(url, Settings(migrate_on_open=False))
    await storage.open()
    try:
        with pytest.raises(StorageError):
            async with storage.unit_of_work() as uow:
                await uow.inventory.stock_levels()
        await storage.migrate()
        async with storage.unit_of_work() as uow:
            assert await uow.inventory.stock_levels() == []
    finally:
        await storage.close()


@pytest.mark.postgres
def test_processes_migrating_postgresql_at_once_all_succeed() -> None:
    """Four processes opening one fresh PostgreSQL database at once all succeed (advisory lock)."""
    with fresh_postgres_database() as url:
        start_at = time.time() + 3
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=4, mp_context=context) as pool:
            futures = [pool.submit(open_and_close, url, start_at) for _ in range(4)]
            names = [future.result(timeout=120) for future in futures]
        assert names == ["postgresql"] * 4
        engine = create_sql_engine(parse_url(url), Settings())
        try:
            assert _diffs(engine, metadata) == []
        finally:
            engine.dispose()
