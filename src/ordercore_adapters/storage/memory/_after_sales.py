"""After-sales in the memory storage: requests by id, their (channel, external id) key,
handovers to interception and inspections."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from ordercore.domain.after_sales import AfterSale, AfterSaleStatus, Inspection
from ordercore.domain.intake import UpsertOutcome

from ._state import MemoryRepository

__all__ = ["MemoryAfterSales"]

K = TypeVar("K")
V = TypeVar("V")


def _put(table: dict[K, V], key: K, previous: V | None) -> None:
    if previous is None:
        table.pop(key, None)
    else:
        table[key] = previous


class MemoryAfterSales(MemoryRepository):
    """Implements ``ordercore.ports.storage.AfterSaleRepository`` under the storage's lock."""

    __slots__ = ()

    def _set(self, table: dict[K, V], key: K, value: V) -> None:
        self._log().append((_put, table, key, table.get(key)))
        table[key] = value

    async def get(self, after_sale_id: str) -> AfterSale | None:
        """The after-sale with this id."""
        self._log()
        return self._state.after_sales.get(after_sale_id)

    async def get_many_by_external(
        self, channel: str, external_ids: Sequence[str]
    ) -> dict[str, AfterSale]:
        """The stored after-sales of one channel among ``external_ids``."""
        self._log()
        found: dict[str, AfterSale] = {}
        for external_id in external_ids:
            row_id = self._state.after_sale_keys.get((channel, external_id))
            if row_id is not None:
                found[external_id] = self._state.after_sales[row_id]
        return found

    async def upsert_many(self, after_sales: Sequence[AfterSale]) -> builtins.list[UpsertOutcome]:
        """Insert new keys, replace older versions, leave equal and newer ones alone."""
        self._log()
        rows, keys = self._state.after_sales, self._state.after_sale_keys
        outcomes: list[UpsertOutcome] = []
        for incoming in after_sales:
            key = (incoming.channel, incoming.external_id)
            row_id = self._state.after_sale_keys.get(key)
            if row_id is None:
                self._set(keys, key, incoming.id)
                fresh = incoming.model_copy(update={"version": 1, "handed_over_at": None})
                self._set(rows, incoming.id, fresh)
                outcomes.append(UpsertOutcome.CREATED)
                continue
            stored = self._state.after_sales[row_id]
            if incoming.source_modified_at > stored.source_modified_at:
                replaced = incoming.model_copy(
                    update={
                        "id": stored.id,
                        "order_id": stored.order_id or incoming.order_id,
                        "created_at": stored.created_at,
                        "version": stored.version + 1,
                        "handed_over_at": stored.handed_over_at,
                    }
                )
                self._set(rows, row_id, replaced)
                outcomes.append(UpsertOutcome.UPDATED)
            elif incoming.source_modified_at == stored.source_modified_at:
                outcomes.append(UpsertOutcome.UNCHANGED)
            else:
                outcomes.append(UpsertOutcome.STALE)
        return outcomes

    async def list(
        self,
        *,
        channel: str | None = None,
        order_id: str | None = None,
        status: AfterSaleStatus | None = None,
        unlinked_only: bool = False,
        limit: int = 100,
    ) -> builtins.list[AfterSale]:
        """After-sales, most recently changed on the platform first, then by id."""
        self._log()
        chosen = [
            row
            for row in self._state.after_sales.values()
            if (channel is None or row.channel == channel)
            and (order_id is None or row.order_id == order_id)
            and (status is None or row.status is status)
            and (not unlinked_only or row.order_id is None)
        ]
        chosen.sort(key=lambda row: row.id)
        chosen.sort(key=lambda row: row.source_modified_at, reverse=True)
        return chosen[:limit]

    async def link(self, channel: str, order_external_id: str, order_id: str) -> int:
        """Link the channel's unlinked after-sales of that platform order."""
        self._log()
        rows = self._state.after_sales
        linked = 0
        for row in list(self._state.after_sales.values()):
            if (
                row.channel == channel
                and row.order_external_id == order_external_id
                and row.order_id is None
            ):
                self._set(rows, row.id, row.model_copy(update={"order_id": order_id}))
                linked += 1
        return linked

    async def claim_handover(self, after_sale_id: str, now: datetime) -> bool:
        """Mark the after-sale handed over, once."""
        self._log()
        if (
            after_sale_id in self._state.after_sale_handovers
            or after_sale_id not in self._state.after_sales
        ):
            return False
        self._set(self._state.after_sale_handovers, after_sale_id, now)
        row = self._state.after_sales[after_sale_id]
        self._set(
            self._state.after_sales, after_sale_id, row.model_copy(update={"handed_over_at": now})
        )
        return True

    async def add_inspection(self, inspection: Inspection) -> tuple[Inspection, bool]:
        """Keep the inspection unless the after-sale has one."""
        self._log()
        stored = self._state.inspections.get(inspection.after_sale_id)
        if stored is not None:
            return stored, False
        self._set(self._state.inspections, inspection.after_sale_id, inspection)
        return inspection, True

    async def inspection(self, after_sale_id: str) -> Inspection | None:
        """The after-sale's inspection, if any."""
        self._log()
        return self._state.inspections.get(after_sale_id)
