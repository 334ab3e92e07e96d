"""The open database of a SqlStorage: engine, connection slots, worker threads, SQLite lock.

Threading model: SQLAlchemy runs synchronously in worker threads
(``anyio.to_thread.run_sync``) so SQL never blocks the event loop. A unit of work holds
one *connection slot* (an ``anyio.Semaphore`` of ``sql_pool_size``) for its whole life,
so any number of concurrent tasks queue fairly (FIFO) for slots instead of exhausting
the pool or parking threads on pool checkouts. The thread limiter has as many tokens as
there are slots: a slot holder runs at most one hop at a time, so it never waits for a
thread. On SQLite an ``anyio.Lock`` also serialises units of work within the process:
SQLite has a single writer, and queueing in-process is far cheaper than busy-waiting
on the file lock (other processes still wait through busy_timeout + BEGIN IMMEDIATE).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from ordercore.errors import StorageError
from ordercore_adapters.storage.sql.errors import translate
from ordercore_adapters.storage.sql.statements import Statements, statements_for

__all__ = ["Database"]

T = TypeVar("T")


class Database:
    """What every unit of work of one open storage shares. Create it inside the event loop."""

    def __init__(self, engine: Engine, backend: str, pool_size: int) -> None:
        self.engine = engine
        self.backend = backend
        self.sql: Statements = statements_for(backend)
        self.slots = anyio.Semaphore(pool_size)
        self.threads = anyio.CapacityLimiter(pool_size)
        self.writer_lock: anyio.Lock | None = anyio.Lock() if backend == "sqlite" else None
        self.secret = engine.url.password if isinstance(engine.url.password, str) else None

    async def acquire(self) -> None:
        """Wait for this task's turn: the SQLite writer lock (if any), then a slot."""
        if self.writer_lock is not None:
            await self.writer_lock.acquire()
        try:
            await self.slots.acquire()
        except BaseException:
            if self.writer_lock is not None:
                self.writer_lock.release()
            raise

    def release(self) -> None:
        """Give back what :meth:`acquire` took."""
        self.slots.release()
        if self.writer_lock is not None:
            self.writer_lock.release()

    async def in_thread(self, work: Callable[[], T]) -> T:
        """Run ``work`` in a worker thread (the caller holds a slot)."""
        return await anyio.to_thread.run_sync(work, limiter=self.threads)

    async def call(self, work: Callable[[Engine], T]) -> T:
        """Run a self-contained ``work(engine)`` outside any unit of work, on one slot.

        Driver errors come out translated (StorageUnavailable / StorageError).
        """
        async with self.slots:
            return await self.in_thread(lambda: self.guard(lambda: work(self.engine)))

    def guard(self, work: Callable[[], T]) -> T:
        """Call ``work`` (in a worker thread) and translate SQLAlchemy errors."""
        try:
            return work()
        except SQLAlchemyError as exc:
            raise self.error(exc) from exc

    def error(self, exc: SQLAlchemyError) -> StorageError:
        """The ordercore error for a SQLAlchemy error, password masked."""
        return translate(exc, self.backend, self.secret)
