"""The screening store contract, run against the in-memory store and the SQL store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ordercore.config import Settings
from ordercore.ports.screening import InMemoryScreeningStore, ScreeningStore
from ordercore.testing.screening_contract import ScreeningStoreContract
from ordercore_adapters.storage.sql import SqlStorage
from ordercore_adapters.storage.sql.screening import SqlScreeningStore
from support.postgres import fresh_postgres_database, postgres_url_or_skip


class TestInMemoryScreeningStore(ScreeningStoreContract):
    """The in-process store (the default)."""

    @pytest.fixture
    async def screening_store(self) -> ScreeningStore:
        return InMemoryScreeningStore()


class TestSqliteScreeningStore(ScreeningStoreContract):
    """SQLite files."""

    @pytest.fixture
    async def screening_store(self, tmp_path: Path) -> AsyncIterator[ScreeningStore]:
        storage = SqlStorage(f"sqlite:///{tmp_path / 'screening.db'}", Settings())
        await storage.open()
        try:
            yield SqlScreeningStore(storage)
        finally:
            await storage.close()


@pytest.mark.postgres
class TestPostgresScreeningStore(ScreeningStoreContract):
    """PostgreSQL, shared by many processes."""

    @pytest.fixture
    async def screening_store(self) -> AsyncIterator[ScreeningStore]:
        postgres_url_or_skip()
        with fresh_postgres_database() as url:
            storage = SqlStorage(url, Settings())
            await storage.open()
            try:
                yield SqlScreeningStore(storage)
            finally:
                await storage.close()
