"""PostgreSQL with the raw driver (psycopg 3), no library: the usual answers and the ceiling.

Each scenario runs in its own throwaway database (``CREATE DATABASE ... TEMPLATE
template0``, dropped ``WITH (FORCE)`` afterwards) holding ordercore's real tables, so a
raw reservation writes the same rows the library writes: a ``reservations`` header and
a ``reservation_lines`` line, under the same keys, checks and foreign key.

- naive: per request, ``SELECT ... FOR UPDATE``, check in Python, ``UPDATE``, ``INSERT``s;
- conditional: per request, one ``UPDATE ... WHERE on_hand - reserved - safety >= 1``
  and the ``INSERT``s;
- grouped (the ceiling of the coalescer's design): per batch, lock the row and read what
  is sellable, one conditional ``UPDATE`` for the total that fits, one multi-row
  ``INSERT`` per table (``unnest`` of arrays: one statement, one round trip), commit.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from _scenarios.common import (
    SKU,
    WAREHOUSE,
    Measured,
    Params,
    Scenario,
    Skipped,
    Tally,
    clock,
)

__all__ = ["SCENARIOS", "PgDatabase", "fresh_database", "server_version"]

TTL = timedelta(minutes=30)

_LOCK_LEVEL = (
    "SELECT on_hand - reserved - safety FROM stock_levels "
    "WHERE sku = %s AND warehouse = %s FOR UPDATE"
)
_ADD_ONE = "UPDATE stock_levels SET reserved = reserved + 1 WHERE sku = %s AND warehouse = %s"
_TAKE = (
    "UPDATE stock_levels SET reserved = reserved + %s "
    "WHERE sku = %s AND warehouse = %s AND on_hand - reserved - safety >= %s"
)
_INSERT_HEADER = (
    "INSERT INTO reservations (id, order_id, buyer_id, status, created_at, updated_at, "
    "expires_at, paid) VALUES (%s, %s, %s, 'active', %s, %s, %s, false)"
)
_INSERT_LINE = (
    "INSERT INTO reservation_lines (reservation_id, sku, warehouse, quantity) "
    "VALUES (%s, %s, %s, 1)"
)
_INSERT_HEADERS = (
    "INSERT INTO reservations (id, order_id, buyer_id, status, created_at, updated_at, "
    "expires_at, paid) SELECT t.id, t.order_id, t.buyer_id, 'active', %s, %s, %s, false "
    "FROM unnest(%s::text[], %s::text[], %s::text[]) AS t(id, order_id, buyer_id)"
)
_INSERT_LINES = (
    "INSERT INTO reservation_lines (reservation_id, sku, warehouse, quantity) "
    "SELECT t.id, %s, %s, 1 FROM unnest(%s::text[]) AS t(id)"
)


@dataclass(frozen=True, slots=True)
class PgDatabase:
    """A throwaway database: how psycopg connects to it, and its SQLAlchemy URL."""

    name: str
    connect_args: dict[str, Any]
    url: str

    def connect(self, *, autocommit: bool = False) -> Any:
        """A new psycopg connection to this database (the caller closes it)."""
        import psycopg

        return psycopg.connect(**self.connect_args, autocommit=autocommit)


def _connect_args(url: Any, database: str | None = None) -> dict[str, Any]:
    return {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "dbname": database or url.database or "postgres",
        "user": url.username,
        "password": url.password,
        "connect_timeout": 3,
    }


@cache
def _admin_url(server_url: str) -> tuple[str | None, str]:
    """The first URL that connects (as given, then as user ``postgres``), or why none did."""
    try:
        import psycopg
    except ImportError:
        return None, "psycopg is not installed: pip install 'ordercore[postgres]'"
    from sqlalchemy.engine import make_url

    configured = make_url(server_url)
    candidates = [configured]
    if not configured.username:
        candidates.append(configured.set(username="postgres"))
    errors = []
    for candidate in candidates:
        try:
            with psycopg.connect(**_connect_args(candidate), autocommit=True):
                pass
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            errors.append(f"{candidate.render_as_string(hide_password=True)}: {first}")
            continue
        return candidate.render_as_string(hide_password=False), ""
    return None, "PostgreSQL unreachable: " + "; ".join(errors)


def server_version(server_url: str) -> str | None:
    """The server's version string, or None when it is unreachable."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin, _ = _admin_url(server_url)
    if admin is None:
        return None
    with psycopg.connect(**_connect_args(make_url(admin)), autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return None if row is None else str(row[0])


@contextmanager
def fresh_database(server_url: str, prefix: str = "ordercore_cmp") -> Iterator[PgDatabase]:
    """Create an empty database on the server, yield it, then drop it (Skipped if no server)."""
    admin_text, reason = _admin_url(server_url)
    if admin_text is None:
        raise Skipped(reason)
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(admin_text)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**_connect_args(admin), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield PgDatabase(
            name,
            _connect_args(admin, name),
            admin.set(database=name).render_as_string(hide_password=False),
        )
    finally:
        with psycopg.connect(**_connect_args(admin), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _create_tables(db: PgDatabase, stock: int) -> None:
    """ordercore's real tables, and one stock level of ``stock`` units."""
    from sqlalchemy import create_engine

    from ordercore_adapters.storage.sql.schema import metadata

    engine = create_engine(db.url)
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()
    with db.connect() as conn:
        conn.execute(
            "INSERT INTO stock_levels (sku, warehouse, on_hand, reserved, safety, updated_at) "
            "VALUES (%s, %s, %s, 0, 0, %s)",
            (SKU, WAREHOUSE, stock, datetime.now(UTC)),
        )
        conn.commit()


def _read_back(db: PgDatabase, tally: Tally) -> Measured:
    with db.connect() as conn:
        level = conn.execute(
            "SELECT on_hand, reserved FROM stock_levels WHERE sku = %s AND warehouse = %s",
            (SKU, WAREHOUSE),
        ).fetchone()
        headers = conn.execute("SELECT count(*) FROM reservations").fetchone()
        lines = conn.execute("SELECT count(*) FROM reservation_lines").fetchone()
    assert level is not None
    assert headers is not None
    assert lines is not None
    drift = [] if headers[0] == lines[0] else [f"{headers[0]} headers, {lines[0]} lines"]
    return Measured(tally, reserved=level[1], on_hand=level[0], records=headers[0], drift=drift)


# -- per request, many clients --------------------------------------------------------------

Attempt = Callable[[Any, int], bool]
"""One request's transaction on a connection: True when granted (committed)."""


def _insert_one(cursor: Any, i: int) -> None:
    now = datetime.now(UTC)
    rid = uuid.uuid4().hex
    cursor.execute(_INSERT_HEADER, (rid, f"o{i}", f"b{i}", now, now, now + TTL))
    cursor.execute(_INSERT_LINE, (rid, SKU, WAREHOUSE))


def _naive(conn: Any, i: int) -> bool:
    with conn.cursor() as cursor:
        cursor.execute(_LOCK_LEVEL, (SKU, WAREHOUSE))
        row = cursor.fetchone()
        if row is None or row[0] < 1:
            conn.rollback()
            return False
        cursor.execute(_ADD_ONE, (SKU, WAREHOUSE))
        _insert_one(cursor, i)
    conn.commit()
    return True


def _conditional(conn: Any, i: int) -> bool:
    with conn.cursor() as cursor:
        cursor.execute(_TAKE, (1, SKU, WAREHOUSE, 1))
        if cursor.rowcount != 1:
            conn.rollback()
            return False
        _insert_one(cursor, i)
    conn.commit()
    return True


def _per_request(params: Params, attempt: Attempt) -> Measured:
    """``params.clients`` threads, one connection each, share the buyers; one txn per buyer."""
    with fresh_database(params.postgres_url) as db:
        _create_tables(db, params.stock)
        connections = [db.connect() for _ in range(params.clients)]
        try:
            tally = _run_clients(connections, params.buyers, attempt)
        finally:
            for conn in connections:
                conn.close()
        return _read_back(db, tally)


def _run_clients(connections: list[Any], buyers: int, attempt: Attempt) -> Tally:
    indexes = iter(range(buyers))  # next() on a range iterator is atomic under the GIL
    start = threading.Barrier(len(connections) + 1)
    tallies = [Tally(latencies=[]) for _ in connections]

    def client(conn: Any, tally: Tally) -> None:
        latencies = tally.latencies
        assert latencies is not None
        start.wait()
        for i in indexes:
            begun = clock()
            try:
                if attempt(conn, i):
                    tally.successes += 1
                else:
                    tally.rejected += 1
            except Exception as exc:  # a failed buyer is a finding, not a crash of the run
                tally.error(exc)
                conn.rollback()
            latencies.append(clock() - begun)

    threads = [
        threading.Thread(target=client, args=(conn, tally), daemon=True)
        for conn, tally in zip(connections, tallies, strict=True)
    ]
    for thread in threads:
        thread.start()
    start.wait()
    opened = clock()
    for thread in threads:
        thread.join()
    total = Tally(latencies=[], wall=clock() - opened)
    for tally in tallies:
        total.merge(tally)
    return total


# -- grouped, one writer --------------------------------------------------------------------


def _grouped(params: Params, batch: int) -> Measured:
    """One connection takes the buyers ``batch`` at a time: lock, read, UPDATE, INSERT."""
    with fresh_database(params.postgres_url) as db:
        _create_tables(db, params.stock)
        with db.connect() as conn:
            cursor = conn.cursor()
            tally = Tally()
            opened = clock()
            for first in range(0, params.buyers, batch):
                count = min(batch, params.buyers - first)
                try:
                    granted = _grant_batch(cursor, first, count)
                except Exception as exc:
                    conn.rollback()
                    tally.error(exc)
                    continue
                conn.commit()
                tally.successes += granted
                tally.rejected += count - granted
            tally.wall = clock() - opened
            cursor.close()
        return _read_back(db, tally)


def _grant_batch(cursor: Any, first: int, count: int) -> int:
    """Grant the first buyers of the batch, in arrival order, while stock lasts."""
    cursor.execute(_LOCK_LEVEL, (SKU, WAREHOUSE))
    row = cursor.fetchone()
    granted = 0 if row is None else max(0, min(count, row[0]))
    if granted == 0:
        return 0
    cursor.execute(_TAKE, (granted, SKU, WAREHOUSE, granted))
    if cursor.rowcount != 1:
        raise RuntimeError("the locked row changed under its lock")
    now = datetime.now(UTC)
    ids = [uuid.uuid4().hex for _ in range(granted)]
    buyers = range(first, first + granted)
    cursor.execute(
        _INSERT_HEADERS,
        (now, now, now + TTL, ids, [f"o{i}" for i in buyers], [f"b{i}" for i in buyers]),
    )
    cursor.execute(_INSERT_LINES, (SKU, WAREHOUSE, ids))
    return granted


SCENARIOS = [
    Scenario(
        "pg-naive",
        "PostgreSQL naive: SELECT FOR UPDATE, UPDATE, INSERT per request, 32 clients",
        "postgresql",
        lambda params: _per_request(params, _naive),
    ),
    Scenario(
        "pg-conditional",
        "PostgreSQL conditional UPDATE + INSERT per request, 32 clients",
        "postgresql",
        lambda params: _per_request(params, _conditional),
    ),
    Scenario(
        "pg-grouped-32",
        "PostgreSQL grouped, batches of 32 (raw psycopg)",
        "postgresql",
        lambda params: _grouped(params, 32),
    ),
    Scenario(
        "pg-grouped-500",
        "PostgreSQL grouped, batches of 500 (raw psycopg ceiling)",
        "postgresql",
        lambda params: _grouped(params, 500),
    ),
]
