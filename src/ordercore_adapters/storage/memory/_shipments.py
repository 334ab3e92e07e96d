"""Shipments and their push records in the memory storage.

Changes apply in place under the storage's lock and are logged, so they are kept or
undone with the rest of their unit of work; the lock makes each compare-and-set one step.
"""

from __future__ import annotations

import builtins
from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Any

from ordercore.domain.shipments import PushState, Shipment, ShipmentPush, ShipmentState

from ._state import MemoryRepository, UndoLog

__all__ = ["MemoryShipments"]


def _restore(table: dict[Any, Any], key: Hashable, previous: object | None) -> None:
    if previous is None:
        table.pop(key, None)
    else:
        table[key] = previous


class MemoryShipments(MemoryRepository):
    """Shipments of a memory unit of work (``ordercore.ports.storage.ShipmentRepository``)."""

    __slots__ = ()

    def _put(self, table: dict[Any, Any], key: Hashable, value: object, log: UndoLog) -> None:
        log.append((_restore, table, key, table.get(key)))
        table[key] = value

    async def add(self, shipment: Shipment, pushes: Sequence[ShipmentPush]) -> bool:
        """Store a new shipment and its pushes; False if the id exists."""
        log = self._log()
        if shipment.id in self._state.shipments:
            return False
        self._put(self._state.shipments, shipment.id, shipment, log)
        for push in pushes:
            self._put(self._state.shipment_pushes, (push.shipment_id, push.order_id), push, log)
        return True

    async def get(self, shipment_id: str) -> Shipment | None:
        """One shipment."""
        self._log()
        return self._state.shipments.get(shipment_id)

    async def for_order(self, order_id: str) -> builtins.list[Shipment]:
        """The shipments holding a part of the order, oldest first."""
        self._log()
        ids = [key[0] for key in self._state.shipment_pushes if key[1] == order_id]
        found = [self._state.shipments[i] for i in ids if i in self._state.shipments]
        return sorted(found, key=lambda shipment: (shipment.created_at, shipment.id))

    async def move(
        self,
        shipment_id: str,
        target: ShipmentState,
        from_states: Sequence[ShipmentState],
        now: datetime,
    ) -> bool:
        """Compare-and-set the shipment's state."""
        log = self._log()
        shipment = self._state.shipments.get(shipment_id)
        if shipment is None or shipment.state not in from_states:
            return False
        update: dict[str, object] = {"state": target, "updated_at": max(now, shipment.updated_at)}
        if target is ShipmentState.SHIPPED:
            update["shipped_at"] = now
        self._put(self._state.shipments, shipment_id, shipment.model_copy(update=update), log)
        return True

    async def move_pushes(
        self,
        shipment_id: str,
        target: PushState,
        from_states: Sequence[PushState],
        now: datetime,
        *,
        order_id: str | None = None,
    ) -> int:
        """Compare-and-set the state of a shipment's pushes (or one order's)."""
        log = self._log()
        table = self._state.shipment_pushes
        moved = 0
        for key, push in list(table.items()):
            if key[0] != shipment_id or (order_id is not None and key[1] != order_id):
                continue
            if push.state not in from_states:
                continue
            update = {"state": target, "updated_at": max(now, push.updated_at)}
            self._put(table, key, push.model_copy(update=update), log)
            moved += 1
        return moved

    async def save_push(self, push: ShipmentPush, from_states: Sequence[PushState]) -> bool:
        """Write the push if the stored one is in ``from_states``."""
        log = self._log()
        key = (push.shipment_id, push.order_id)
        stored = self._state.shipment_pushes.get(key)
        if stored is None or stored.state not in from_states:
            return False
        kept = push.model_copy(
            update={
                "created_at": stored.created_at,
                "channel": stored.channel,
                "external_order_id": stored.external_order_id,
                "sub_orders": stored.sub_orders,
                "package_id": stored.package_id,
            }
        )
        self._put(self._state.shipment_pushes, key, kept, log)
        return True

    async def get_push(self, shipment_id: str, order_id: str) -> ShipmentPush | None:
        """One push record."""
        self._log()
        return self._state.shipment_pushes.get((shipment_id, order_id))

    async def pushes(
        self,
        *,
        order_id: str | None = None,
        shipment_id: str | None = None,
        states: Sequence[PushState] = (),
        limit: int = 1000,
    ) -> builtins.list[ShipmentPush]:
        """Push records, oldest first, filtered."""
        self._log()
        found = [
            push
            for push in self._state.shipment_pushes.values()
            if (order_id is None or push.order_id == order_id)
            and (shipment_id is None or push.shipment_id == shipment_id)
            and (not states or push.state in states)
        ]
        found.sort(key=lambda push: (push.created_at, push.shipment_id, push.order_id))
        return found[:limit]

    async def push_counts(self) -> dict[PushState, int]:
        """Push records per state."""
        self._log()
        counts = dict.fromkeys(PushState, 0)
        for push in self._state.shipment_pushes.values():
            counts[push.state] += 1
        return counts
