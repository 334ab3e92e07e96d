"""Programmatic ``alembic upgrade head`` on one connection, safe against concurrent openers.

The migration scripts ship inside the package (``migrations/``) and are found through
the package resource, so an installed wheel migrates without an alembic.ini.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

__all__ = ["MIGRATIONS", "alembic_config", "upgrade"]

MIGRATIONS = "ordercore_adapters.storage.sql:migrations"
"""alembic script_location, as a package resource."""

_LOCK_KEY = 0x6F726465  # "orde": one advisory lock id for ordercore's schema migrations


def alembic_config(connection: Connection) -> Config:
    """An alembic Config that runs our migrations on ``connection``."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> None:
    """Upgrade the database to the newest revision, in one transaction.

    PostgreSQL: a transaction-scoped advisory lock makes concurrent openers take turns;
    the second finds the schema current and does nothing. SQLite: the transaction
    begins with BEGIN IMMEDIATE (the engine's begin hook), which has the same effect.
    """
    with engine.connect() as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        command.upgrade(alembic_config(conn), "head")
