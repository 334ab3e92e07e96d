"""A real PostgreSQL for tests: find it (or skip, saying why) and make fresh databases.

The server is ``ORDERCORE_TEST_POSTGRES_URL`` (default
``postgresql+psycopg://127.0.0.1:5432/test``); without a user in the URL the OS user is
tried, then ``postgres``. With ``ORDERCORE_REQUIRE_POSTGRES=1`` (CI sets it) an unreachable
server fails the test instead of skipping it. Each test gets its own database, created
from ``template0`` and dropped afterwards (~30 ms each), so tests never see each other's rows::

    from support.postgres import fresh_postgres_database

    with fresh_postgres_database() as url:
        storage = SqlStorage(url, settings)
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

import ordercore_adapters.storage.sql as sql_package

__all__ = ["DEFAULT_URL", "fresh_postgres_database", "postgres_url_or_skip"]

DEFAULT_URL = "postgresql+psycopg://127.0.0.1:5432/test"


def postgres_url_or_skip() -> str:
    """The URL of a reachable PostgreSQL database, or skip the test with the reason."""
    url, reason = _probe()
    if url is None:
        if os.environ.get("ORDERCORE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"ORDERCORE_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    return url


@contextmanager
def fresh_postgres_database(
    prefix: str = "ordercore_test", *, migrated: bool = False
) -> Iterator[str]:
    """Create a database, yield its SQLAlchemy URL, then drop it (skips if no server).

    Empty by default; ``migrated=True`` copies a template already at the newest
    migration (made once per schema version), which saves running every migration
    again in each test.
    """
    admin = make_url(postgres_url_or_skip())
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    template = _migrated_template(admin) if migrated else "template0"
    with _admin_connection(admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with _admin_connection(admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@cache
def _migrated_template(admin: URL) -> str:
    """The name of a database at the newest migration, made the first time it is asked for.

    Named after a digest of the migration files, so a schema change makes a new one. It
    is built under a temporary name and renamed when complete: processes racing to build
    it never copy a half-migrated database (the loser drops its copy).
    """
    from sqlalchemy import create_engine

    from ordercore_adapters.storage.sql.migrate import upgrade

    versions = Path(sql_package.__file__).parent / "migrations" / "versions"
    digest = hashlib.sha256()
    for path in sorted(versions.glob("*.py")):
        digest.update(path.read_bytes())
    name = f"ordercore_template_{digest.hexdigest()[:16]}"
    with _admin_connection(admin) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if found:
        return name
    building = f"{name}_building_{uuid.uuid4().hex[:8]}"
    with _admin_connection(admin) as conn:
        conn.execute(f'CREATE DATABASE "{building}" TEMPLATE template0')
    engine = create_engine(admin.set(database=building), poolclass=NullPool)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    with _admin_connection(admin) as conn:
        try:
            conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
        except psycopg.errors.DuplicateDatabase:
            conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
    return name


@cache
def _probe() -> tuple[str | None, str]:
    configured = make_url(os.environ.get("ORDERCORE_TEST_POSTGRES_URL", DEFAULT_URL))
    candidates = [configured]
    if not configured.username:
        candidates.append(configured.set(username="postgres"))
    errors = []
    for candidate in candidates:
        try:
            with _admin_connection(candidate):
                pass
        except psycopg.Error as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc)
            errors.append(f"{candidate.render_as_string(hide_password=True)}: {first_line}")
            continue
        return candidate.render_as_string(hide_password=False), ""
    return None, "no PostgreSQL reachable (set ORDERCORE_TEST_POSTGRES_URL): " + "; ".join(errors)


def _admin_connection(url: URL) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        dbname=url.database or "postgres",
        user=url.username,
        password=url.password,
        connect_timeout=3,
        autocommit=True,
    )
