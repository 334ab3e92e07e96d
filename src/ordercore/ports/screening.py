"""The screening store port: the fraud window's history and the screening results.

The fraud rules count recent orders that share a receiver phone, address, device or
buyer with the order being screened; across processes that history must be shared, so
it lives behind this port. Entries hold only keyed hashes
(:func:`ordercore.domain.rules.history_entry`), never the phone or address itself.
The store also keeps each order's latest :class:`ScreeningResult`: the "flag" on an order.

:class:`InMemoryScreeningStore` is the in-process implementation (one process, tests).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from ordercore.domain.exceptions import ScreeningResult
from ordercore.domain.rules.history import HistoryEntry

__all__ = [
    "DEFAULT_LIMIT",
    "BatchScreeningStore",
    "InMemoryScreeningStore",
    "ScreeningStore",
    "ScreeningStoreProvider",
    "SharedScreeningStore",
]

DEFAULT_LIMIT = 100
"""Most entries per key ``record`` returns (far above any sensible rule threshold)."""


@runtime_checkable
class ScreeningStore(Protocol):
    """Where screening keeps its history and its results."""

    async def record(
        self, entry: HistoryEntry, since: datetime, *, limit: int = DEFAULT_LIMIT
    ) -> list[HistoryEntry]:
        """Store ``entry`` and return the other entries since ``since`` sharing a key with it.

        One step: concurrent screenings of orders with a common key each see the other
        once both are recorded. Recording the same order id again replaces its entry (a
        re-screen never counts an order twice). Empty keys match nothing. At most
        ``limit`` entries per key come back, the newest, so a hot key (a company's
        reception desk) costs the same as any other: counts saturate at ``limit``.
        """
        ...

    async def save_result(self, result: ScreeningResult) -> None:
        """Keep the latest screening result of an order (replacing an earlier one)."""
        ...

    async def result(self, order_id: str) -> ScreeningResult | None:
        """The latest screening result of an order, if it was screened."""
        ...

    async def flagged(self, *, limit: int = 100) -> Sequence[ScreeningResult]:
        """Latest results that have findings, newest first."""
        ...

    async def prune(self, before: datetime) -> int:
        """Forget history entries older than ``before``; return how many."""
        ...


@runtime_checkable
class SharedScreeningStore(ScreeningStore, Protocol):
    """A store several processes share: it also keeps the salt their keys are hashed with."""

    async def shared_salt(self) -> bytes:
        """The salt every process on this store uses (made once, then the same)."""
        ...


@runtime_checkable
class BatchScreeningStore(ScreeningStore, Protocol):
    """A store that records a batch (an intake window) in one step: one transaction, not
    one per order. Each entry still sees the entries recorded before it, batch included."""

    async def record_many(
        self, entries: Sequence[HistoryEntry], since: Sequence[datetime]
    ) -> list[list[HistoryEntry]]:
        """:meth:`ScreeningStore.record` for each entry in order, in one step."""
        ...

    async def save_results(self, results: Sequence[ScreeningResult], *, replace_only: bool) -> None:
        """Keep these results; with ``replace_only``, only for orders that have one already."""
        ...


@runtime_checkable
class ScreeningStoreProvider(Protocol):
    """A storage adapter that offers a screening store over its own database."""

    def screening_store(self) -> ScreeningStore:
        """A screening store sharing this storage's database."""
        ...


_KEYS = ("phone_key", "address_key", "device_key", "buyer_key")


class InMemoryScreeningStore:
    """A screening store in this process's memory (the default without a shared one).

    Entries are indexed by each key, so a lookup touches only the orders that share a
    key with the screened one; old entries are dropped by :meth:`prune`. No method
    awaits while it works, so each is atomic on the event loop without a lock.
    """

    def __init__(self) -> None:
        self._entries: dict[str, HistoryEntry] = {}
        self._index: dict[tuple[str, str], deque[str]] = defaultdict(deque)
        self._results: dict[str, ScreeningResult] = {}

    async def record(
        self, entry: HistoryEntry, since: datetime, *, limit: int = DEFAULT_LIMIT
    ) -> list[HistoryEntry]:
        """Store ``entry``; return up to ``limit`` newest others per shared key since ``since``."""
        found: dict[str, HistoryEntry] = {}
        for kind in _KEYS:
            key = getattr(entry, kind)
            if not key:
                continue
            taken = 0
            for order_id in reversed(self._index.get((kind, key), ())):
                if taken >= limit:
                    break
                other = self._entries.get(order_id)
                if (
                    other is not None
                    and order_id != entry.order_id
                    and other.at >= since
                    and getattr(other, kind) == key
                ):
                    found[order_id] = other
                    taken += 1
        previous = self._entries.get(entry.order_id)
        self._entries[entry.order_id] = entry
        for kind in _KEYS:
            key = getattr(entry, kind)
            if key and (previous is None or getattr(previous, kind) != key):
                self._index[(kind, key)].append(entry.order_id)
        return list(found.values())

    async def record_many(
        self, entries: Sequence[HistoryEntry], since: Sequence[datetime]
    ) -> list[list[HistoryEntry]]:
        """``record`` each entry in order."""
        return [await self.record(e, s) for e, s in zip(entries, since, strict=True)]

    async def save_result(self, result: ScreeningResult) -> None:
        """Keep the latest result of an order."""
        self._results[result.order_id] = result

    async def save_results(self, results: Sequence[ScreeningResult], *, replace_only: bool) -> None:
        """Keep these results; with ``replace_only``, only for orders that have one already."""
        for result in results:
            if not replace_only or result.order_id in self._results:
                self._results[result.order_id] = result

    async def result(self, order_id: str) -> ScreeningResult | None:
        """The latest result of an order."""
        return self._results.get(order_id)

    async def flagged(self, *, limit: int = 100) -> Sequence[ScreeningResult]:
        """Latest results with findings, newest first."""
        hits = [result for result in self._results.values() if result.findings]
        hits.sort(key=lambda result: result.screened_at, reverse=True)
        return hits[:limit]

    async def prune(self, before: datetime) -> int:
        """Forget entries older than ``before``."""
        old = [oid for oid, entry in self._entries.items() if entry.at < before]
        for order_id in old:
            del self._entries[order_id]
        for key, ids in list(self._index.items()):
            kept = deque(oid for oid in ids if oid in self._entries)
            if kept:
                self._index[key] = kept
            else:
                del self._index[key]
        return len(old)
