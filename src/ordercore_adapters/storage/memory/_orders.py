"""The order repository of the memory storage.

Orders are pydantic models treated as immutable values: stored as given, replaced by
a bumped copy on save, and handed out without copying.
"""

from __future__ import annotations

import builtins
import heapq
from collections.abc import Sequence
from datetime import UTC, datetime

from ordercore.domain.intake import UpsertOutcome
from ordercore.domain.orders import Order, OrderStatus
from ordercore.errors import ConcurrencyConflict, DuplicateOrder, OrderNotFound

from ._state import MemoryRepository, UndoLog, undo_to

__all__ = ["MemoryOrders"]


def _newest_first(order: Order) -> tuple[datetime, str]:
    return (order.created_at, order.id)


def _modified(order: Order) -> datetime | None:
    """The platform modification time, aware (naive is taken as UTC, like the SQL storage)."""
    moment = order.source_modified_at
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


class MemoryOrders(MemoryRepository):
    """Orders of a memory unit of work, by id and by (channel, external_id).

    Implements :class:`ordercore.ports.storage.OrderRepository`.
    """

    __slots__ = ()

    async def add(self, order: Order) -> None:
        """Store a new order; DuplicateOrder if its id or (channel, external_id) exists."""
        log = self._log()
        state = self._state
        if order.id in state.orders:
            raise DuplicateOrder(f"id {order.id!r}")
        key = (order.channel, order.external_id)
        if key in state.order_keys:
            raise DuplicateOrder(f"{order.channel}/{order.external_id}")
        state.orders[order.id] = order
        state.order_keys[key] = order.id
        log.append((self._undo_add, order))

    def _undo_add(self, order: Order) -> None:
        del self._state.orders[order.id]
        del self._state.order_keys[(order.channel, order.external_id)]

    async def get(self, order_id: str) -> Order | None:
        """The order with this id."""
        self._log()
        return self._state.orders.get(order_id)

    async def get_by_external(self, channel: str, external_id: str) -> Order | None:
        """The order a channel knows by ``external_id``."""
        self._log()
        order_id = self._state.order_keys.get((channel, external_id))
        return None if order_id is None else self._state.orders[order_id]

    async def save(self, order: Order) -> Order:
        """Store a changed order if its version is the stored one; return it bumped."""
        log = self._log()
        state = self._state
        stored = state.orders.get(order.id)
        if stored is None:
            raise OrderNotFound(order.id)
        if stored.version != order.version:
            raise ConcurrencyConflict(f"order {order.id!r}", order.version)
        old_key = (stored.channel, stored.external_id)
        new_key = (order.channel, order.external_id)
        if new_key != old_key:
            if new_key in state.order_keys:
                raise DuplicateOrder(f"{order.channel}/{order.external_id}")
            del state.order_keys[old_key]
            state.order_keys[new_key] = order.id
        saved = order.model_copy(update={"version": order.version + 1})
        state.orders[order.id] = saved
        log.append((self._undo_save, stored, saved))
        return saved

    def _undo_save(self, previous: Order, saved: Order) -> None:
        state = self._state
        del state.order_keys[(saved.channel, saved.external_id)]
        state.order_keys[(previous.channel, previous.external_id)] = previous.id
        state.orders[previous.id] = previous

    async def list(self, *, status: OrderStatus | None = None, limit: int = 100) -> Sequence[Order]:
        """Orders, newest first (created_at, then id, descending), optionally of one status."""
        self._log()
        if limit <= 0:
            return []
        orders = self._state.orders.values()
        if status is not None:
            return heapq.nlargest(
                limit, (order for order in orders if order.status == status), key=_newest_first
            )
        return heapq.nlargest(limit, orders, key=_newest_first)

    async def get_many_by_external(
        self, channel: str, external_ids: Sequence[str]
    ) -> dict[str, Order]:
        """The stored orders of one channel among ``external_ids``, by external id."""
        self._log()
        keys, orders = self._state.order_keys, self._state.orders
        found: dict[str, Order] = {}
        for external_id in external_ids:
            order_id = keys.get((channel, external_id))
            if order_id is not None:
                found[external_id] = orders[order_id]
        return found

    async def upsert_many(self, orders: Sequence[Order]) -> builtins.list[UpsertOutcome]:
        """Store channel orders exactly once per (channel, external_id), newest version winning.

        Applied in the given order under the unit's lock, so the comparison and the write
        are one step. An update keeps the stored order's id (an intake never renames an
        order) and bumps its version. A new key whose id another order already holds
        raises DuplicateOrder, and then nothing of this call is kept.
        """
        log = self._log()
        mark = len(log)
        try:
            return [self._upsert(log, order) for order in orders]
        except BaseException:
            undo_to(log, mark)
            raise

    def _upsert(self, log: UndoLog, order: Order) -> UpsertOutcome:
        state = self._state
        order_id = state.order_keys.get((order.channel, order.external_id))
        if order_id is None:
            if order.id in state.orders:
                raise DuplicateOrder(f"id {order.id!r}")
            state.orders[order.id] = order
            state.order_keys[(order.channel, order.external_id)] = order.id
            log.append((self._undo_add, order))
            return UpsertOutcome.CREATED
        stored = state.orders[order_id]
        incoming, current = _modified(order), _modified(stored)
        if incoming == current:
            return UpsertOutcome.UNCHANGED
        if incoming is None or (current is not None and incoming < current):
            return UpsertOutcome.STALE
        saved = order.model_copy(update={"id": stored.id, "version": stored.version + 1})
        state.orders[order_id] = saved
        log.append((self._undo_save, stored, saved))
        return UpsertOutcome.UPDATED
