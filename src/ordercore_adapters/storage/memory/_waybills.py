"""The waybill records of the memory storage, keyed by (order id, package id).

Changes apply in place under the storage's lock and are logged, so they are kept or
undone with the rest of their unit of work; the lock makes ``begin`` and ``complete``
each one atomic step.
"""

from __future__ import annotations

import builtins
from datetime import datetime

from ordercore.domain.couriers import Waybill, WaybillRecord, WaybillState

from ._state import MemoryRepository, UndoLog

__all__ = ["MemoryWaybills"]

Key = tuple[str, str]


def _restore(table: dict[Key, WaybillRecord], key: Key, previous: WaybillRecord | None) -> None:
    if previous is None:
        table.pop(key, None)
    else:
        table[key] = previous


class MemoryWaybills(MemoryRepository):
    """Waybills of a memory unit of work (``ordercore.ports.storage.WaybillRepository``)."""

    __slots__ = ()

    def _put(self, key: Key, record: WaybillRecord, log: UndoLog) -> None:
        table = self._state.waybills
        log.append((_restore, table, key, table.get(key)))
        table[key] = record

    async def begin(self, order_id: str, package_id: str, now: datetime) -> WaybillRecord:
        """Insert a requested record, or count one more attempt on a requested one."""
        log = self._log()
        key = (order_id, package_id)
        record = self._state.waybills.get(key)
        if record is None:
            record = WaybillRecord(
                order_id=order_id, package_id=package_id, attempts=1, created_at=now, updated_at=now
            )
        elif record.state is WaybillState.REQUESTED:
            record = record.model_copy(
                update={"attempts": record.attempts + 1, "updated_at": max(now, record.updated_at)}
            )
        else:
            return record
        self._put(key, record, log)
        return record

    async def complete(
        self, order_id: str, package_id: str, waybill: Waybill, now: datetime
    ) -> bool:
        """Fill in the waybill when the record is still requested."""
        log = self._log()
        key = (order_id, package_id)
        record = self._state.waybills.get(key)
        if record is None or record.state is not WaybillState.REQUESTED:
            return False
        self._put(key, record.created(waybill, now), log)
        return True

    async def get(self, order_id: str, package_id: str) -> WaybillRecord | None:
        """One package's record."""
        self._log()
        return self._state.waybills.get((order_id, package_id))

    async def for_order(self, order_id: str) -> builtins.list[WaybillRecord]:
        """Every package record of the order, by package id."""
        self._log()
        return sorted(
            (record for key, record in self._state.waybills.items() if key[0] == order_id),
            key=lambda record: record.package_id,
        )

    async def counts(self) -> dict[WaybillState, int]:
        """Records per state."""
        self._log()
        counts = dict.fromkeys(WaybillState, 0)
        for record in self._state.waybills.values():
            counts[record.state] += 1
        return counts
