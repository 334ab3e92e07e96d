"""SQLite with the stdlib driver (sqlite3), no library: per request, and grouped (the ceiling).

The database is a file in a temporary directory holding ordercore's real tables, with
the pragmas the library uses (WAL, ``synchronous=NORMAL``, foreign keys on) and write
transactions opened with ``BEGIN IMMEDIATE``. One connection: SQLite serialises writers.

- per request: one transaction per buyer, a conditional ``UPDATE`` and two ``INSERT``s;
- grouped: per batch, read what is sellable, one conditional ``UPDATE`` for the total
  that fits, ``executemany`` of the headers and of the lines, one commit.
"""

from __future__ import annotations

import sqlite3
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _scenarios.common import SKU, WAREHOUSE, Measured, Params, Scenario, Tally, clock

__all__ = ["SCENARIOS"]

TTL = timedelta(minutes=30)

_FREE = "SELECT on_hand - reserved - safety FROM stock_levels WHERE sku = ? AND warehouse = ?"
_TAKE = (
    "UPDATE stock_levels SET reserved = reserved + ? "
    "WHERE sku = ? AND warehouse = ? AND on_hand - reserved - safety >= ?"
)
_INSERT_HEADER = (
    "INSERT INTO reservations (id, order_id, buyer_id, status, created_at, updated_at, "
    "expires_at, paid) VALUES (?, ?, ?, 'active', ?, ?, ?, 0)"
)
_INSERT_LINE = (
    "INSERT INTO reservation_lines (reservation_id, sku, warehouse, quantity) VALUES (?, ?, ?, 1)"
)


def _timestamp(moment: datetime) -> str:
    """How the library's UtcDateTime stores a time on SQLite."""
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _create_tables(path: Path, stock: int) -> None:
    from sqlalchemy import create_engine

    from ordercore_adapters.storage.sql.schema import metadata

    engine = create_engine(f"sqlite:///{path}")
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()
    conn = _connect(path)
    try:
        conn.execute(
            "INSERT INTO stock_levels (sku, warehouse, on_hand, reserved, safety, updated_at) "
            "VALUES (?, ?, ?, 0, 0, ?)",
            (SKU, WAREHOUSE, stock, _timestamp(datetime.now(UTC))),
        )
    finally:
        conn.close()


def _read_back(conn: sqlite3.Connection, tally: Tally) -> Measured:
    on_hand, reserved = conn.execute(
        "SELECT on_hand, reserved FROM stock_levels WHERE sku = ? AND warehouse = ?",
        (SKU, WAREHOUSE),
    ).fetchone()
    (headers,) = conn.execute("SELECT count(*) FROM reservations").fetchone()
    (lines,) = conn.execute("SELECT count(*) FROM reservation_lines").fetchone()
    drift = [] if headers == lines else [f"{headers} headers, {lines} lines"]
    return Measured(tally, reserved=reserved, on_hand=on_hand, records=headers, drift=drift)


def _sale(params: Params, batch: int) -> Measured:
    with tempfile.TemporaryDirectory(prefix="ordercore-cmp-") as directory:
        path = Path(directory) / "flash.db"
        _create_tables(path, params.stock)
        conn = _connect(path)
        try:
            tally = _per_request(conn, params) if batch == 1 else _grouped(conn, params, batch)
            return _read_back(conn, tally)
        finally:
            conn.close()


def _per_request(conn: sqlite3.Connection, params: Params) -> Tally:
    tally = Tally(latencies=[])
    latencies = tally.latencies
    assert latencies is not None
    execute = conn.execute
    opened = clock()
    for i in range(params.buyers):
        begun = clock()
        try:
            execute("BEGIN IMMEDIATE")
            if execute(_TAKE, (1, SKU, WAREHOUSE, 1)).rowcount == 1:
                now = datetime.now(UTC)
                rid = uuid.uuid4().hex
                stamp = _timestamp(now)
                execute(
                    _INSERT_HEADER, (rid, f"o{i}", f"b{i}", stamp, stamp, _timestamp(now + TTL))
                )
                execute(_INSERT_LINE, (rid, SKU, WAREHOUSE))
                execute("COMMIT")
                tally.successes += 1
            else:
                execute("ROLLBACK")
                tally.rejected += 1
        except sqlite3.Error as exc:
            if conn.in_transaction:
                execute("ROLLBACK")
            tally.error(exc)
        latencies.append(clock() - begun)
    tally.wall = clock() - opened
    return tally


def _grouped(conn: sqlite3.Connection, params: Params, batch: int) -> Tally:
    tally = Tally()
    execute = conn.execute
    opened = clock()
    for first in range(0, params.buyers, batch):
        count = min(batch, params.buyers - first)
        try:
            execute("BEGIN IMMEDIATE")
            (free,) = execute(_FREE, (SKU, WAREHOUSE)).fetchone()
            granted = max(0, min(count, free))
            if granted:
                if execute(_TAKE, (granted, SKU, WAREHOUSE, granted)).rowcount != 1:
                    raise RuntimeError("the row changed inside its write transaction")
                now = datetime.now(UTC)
                stamp, expires = _timestamp(now), _timestamp(now + TTL)
                ids = [uuid.uuid4().hex for _ in range(granted)]
                conn.executemany(
                    _INSERT_HEADER,
                    [
                        (rid, f"o{i}", f"b{i}", stamp, stamp, expires)
                        for rid, i in zip(ids, range(first, first + granted), strict=True)
                    ],
                )
                conn.executemany(_INSERT_LINE, [(rid, SKU, WAREHOUSE) for rid in ids])
            execute("COMMIT")
        except (sqlite3.Error, RuntimeError) as exc:
            if conn.in_transaction:
                execute("ROLLBACK")
            tally.error(exc)
            continue
        tally.successes += granted
        tally.rejected += count - granted
    tally.wall = clock() - opened
    return tally


SCENARIOS = [
    Scenario(
        "sqlite-raw-1",
        "SQLite raw sqlite3, one transaction per request",
        "sqlite",
        lambda params: _sale(params, 1),
    ),
    Scenario(
        "sqlite-grouped-100",
        "SQLite raw sqlite3, grouped, 100 per transaction",
        "sqlite",
        lambda params: _sale(params, 100),
    ),
    Scenario(
        "sqlite-grouped-500",
        "SQLite raw sqlite3, grouped, 500 per transaction (ceiling)",
        "sqlite",
        lambda params: _sale(params, 500),
    ),
]
