"""What a fake platform lists and sells: per listing a quantity, a listed flag, sales.

Shared by the fake TOP gateway and the fake webhook shops for stock-push tests. A
platform accepts a buyer's order only while the listing is up and shows at least the
quantity asked, and decrements it in the same step (its own lock), as a marketplace
does: it sells against what we listed, not against our warehouse.
"""

from __future__ import annotations

import itertools
import threading
import time

__all__ = ["Shelf"]


class Shelf:
    """Listings of one fake platform (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.quantity: dict[str, int] = {}
        self.listed: dict[str, bool] = {}
        self.sold: dict[str, int] = {}
        self.sets: list[tuple[str, int, float]] = []
        """Every quantity set (listing, quantity, monotonic time), in order."""

    def add(self, listing: str, quantity: int = 0, *, listed: bool = True) -> None:
        """Create a listing."""
        with self._lock:
            self.quantity[listing] = quantity
            self.listed[listing] = listed
            self.sold.setdefault(listing, 0)

    def set(self, listing: str, quantity: int) -> str | None:
        """Set a listing's quantity (a stock push); the error text for an unknown one."""
        with self._lock:
            if listing not in self.quantity:
                return f"no listing {listing!r}"
            if quantity < 0:
                return f"quantity must be >= 0, got {quantity}"
            self.quantity[listing] = quantity
            self.sets.append((listing, quantity, time.monotonic()))
            return None

    def set_listed(self, listing: str, listed: bool) -> str | None:
        """Put a listing up or take it down; the error text for an unknown one."""
        with self._lock:
            if listing not in self.listed:
                return f"no listing {listing!r}"
            self.listed[listing] = listed
            return None

    def buy(self, listing: str, quantity: int = 1) -> str | None:
        """A buyer's order: its id when accepted (and the listing decremented), else None."""
        with self._lock:
            if not self.listed.get(listing) or self.quantity.get(listing, 0) < quantity:
                return None
            self.quantity[listing] -= quantity
            self.sold[listing] += quantity
            return f"{listing}-{next(self._ids)}"

    def shows(self, listing: str) -> int:
        """What buyers see: the quantity while listed, else 0."""
        with self._lock:
            return self.quantity[listing] if self.listed[listing] else 0
