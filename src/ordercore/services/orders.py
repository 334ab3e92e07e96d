"""Orders: store, look up and move through the state machine. Reached as ``core.orders``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ordercore.domain.orders import Order, OrderStatus, parse_order
from ordercore.errors import OrderNotFound
from ordercore.ports.clock import Clock
from ordercore.ports.storage import Storage

__all__ = ["OrderService"]


class OrderService:
    """Order records. Channel intake builds on this; so can a shop's own checkout."""

    def __init__(self, storage: Storage, clock: Clock) -> None:
        self._storage = storage
        self._clock = clock

    async def add(self, order: Order | Mapping[str, object]) -> Order:
        """Store a new order (validated; InvalidOrder names each bad field)."""
        record = order if isinstance(order, Order) else parse_order(order)
        async with self._storage.unit_of_work() as uow:
            await uow.orders.add(record)
            await uow.commit()
        return record

    async def get(self, order_id: str) -> Order:
        """The order with this id; OrderNotFound when there is none."""
        async with self._storage.unit_of_work() as uow:
            order = await uow.orders.get(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        return order

    async def find(self, channel: str, external_id: str) -> Order | None:
        """The order a channel knows by its own id, if stored."""
        async with self._storage.unit_of_work() as uow:
            return await uow.orders.get_by_external(channel, external_id)

    async def list(self, *, status: OrderStatus | None = None, limit: int = 100) -> Sequence[Order]:
        """Orders, newest first, optionally of one status."""
        async with self._storage.unit_of_work() as uow:
            return await uow.orders.list(status=status, limit=limit)

    async def transition(self, order_id: str, target: OrderStatus, *, reason: str = "") -> Order:
        """Move an order to ``target`` (IllegalTransition when the state machine forbids it)."""
        async with self._storage.unit_of_work() as uow:
            order = await uow.orders.get(order_id)
            if order is None:
                raise OrderNotFound(order_id)
            saved = await uow.orders.save(order.transition_to(target, self._clock.now(), reason))
            await uow.commit()
        return saved
