"""SqlStorage: the storage port on SQLite (the embedded default) or PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio
from sqlalchemy import Engine, text

from ordercore.config import Settings
from ordercore.ports.screening import ScreeningStore
from ordercore.ports.storage import Storage, UnitOfWork
from ordercore_adapters.storage.sql.database import Database
from ordercore_adapters.storage.sql.engine import (
    POSTGRESQL,
    backend_of,
    create_sql_engine,
    parse_url,
)
from ordercore_adapters.storage.sql.migrate import upgrade
from ordercore_adapters.storage.sql.unit_of_work import SqlUnitOfWork

__all__ = ["SqlStorage"]


class SqlStorage:
    """A storage on a SQL database, through SQLAlchemy Core.

    ``SqlStorage("sqlite:///shop.db", settings)`` or
    ``SqlStorage("postgresql+psycopg://host/db", settings)`` (``postgresql://`` means
    psycopg 3 too). ``open()`` connects and, when ``settings.migrate_on_open``, brings the
    schema to the newest migration; ``close()`` releases every connection.
    """

    name: str
    prefers_batching = True
    """Hot-SKU coalescing pays here: one round trip and one row lock per batch (see docs)."""

    def __init__(self, url: str, settings: Settings | None = None) -> None:
        self._url = parse_url(url)
        self._settings = settings or Settings()
        self.name = backend_of(self._url)
        self._db: Database | None = None

    def __repr__(self) -> str:
        return f"SqlStorage({self._url.render_as_string(hide_password=True)!r})"

    @property
    def url(self) -> str:
        """The database URL, password masked."""
        return self._url.render_as_string(hide_password=True)

    async def open(self) -> None:
        """Create the engine and migrate (or, with migrate_on_open off, just ping)."""
        if self._db is not None:
            return
        self._connect()
        try:
            if self._settings.migrate_on_open:
                await self.migrate()
            else:
                await self.ping()
        except BaseException:
            await self.close()
            raise

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (``alembic upgrade head``).

        Safe when several processes do it at once (an advisory lock on PostgreSQL, the
        write lock on SQLite). Opens the engine if the storage is not open yet; call
        ``close()`` afterwards either way.
        """
        db = self._db or self._connect()
        await db.call(upgrade)

    async def close(self) -> None:
        """Release every pooled connection. The storage can be opened again."""
        db, self._db = self._db, None
        if db is not None:
            with anyio.CancelScope(shield=True):
                await db.in_thread(db.engine.dispose)

    def unit_of_work(self) -> SqlUnitOfWork:
        """A new unit of work (not yet begun)."""
        if self._db is None:
            raise RuntimeError(f"{self!r} is not open: await storage.open() first")
        return SqlUnitOfWork(self._db)

    def screening_store(self) -> ScreeningStore:
        """The exception screening store on this database (the core picks it up itself)."""
        from ordercore_adapters.storage.sql.screening import SqlScreeningStore

        return SqlScreeningStore(self)

    async def ping(self) -> None:
        """Raise StorageUnavailable when the database cannot be reached."""
        await self._require().call(_ping)

    async def server_time(self) -> datetime | None:
        """PostgreSQL's ``now()`` as an aware UTC datetime; None on SQLite (same machine)."""
        if self.name != POSTGRESQL:
            return None
        return await self._require().call(_server_time)

    def _connect(self) -> Database:
        engine = create_sql_engine(self._url, self._settings)
        self._db = Database(engine, self.name, self._settings.sql_pool_size)
        return self._db

    def _require(self) -> Database:
        if self._db is None:
            raise RuntimeError(f"{self!r} is not open: await storage.open() first")
        return self._db


def _ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _server_time(engine: Engine) -> datetime:
    with engine.connect() as conn:
        now: datetime = conn.execute(text("SELECT now()")).scalar_one()
    return now.astimezone(UTC)


if TYPE_CHECKING:  # mypy checks SqlStorage and its unit against the port

    def _conforms(storage: SqlStorage) -> tuple[Storage, UnitOfWork]:
        return storage, storage.unit_of_work()
