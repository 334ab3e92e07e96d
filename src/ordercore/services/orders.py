"""Orders: store, look up and move through the state machine. Reached as ``core.orders``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ordercore.domain.inventory import ReservationStatus
from ordercore.domain.orders import Order, OrderStatus, parse_order
from ordercore.errors import (
    OrderNotFound,
    OrderOnHold,
    ReservationNotFound,
    ReservationStateConflict,
)
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

    async def ship(self, order_id: str, *, carrier: str = "", tracking_number: str = "") -> Order:
        """Ship an order: it moves to SHIPPED and its reservation is committed, in one unit.

        Refuses an order on hold (OrderOnHold: an exception rule or a payment problem
        held it; release it with ``core.exceptions.release_hold``). A paid order whose
        stock is reserved is allocated on the way (PAID -> ALLOCATED -> SHIPPED). Raises
        ReservationNotFound when no stock was reserved for it, ReservationStateConflict
        when its reservation was released or expired, IllegalTransition when the state
        machine forbids shipping (cancelled, already shipped). Shipping an order again
        after a retry that did commit is refused as IllegalTransition, taking nothing.
        """
        async with self._storage.unit_of_work() as uow:
            order = await uow.orders.get(order_id)
            if order is None:
                raise OrderNotFound(order_id)
            if order.status is OrderStatus.ON_HOLD:
                raise OrderOnHold(order_id, _hold_reason(order))
            now = self._clock.now()
            note = " ".join(
                part for part in ("shipped", carrier and f"by {carrier}", tracking_number) if part
            )
            moved = order
            if order.status is OrderStatus.PAID:
                moved = moved.transition_to(OrderStatus.ALLOCATED, now, "stock reserved")
            moved = moved.transition_to(OrderStatus.SHIPPED, now, note)
            outcome = await uow.inventory.transition(order_id, ReservationStatus.COMMITTED, now)
            if outcome is None:
                raise ReservationNotFound(order_id)
            reservation, changed = outcome
            if not changed and reservation.status is not ReservationStatus.COMMITTED:
                raise ReservationStateConflict(order_id, reservation.status, "commit")
            saved = await uow.orders.save(moved)
            await uow.commit()
        return saved


def _hold_reason(order: Order) -> str:
    for change in reversed(order.status_history):
        if change.to_status is OrderStatus.ON_HOLD:
            return change.reason
    return ""
