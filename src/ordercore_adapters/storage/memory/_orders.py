"""The order repository of the memory storage.

Orders are pydantic models treated as immutable values: stored as given, replaced by
a bumped copy on save, and handed out without copying.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from datetime import datetime

from ordercore.domain.orders import Order, OrderStatus
from ordercore.errors import ConcurrencyConflict, DuplicateOrder, OrderNotFound

from ._state import MemoryState, UndoLog, Unit, closed_unit

__all__ = ["MemoryOrders"]


def _newest_first(order: Order) -> tuple[datetime, str]:
    return (order.created_at, order.id)


class MemoryOrders:
    """Orders of a memory unit of work, by id and by (channel, external_id).

    Implements :class:`ordercore.ports.storage.OrderRepository`.
    """

    __slots__ = ("_state", "_unit")

    def __init__(self, state: MemoryState, unit: Unit) -> None:
        self._state = state
        self._unit = unit

    def _log(self) -> UndoLog:
        log = self._unit.log
        if log is None:
            raise closed_unit()
        return log

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
