"""Engine creation: SQLite pragmas and BEGIN IMMEDIATE, the PostgreSQL pool.

Both engines are synchronous; the adapter runs every call in a worker thread.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError

from ordercore.config import Settings
from ordercore.errors import FieldError, InvalidInput

__all__ = ["backend_of", "create_sql_engine", "parse_url"]

SQLITE = "sqlite"
POSTGRESQL = "postgresql"


def parse_url(url: str) -> URL:
    """Parse and normalise a storage URL: ``postgresql://`` means psycopg 3.

    Raises InvalidInput (without echoing a password) for anything but a SQLite file or a
    PostgreSQL database reached through psycopg.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidInput(
            "storage URL", [FieldError("url", "is not a database URL", _mask(url))]
        ) from None
    backend = parsed.get_backend_name()
    if backend == POSTGRESQL:
        driver = parsed.get_driver_name()
        if parsed.drivername in ("postgresql", "postgres"):
            return parsed.set(drivername="postgresql+psycopg")
        if driver != "psycopg":
            raise InvalidInput(
                "storage URL",
                [FieldError("url", "PostgreSQL is supported through psycopg 3 only", driver)],
            )
        return parsed
    if backend == SQLITE:
        database = parsed.database or ""
        if not database or database == ":memory:" or database.startswith("file::memory:"):
            raise InvalidInput(
                "storage URL",
                [
                    FieldError(
                        "url",
                        "SQLite needs a database file (sqlite:///path/to.db); "
                        "use memory:// for an in-process store",
                        database,
                    )
                ],
            )
        return parsed
    raise InvalidInput(
        "storage URL", [FieldError("url", "scheme must be sqlite or postgresql", backend)]
    )


def backend_of(url: URL) -> str:
    """``"sqlite"`` or ``"postgresql"``."""
    return url.get_backend_name()


def create_sql_engine(url: URL, settings: Settings) -> Engine:
    """A pooled synchronous engine for a URL made by :func:`parse_url` (connects lazily)."""
    if backend_of(url) == SQLITE:
        return _sqlite_engine(url, settings)
    return _postgresql_engine(url, settings)


def _postgresql_engine(url: URL, settings: Settings) -> Engine:
    # Every checkout is gated by the unit of work's connection slot, so the pool never
    # has to grow past sql_pool_size and a checkout never waits.
    return create_engine(
        url,
        pool_size=settings.sql_pool_size,
        max_overflow=0,
        pool_timeout=30,
        pool_recycle=3600,
        hide_parameters=True,
    )


def _sqlite_engine(url: URL, settings: Settings) -> Engine:
    busy_ms = int(settings.sqlite_busy_timeout.total_seconds() * 1000)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_ms / 1000},
        pool_size=settings.sql_pool_size,
        max_overflow=0,
        hide_parameters=True,
    )

    # The documented SQLAlchemy recipe for SQLite transactions: turn off the driver's own
    # BEGIN handling (autocommit at the driver level) and emit our BEGIN from the
    # "begin" event. BEGIN IMMEDIATE takes the write lock up front, so a transaction
    # waits (busy_timeout) instead of failing with SQLITE_BUSY when it later writes.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _mask(url: str) -> str:
    scheme, separator, rest = url.partition("://")
    if not separator or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.partition(":")[0]
    return f"{scheme}://{user}:***@{host}"
