"""The storage contract suite, run against every storage adapter we ship."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from ordercore.config import Settings
from ordercore.testing import StorageContract, StorageFactory, run_state_machine
from ordercore_adapters.storage.memory import MemoryStorage
from ordercore_adapters.storage.sql import SqlStorage
from ordercore_adapters.storage.sql.engine import create_sql_engine, parse_url
from ordercore_adapters.storage.sql.migrate import upgrade
from support.postgres import fresh_postgres_database, postgres_url_or_skip


def sqlite_factory(folder: Path, template: Path | None = None) -> StorageFactory:
    """Each call: a new SQLite file in ``folder`` (a copy of ``template`` when given)."""
    counter = iter(range(1_000_000))

    def make(settings: Settings) -> SqlStorage:
        path = folder / f"store-{next(counter)}.db"
        if template is not None:
            shutil.copyfile(template, path)
        return SqlStorage(f"sqlite:///{path}", settings)

    return make


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file at the newest migration, copied for each test (migrating is slower)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = create_sql_engine(parse_url(f"sqlite:///{path}"), Settings())
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return path


class TestMemoryStorage(StorageContract):
    """The in-process storage."""

    @pytest.fixture
    def make_storage(self) -> StorageFactory:
        return lambda settings: MemoryStorage("memory://", settings)


class TestSqliteStorage(StorageContract):
    """SQLite files: the embedded default."""

    @pytest.fixture
    def make_storage(self, tmp_path: Path, sqlite_template: Path) -> StorageFactory:
        return sqlite_factory(tmp_path, sqlite_template)


def postgres_factory(stack: ExitStack) -> StorageFactory:
    """Each call: a new, empty PostgreSQL database, dropped when ``stack`` closes."""

    def make(settings: Settings) -> SqlStorage:
        return SqlStorage(stack.enter_context(fresh_postgres_database(migrated=True)), settings)

    return make


@pytest.fixture
def postgres_databases() -> Iterator[StorageFactory]:
    """A factory of fresh PostgreSQL databases for one test (skips with the reason if none)."""
    postgres_url_or_skip()
    with ExitStack() as stack:
        yield postgres_factory(stack)


@pytest.mark.postgres
class TestPostgresStorage(StorageContract):
    """PostgreSQL: many processes, many machines."""

    @pytest.fixture
    def make_storage(self, postgres_databases: StorageFactory) -> StorageFactory:
        return postgres_databases


def test_memory_storage_agrees_with_the_model() -> None:
    """Random operation sequences with clock jumps keep memory storage exact."""
    run_state_machine(lambda settings: MemoryStorage("memory://", settings), max_examples=150)


def test_sqlite_storage_agrees_with_the_model(tmp_path: Path) -> None:
    """Random operation sequences with clock jumps keep SQLite storage exact."""
    run_state_machine(sqlite_factory(tmp_path), max_examples=25)


@pytest.mark.postgres
def test_postgres_storage_agrees_with_the_model(postgres_databases: StorageFactory) -> None:
    """Random operation sequences with clock jumps keep PostgreSQL storage exact."""
    run_state_machine(postgres_databases, max_examples=15)
