"""Handlers for outbox tests that run ``ordercore worker`` in OS processes.

``registry`` handles ``test.record``: it records one row per run *to completion* in
``outbox_test_runs`` (task id, seq, ordering key, the worker's pid) in the database that
``OUTBOX_TEST_DSN`` names (a psycopg DSN), through one connection per process. A task
whose payload has ``"stall": true`` first records itself in ``outbox_test_stalls`` and
then hangs on its first attempt (the test kills that worker there); later attempts run
normally.
"""

from __future__ import annotations

import os

import anyio
import psycopg

from ordercore.domain.outbox import OutboxTask
from ordercore.services.outbox import HandlerRegistry

__all__ = ["TABLES", "registry"]

TABLES = """
CREATE TABLE outbox_test_runs (
    n bigserial PRIMARY KEY,
    task_id text NOT NULL,
    seq bigint NOT NULL,
    ordering_key text,
    pid integer NOT NULL,
    attempt integer NOT NULL
);
CREATE TABLE outbox_test_stalls (task_id text NOT NULL, pid integer NOT NULL);
"""

registry = HandlerRegistry()
_connection: psycopg.AsyncConnection[tuple[object, ...]] | None = None
_lock = anyio.Lock()


async def _conn() -> psycopg.AsyncConnection[tuple[object, ...]]:
    global _connection
    async with _lock:
        if _connection is None:
            _connection = await psycopg.AsyncConnection.connect(
                os.environ["OUTBOX_TEST_DSN"], autocommit=True
            )
            # The record is the test's bookkeeping; the server never crashes in the test,
            # so it need not wait for the disk (the outbox's own commits still do).
            await _connection.execute("SET synchronous_commit TO off")
        return _connection


@registry.handler("test.record")
async def record(task: OutboxTask) -> None:
    """Record the run; stall forever on the first attempt of a task marked ``stall``."""
    conn = await _conn()
    if task.payload.get("stall") and task.attempts == 1:
        await conn.execute(
            "INSERT INTO outbox_test_stalls (task_id, pid) VALUES (%s, %s)",
            (task.id, os.getpid()),
        )
        await anyio.sleep_forever()
    await conn.execute(
        "INSERT INTO outbox_test_runs (task_id, seq, ordering_key, pid, attempt)"
        " VALUES (%s, %s, %s, %s, %s)",
        (task.id, task.seq, task.ordering_key, os.getpid(), task.attempts),
    )
