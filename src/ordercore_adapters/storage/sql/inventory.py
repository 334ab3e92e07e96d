"""The inventory repository: each method is one worker-thread hop running all its statements."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from ordercore.domain.inventory import (
    BatchResult,
    Drift,
    FlashSale,
    Reservation,
    ReservationStatus,
    StockLevel,
)
from ordercore_adapters.storage.sql import batch, flash, reservations, stock
from ordercore_adapters.storage.sql.statements import Statements
from ordercore_adapters.storage.sql.verify import verify

if TYPE_CHECKING:
    from ordercore_adapters.storage.sql.unit_of_work import SqlUnitOfWork

__all__ = ["SqlInventoryRepository"]


class SqlInventoryRepository:
    """Stock levels, reservations and flash sales in SQL (see the storage port's docs).

    Primitives that can fail half-way (``reserve``, ``reactivate``, ``receive``) run
    ``atomic``: when they raise, their changes are undone and the unit stays usable.
    """

    def __init__(self, uow: SqlUnitOfWork, sql: Statements) -> None:
        self._uow = uow
        self._sql = sql

    async def receive(
        self, sku: str, warehouse: str, delta: int, now: datetime, *, reason: str, reference: str
    ) -> StockLevel:
        """Add ``delta`` to on_hand (creating the level when new) and record a movement."""
        return await self._uow.run(
            lambda conn: stock.receive(
                conn, self._sql, sku, warehouse, delta, now, reason, reference
            ),
            atomic=True,
        )

    async def count(
        self, sku: str, warehouse: str, on_hand: int, now: datetime, *, reference: str
    ) -> StockLevel:
        """Set on_hand to a counted figure, recording the difference as a movement."""
        return await self._uow.run(
            lambda conn: stock.count(conn, self._sql, sku, warehouse, on_hand, now, reference),
            atomic=True,
        )

    async def set_safety(
        self, sku: str, warehouse: str, *, units: int | None, basis_points: int | None
    ) -> StockLevel:
        """Set safety stock in units or basis points of on_hand; UnknownSku without a level."""
        return await self._uow.run(
            lambda conn: stock.set_safety(conn, self._sql, sku, warehouse, units, basis_points)
        )

    async def stock_levels(
        self, sku: str | None = None, warehouse: str | None = None
    ) -> list[StockLevel]:
        """Stock levels, filtered by SKU and/or warehouse, sorted by (sku, warehouse)."""
        return await self._uow.run(lambda conn: stock.levels(conn, sku, warehouse))

    async def reserve(self, draft: Reservation) -> tuple[Reservation, bool]:
        """Hold every line of ``draft`` or nothing; return (reservation, created)."""
        return await self._uow.run(
            lambda conn: reservations.reserve(conn, self._sql, draft), atomic=True
        )

    async def reserve_batch(self, drafts: Sequence[Reservation]) -> BatchResult:
        """Grant one-line drafts of one (sku, warehouse) in order under one lock of the level."""
        return await self._uow.run(
            lambda conn: batch.reserve_batch(conn, self._sql, drafts), atomic=True
        )

    async def reservation(self, order_id: str) -> Reservation | None:
        """The reservation of an order, whatever its status."""
        return await self._uow.run(lambda conn: reservations.load(conn, self._sql, order_id))

    async def reservations(self, order_ids: Sequence[str]) -> dict[str, Reservation]:
        """The reservations of several orders (those that have one)."""
        return await self._uow.run(lambda conn: reservations.load_held(conn, self._sql, order_ids))

    async def transition(
        self, order_id: str, target: ReservationStatus, now: datetime
    ) -> tuple[Reservation, bool] | None:
        """Move an active reservation to ``target``; counters change only if this call did it."""
        return await self._uow.run(
            lambda conn: reservations.transition(conn, self._sql, order_id, target, now)
        )

    async def begin_payment(self, order_id: str, deadline: datetime, now: datetime) -> bool:
        """Hold off expiry of an active reservation until ``deadline``."""
        return await self._uow.run(
            lambda conn: reservations.begin_payment(conn, self._sql, order_id, deadline, now)
        )

    async def mark_paid(self, order_id: str, now: datetime) -> bool:
        """Set paid and stop an active reservation from expiring. False when not active."""
        return await self._uow.run(
            lambda conn: reservations.mark_paid(conn, self._sql, order_id, now)
        )

    async def reactivate(
        self, order_id: str, now: datetime, expires_at: datetime | None, *, paid: bool
    ) -> Reservation | None:
        """Take stock again for an expired reservation, all or nothing; None if not expired."""
        return await self._uow.run(
            lambda conn: reservations.reactivate(conn, self._sql, order_id, now, expires_at, paid),
            atomic=True,
        )

    async def expire_due(self, now: datetime, limit: int) -> list[Reservation]:
        """Expire up to ``limit`` due reservations (SKIP LOCKED claims on PostgreSQL)."""
        return await self._uow.run(
            lambda conn: reservations.expire_due(conn, self._sql, now, limit)
        )

    async def set_flash_sale(
        self, sku: str, *, cap: int | None, per_buyer_limit: int | None
    ) -> FlashSale:
        """Start (or change the limits of) the flash sale of a SKU."""
        return await self._uow.run(
            lambda conn: flash.set_sale(conn, self._sql, sku, cap, per_buyer_limit)
        )

    async def end_flash_sale(self, sku: str) -> None:
        """End the flash sale of a SKU; its counters are dropped."""
        await self._uow.run(lambda conn: flash.end_sale(conn, self._sql, sku))

    async def flash_sale(self, sku: str) -> FlashSale | None:
        """The flash sale of a SKU, if one runs."""
        return await self._uow.run(lambda conn: flash.get_sale(conn, self._sql, sku))

    async def verify(self) -> list[Drift]:
        """Recompute every counter from its records and report each disagreement."""
        return await self._uow.run(lambda conn: verify(conn, self._sql))
