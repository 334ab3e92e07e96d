"""Warehouses and the WMS stock feed. Reached as ``core.warehouses``.

A feed batch is applied in one unit of work: the batch id is recorded first (a second
delivery of the same batch records nothing and changes nothing), then each entry sets
(``on_hand``) or adjusts (``delta``) a stock level through the storage's stock
primitives, which keep ``on_hand >= reserved``. An entry a primitive refuses (the WMS
reports fewer units than are reserved) is reported back and the rest still apply.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from opentelemetry import trace

from ordercore.domain.warehouses import StockFeedBatch, StockFeedEntry, Warehouse
from ordercore.errors import (
    FieldError,
    InvalidInput,
    StockAdjustmentConflict,
    UnknownSku,
    UnknownWarehouse,
    WarehouseFeedError,
)
from ordercore.ports.clock import Clock
from ordercore.ports.storage import Storage, UnitOfWork
from ordercore.ports.warehouses import WarehousePort
from ordercore.services.reservations import InventoryService

__all__ = ["FeedApplied", "FeedSyncReport", "WarehouseService"]

T = TypeVar("T")

tracer = trace.get_tracer("ordercore")


@dataclass(frozen=True, slots=True)
class FeedApplied:
    """What applying one feed batch did.

    ``duplicate``: the batch was applied before; nothing changed. ``rejected`` pairs an
    entry with the reason the storage refused it.
    """

    batch_id: str
    duplicate: bool
    applied: int = 0
    rejected: tuple[tuple[StockFeedEntry, str], ...] = ()


@dataclass(frozen=True, slots=True)
class FeedSyncReport:
    """What one pass over a WMS feed did: the batches in order and the cursor reached."""

    source: str
    batches: tuple[FeedApplied, ...] = field(default=())
    cursor: str | None = None

    @property
    def applied(self) -> int:
        """Entries applied over all batches."""
        return sum(batch.applied for batch in self.batches)


class WarehouseService:
    """Register warehouses and apply WMS stock feeds."""

    def __init__(
        self, storage: Storage, clock: Clock, inventory: InventoryService | None = None
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._inventory = inventory

    # -- the warehouse registry ---------------------------------------------------------------

    async def add(self, warehouse: Warehouse) -> Warehouse:
        """Register a warehouse, or replace the one with the same code."""
        if not isinstance(warehouse, Warehouse):
            raise InvalidInput(
                "warehouse", [FieldError("warehouse", "must be a Warehouse", warehouse)]
            )
        await self._in_unit(lambda uow: uow.routing.save_warehouse(warehouse))
        return warehouse

    async def get(self, code: str) -> Warehouse:
        """The warehouse with this code; UnknownWarehouse when none is registered."""
        found = await self._in_unit(lambda uow: uow.routing.warehouse(code))
        if found is None:
            raise UnknownWarehouse(code)
        return found

    async def list(self, *, active_only: bool = False) -> builtins.list[Warehouse]:
        """Every registered warehouse (or only active ones), by code."""
        return await self._in_unit(lambda uow: uow.routing.warehouses(active_only=active_only))

    async def set_active(self, code: str, active: bool) -> Warehouse:
        """Open (True) or close (False) a warehouse for routing; stock stays where it is."""

        async def change(uow: UnitOfWork) -> Warehouse:
            current = await uow.routing.warehouse(code)
            if current is None:
                raise UnknownWarehouse(code)
            changed = current.model_copy(update={"active": active})
            await uow.routing.save_warehouse(changed)
            return changed

        return await self._in_unit(change)

    # -- the WMS feed -------------------------------------------------------------------------

    async def apply_feed(self, source: str, batch: StockFeedBatch) -> FeedApplied:
        """Apply one feed batch exactly once (per ``source`` and ``batch.batch_id``)."""
        if not source:
            raise InvalidInput("stock feed", [FieldError("source", "must not be empty", source)])

        async def apply(uow: UnitOfWork) -> FeedApplied:
            now = self._clock.now()
            digest = batch.digest
            known = await uow.routing.record_feed_batch(
                source, batch.batch_id, batch.cursor, digest, len(batch.entries), now
            )
            if known is not None:
                if known != digest:
                    raise WarehouseFeedError(
                        source,
                        "apply stock feed",
                        f"batch {batch.batch_id!r} was applied before with other entries: "
                        "the WMS changed a page between reads; nothing was applied",
                        transient=False,
                    )
                return FeedApplied(batch.batch_id, duplicate=True)
            reference = f"wms:{source}:{batch.batch_id}"
            applied = 0
            rejected: list[tuple[StockFeedEntry, str]] = []
            for entry in batch.entries:
                try:
                    if entry.on_hand is not None:
                        await uow.inventory.count(
                            entry.sku, entry.warehouse, entry.on_hand, now, reference=reference
                        )
                    elif entry.delta is not None:
                        await uow.inventory.receive(
                            entry.sku,
                            entry.warehouse,
                            entry.delta,
                            now,
                            reason="wms",
                            reference=reference,
                        )
                except (StockAdjustmentConflict, UnknownSku) as exc:
                    rejected.append((entry, str(exc)))
                    continue
                applied += 1
            return FeedApplied(batch.batch_id, False, applied, tuple(rejected))

        result = await self._in_unit(apply)
        if self._inventory is not None and not result.duplicate:
            for entry in batch.entries:  # stock may have come back: drop sold-out marks
                self._inventory.sold_out.clear(entry.sku)
        return result

    async def feed_cursor(self, source: str) -> str | None:
        """Where the source's feed has been applied up to."""
        return await self._in_unit(lambda uow: uow.routing.feed_cursor(source))

    async def sync_feed(self, port: WarehousePort, *, max_pages: int = 100) -> FeedSyncReport:
        """Read the WMS feed from the stored cursor and apply each page, in order.

        Stops when the WMS says there is no more or after ``max_pages``. A page is applied
        (and the cursor moved) in one unit of work, so a crash between pages resumes at
        the first page not applied; a page delivered twice is applied once.
        """
        if max_pages < 1:
            raise InvalidInput("stock feed", [FieldError("max_pages", "must be >= 1", max_pages)])
        source = port.name
        with tracer.start_as_current_span(
            "ordercore.warehouses.sync_feed", attributes={"ordercore.wms.source": source}
        ) as span:
            cursor = await self.feed_cursor(source)
            done: list[FeedApplied] = []
            for _ in range(max_pages):
                batch = await port.fetch_stock(cursor)
                done.append(await self.apply_feed(source, batch))
                cursor = batch.cursor
                if not batch.has_more:
                    break
            report = FeedSyncReport(source, tuple(done), cursor)
            span.set_attribute("ordercore.wms.batches", len(done))
            span.set_attribute("ordercore.wms.applied", report.applied)
        return report

    async def _in_unit(self, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        async with self._storage.unit_of_work() as uow:
            result = await work(uow)
            await uow.commit()
            return result
