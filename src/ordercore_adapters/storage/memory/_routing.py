"""The routing repository of the memory storage: warehouses, plans, transfers, WMS feeds.

Like every memory repository it runs under the storage's lock and logs one undo entry
per change. ``relocate`` is checked in full before it changes anything.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from ordercore.domain.inventory import Reservation, ReservationLine, merge_lines
from ordercore.domain.routing import (
    FulfilmentPlan,
    TransferRequest,
    TransferStatus,
    check_relocation,
    relocation_deltas,
)
from ordercore.domain.warehouses import Warehouse
from ordercore.errors import InsufficientStock, UnknownSku

from ._state import MemoryRepository

if TYPE_CHECKING:
    from ordercore.ports.storage import RoutingRepository

__all__ = ["MemoryRouting"]

_REQUESTED = TransferStatus.REQUESTED


class MemoryRouting(MemoryRepository):
    """Implements ``ordercore.ports.storage.RoutingRepository`` under the storage's lock."""

    __slots__ = ()

    # -- warehouses ---------------------------------------------------------------------------

    async def save_warehouse(self, warehouse: Warehouse) -> None:
        """Insert or replace a warehouse."""
        log = self._log()
        table = self._state.warehouses
        log.append((_restore, table, warehouse.code, table.get(warehouse.code)))
        table[warehouse.code] = warehouse

    async def warehouse(self, code: str) -> Warehouse | None:
        """The warehouse with this code."""
        self._log()
        return self._state.warehouses.get(code)

    async def warehouses(self, *, active_only: bool = False) -> builtins.list[Warehouse]:
        """Every warehouse (or the active ones), by code."""
        self._log()
        table = self._state.warehouses
        return [table[code] for code in sorted(table) if table[code].active or not active_only]

    # -- plans and transfers ----------------------------------------------------------------

    async def save_plan(self, plan: FulfilmentPlan) -> None:
        """Replace the order's plan and its transfers."""
        log = self._log()
        state = self._state
        previous = state.plans.get(plan.order_id)
        if previous is not None:
            for transfer in previous.transfers:
                old = state.transfers.pop(transfer.id, None)
                if old is not None:
                    log.append((_restore, state.transfers, transfer.id, None, old))
        log.append((_restore, state.plans, plan.order_id, previous))
        state.plans[plan.order_id] = plan
        for transfer in plan.transfers:
            log.append((_restore, state.transfers, transfer.id, state.transfers.get(transfer.id)))
            state.transfers[transfer.id] = transfer

    async def plan(self, order_id: str) -> FulfilmentPlan | None:
        """The order's plan with its transfers as they now stand."""
        self._log()
        plan = self._state.plans.get(order_id)
        if plan is None or not plan.transfers:
            return plan
        current = tuple(self._state.transfers.get(t.id, t) for t in plan.transfers)
        return plan.model_copy(update={"transfers": current})

    async def transfers(
        self, *, status: TransferStatus | None = None, warehouse: str | None = None
    ) -> builtins.list[TransferRequest]:
        """Transfers, oldest first, optionally of one status and one warehouse."""
        self._log()
        found = [
            t
            for t in self._state.transfers.values()
            if (status is None or t.status == status)
            and (warehouse is None or warehouse in (t.from_warehouse, t.to_warehouse))
        ]
        return sorted(found, key=lambda t: (t.created_at, t.id))

    async def set_transfer_status(
        self, transfer_id: str, status: TransferStatus, now: datetime
    ) -> TransferRequest | None:
        """Move a requested transfer on, once."""
        log = self._log()
        table = self._state.transfers
        current = table.get(transfer_id)
        if current is None or current.status != _REQUESTED:
            return None
        changed = current.model_copy(update={"status": status, "updated_at": now})
        log.append((_restore, table, transfer_id, current))
        table[transfer_id] = changed
        return changed

    # -- relocating a reservation -----------------------------------------------------------

    async def relocate(
        self, order_id: str, lines: Sequence[ReservationLine], now: datetime
    ) -> Reservation:
        """Move the order's active reservation onto ``lines``, all or nothing."""
        log = self._log()
        state = self._state
        new_lines = merge_lines(lines)
        current = check_relocation(order_id, state.reservations.get(order_id), new_lines)
        deltas = relocation_deltas(current.lines, new_lines)
        for sku, warehouse, delta in deltas:  # check everything before changing anything
            level = state.levels.get(sku, {}).get(warehouse)
            if level is None:
                raise UnknownSku(sku, warehouse)
            sellable = level.on_hand - level.reserved - level.safety
            if delta > 0 and sellable < delta:
                raise InsufficientStock(sku, warehouse, delta, max(sellable, 0))
        for sku, warehouse, delta in deltas:
            state.levels[sku][warehouse].reserved += delta
        marks = state.sale_marks.get(order_id)
        if marks is not None:
            by_sku = {line.sku: mark for line, mark in zip(current.lines, marks, strict=True)}
            state.sale_marks[order_id] = tuple(by_sku[line.sku] for line in new_lines)
        moved = replace(current, lines=new_lines, updated_at=now)
        state.reservations[order_id] = moved
        log.append((self._undo_relocate, current, marks, deltas))
        return moved

    def _undo_relocate(
        self,
        previous: Reservation,
        marks: tuple[str | None, ...] | None,
        deltas: list[tuple[str, str, int]],
    ) -> None:
        state = self._state
        for sku, warehouse, delta in deltas:
            state.levels[sku][warehouse].reserved -= delta
        state.reservations[previous.order_id] = previous
        if marks is not None:
            state.sale_marks[previous.order_id] = marks

    # -- WMS feeds ----------------------------------------------------------------------------

    async def record_feed_batch(
        self, source: str, batch_id: str, cursor: str, digest: str, entries: int, now: datetime
    ) -> str | None:
        """Remember a batch once and move the source's cursor; a repeat gets its digest."""
        log = self._log()
        state = self._state
        key = (source, batch_id)
        known = state.feed_batches.get(key)
        if known is not None:
            return known[1]
        state.feed_batches[key] = (now, digest)
        log.append((_restore, state.feed_batches, key, None))
        log.append((_restore, state.feed_cursors, source, state.feed_cursors.get(source)))
        state.feed_cursors[source] = cursor
        return None

    async def feed_cursor(self, source: str) -> str | None:
        """Where the source's feed was read up to."""
        self._log()
        return self._state.feed_cursors.get(source)


def _restore(table: dict[object, object], key: object, previous: object, *absent: object) -> None:
    """Undo: put ``previous`` back under ``key`` (None: remove it); ``absent``: re-add it."""
    if absent:
        table[key] = absent[0]
    elif previous is None:
        table.pop(key, None)
    else:
        table[key] = previous


if TYPE_CHECKING:

    def _conforms(repository: MemoryRouting) -> RoutingRepository:
        return repository
