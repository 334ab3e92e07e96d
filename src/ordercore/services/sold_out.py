"""What this process knows to be sold out, so it can refuse without touching the stock row.

A mark on (sku, warehouse) is set when a reservation step sees nothing left to sell
there, and lives at most ``ttl``. Changes made through this process's core (receipts,
adjustments, stocktakes, safety changes, releases, expiry sweeps, flash-sale changes)
clear the SKU's marks at once. A change made by another process is seen within ``ttl``:
that is the staleness bound of the fast path.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["SoldOutBoard"]


class SoldOutBoard:
    """Sold-out marks per (sku, warehouse), each with a monotonic deadline."""

    __slots__ = ("_marks", "_now", "_ttl")

    def __init__(self, ttl: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._now = monotonic
        self._marks: dict[str, dict[str, float]] = {}

    @property
    def ttl(self) -> float:
        """The longest a mark is trusted, in seconds (0 turns the fast path off)."""
        return self._ttl

    def is_sold_out(self, sku: str, warehouse: str) -> bool:
        """True while a fresh mark says this location has nothing to sell."""
        marks = self._marks.get(sku)
        if marks is None:
            return False
        until = marks.get(warehouse)
        if until is None:
            return False
        if self._now() < until:
            return True
        del marks[warehouse]
        if not marks:
            del self._marks[sku]
        return False

    def mark(self, sku: str, warehouse: str) -> None:
        """Record that this location had nothing left to sell just now."""
        if self._ttl > 0:
            self._marks.setdefault(sku, {})[warehouse] = self._now() + self._ttl

    def clear(self, sku: str) -> None:
        """Forget every mark of a SKU (stock or limits changed through this process)."""
        self._marks.pop(sku, None)
