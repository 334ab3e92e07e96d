"""The stock-push records of the memory storage: the last push per (shop, SKU)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

from ordercore.domain.stock_push import PushRecord

from ._state import MemoryRepository

__all__ = ["MemoryStockPushes"]

_Key = tuple[str, str]


def _restore(table: dict[_Key, PushRecord], key: _Key, previous: PushRecord | None) -> None:
    if previous is None:
        table.pop(key, None)
    else:
        table[key] = previous


class MemoryStockPushes(MemoryRepository):
    """Implements ``ordercore.ports.storage.StockPushRepository`` under the storage's lock."""

    __slots__ = ()

    async def save_pushes(self, records: Sequence[PushRecord]) -> int:
        """Keep each record unless a newer attempt is stored; return how many were kept."""
        log = self._log()
        table = self._state.stock_pushes
        kept = 0
        for record in records:
            key = (record.shop, record.sku)
            previous = table.get(key)
            if previous is not None and previous.attempted_at > record.attempted_at:
                continue
            table[key] = record
            log.append((_restore, table, key, previous))
            kept += 1
        return kept

    async def pushes(
        self,
        *,
        shop: str | None = None,
        skus: Sequence[str] | None = None,
        for_update: bool = False,
    ) -> builtins.list[PushRecord]:
        """The records of one shop and/or some SKUs (all: both None), by (shop, sku)."""
        self._log()
        wanted = None if skus is None else set(skus)
        return [
            record
            for key, record in sorted(self._state.stock_pushes.items())
            if (shop is None or key[0] == shop) and (wanted is None or key[1] in wanted)
        ]
