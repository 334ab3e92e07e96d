"""The SQL unit of work: one transaction, begun lazily, one thread hop per operation.

``__aenter__`` only waits for a connection slot (and, on SQLite, the in-process writer
lock); it does not touch the database. The first operation checks out a connection and
begins the transaction inside its own thread hop; ``commit()`` is one hop. Leaving the
block without commit rolls back (one hop, shielded from cancellation).

A primitive that raises must not leave half its changes behind, even if the caller
goes on and commits (the contract suite checks this). When the failing operation
began the transaction, nothing else is in it: the whole transaction is rolled back in
the same hop at no extra cost, and the next operation begins a new one. Otherwise an
``atomic`` operation runs inside a SAVEPOINT, paid only by units that did work before.
A driver error in a non-atomic operation poisons the unit: it is rolled back at once
and ``commit()`` refuses (PostgreSQL would otherwise turn COMMIT into a silent
ROLLBACK).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self, TypeVar

import anyio
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from ordercore.errors import StorageError
from ordercore.ports.storage import (
    AfterSaleRepository,
    IntakeRepository,
    InventoryRepository,
    OrderRepository,
    OutboxRepository,
    RoutingRepository,
    ShipmentRepository,
    StockPushRepository,
    TicketRepository,
    WaybillRepository,
)
from ordercore_adapters.storage.sql.after_sales import SqlAfterSaleRepository
from ordercore_adapters.storage.sql.database import Database
from ordercore_adapters.storage.sql.intake import SqlIntakeRepository
from ordercore_adapters.storage.sql.inventory import SqlInventoryRepository
from ordercore_adapters.storage.sql.orders import SqlOrderRepository
from ordercore_adapters.storage.sql.outbox import SqlOutboxRepository
from ordercore_adapters.storage.sql.routing import SqlRoutingRepository
from ordercore_adapters.storage.sql.shipments import SqlShipmentRepository
from ordercore_adapters.storage.sql.stock_push import SqlStockPushRepository
from ordercore_adapters.storage.sql.tickets import SqlTicketRepository
from ordercore_adapters.storage.sql.waybills import SqlWaybillRepository

__all__ = ["SqlUnitOfWork"]

T = TypeVar("T")

_NEW, _OPEN, _CLOSED = "new", "open", "closed"


class SqlUnitOfWork:
    """One transaction over inventory, orders and intake; rolled back unless committed."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: Connection | None = None
        self._state = _NEW
        self._busy = False
        self._poisoned: StorageError | None = None
        self.inventory: InventoryRepository = SqlInventoryRepository(self, db.sql)
        self.orders: OrderRepository = SqlOrderRepository(self, db.sql)
        self.intake: IntakeRepository = SqlIntakeRepository(self, db.sql)
        self.outbox: OutboxRepository = SqlOutboxRepository(self, db.backend)
        self.tickets: TicketRepository = SqlTicketRepository(self)
        self.waybills: WaybillRepository = SqlWaybillRepository(self, db.backend)
        self.shipments: ShipmentRepository = SqlShipmentRepository(self, db.backend)
        self.stock_push: StockPushRepository = SqlStockPushRepository(self, db.backend)
        self.routing: RoutingRepository = SqlRoutingRepository(self, db.backend)
        self.after_sales: AfterSaleRepository = SqlAfterSaleRepository(self, db.backend)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._db.backend

    async def __aenter__(self) -> Self:
        if self._state != _NEW:
            raise RuntimeError("a unit of work can be entered only once; make a new one")
        await self._db.acquire()
        self._state = _OPEN
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._conn is not None:
                with anyio.CancelScope(shield=True):
                    await self._db.in_thread(self._discard)
        finally:
            self._state = _CLOSED
            self._db.release()

    async def commit(self) -> None:
        """Make the unit's changes durable and visible (no-op when it did nothing)."""
        self._check_open()
        if self._poisoned is not None:
            error, self._poisoned = self._poisoned, None
            raise StorageError(
                f"nothing was committed: the unit of work failed and was rolled back ({error})"
            )
        if self._conn is not None:
            await self._exclusive(self._commit)

    async def rollback(self) -> None:
        """Discard the unit's changes; the unit can be used again afterwards."""
        self._check_open()
        self._poisoned = None
        if self._conn is not None:
            await self._exclusive(self._discard)

    async def run(self, work: Callable[[Connection], T], *, atomic: bool = False) -> T:
        """Run ``work(connection)`` in this unit's transaction, in one worker-thread hop.

        ``atomic``: if ``work`` raises, none of its changes survive (see module docs).
        """
        self._check_open()
        return await self._exclusive(lambda: self._run(work, atomic))

    # -- in the worker thread ---------------------------------------------------------------

    def _run(self, work: Callable[[Connection], T], atomic: bool) -> T:
        try:
            conn = self._conn
            if conn is None:
                conn = self._conn = self._db.engine.connect()
            if not conn.in_transaction():
                conn.begin()
                try:
                    return work(conn)
                except BaseException:
                    self._discard()
                    raise
            if atomic:
                with conn.begin_nested():
                    return work(conn)
            try:
                return work(conn)
            except SQLAlchemyError as exc:
                self._discard()
                self._poisoned = self._db.error(exc)
                raise
        except SQLAlchemyError as exc:
            raise self._db.error(exc) from exc

    def _commit(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.commit()
        except SQLAlchemyError as exc:
            raise self._db.error(exc) from exc
        finally:
            conn.close()

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.rollback()
        except SQLAlchemyError:
            # The connection is broken; nothing was committed. Drop it from the pool.
            conn.invalidate()
        finally:
            conn.close()

    # -- helpers ---------------------------------------------------------------------------

    async def _exclusive(self, work: Callable[[], T]) -> T:
        if self._busy:
            raise RuntimeError("a unit of work runs one operation at a time; await each call")
        self._busy = True
        try:
            return await self._db.in_thread(work)
        finally:
            self._busy = False

    def _check_open(self) -> None:
        if self._state != _OPEN:
            raise RuntimeError(
                "this unit of work is not open: use it inside 'async with storage.unit_of_work()'"
            )
