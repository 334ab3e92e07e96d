"""The warehouse (WMS) port: the stock feed a warehouse management system sends in.

The WMS is the source of truth for ``on_hand``: ordercore applies what it reports
(:meth:`ordercore.services.warehouses.WarehouseService.sync_feed`) and keeps
reservations itself. An adapter pages through the feed by an opaque cursor; the same
cursor read twice must return the same batch (same ``batch_id``), which is what makes
applying it idempotent.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ordercore.domain.warehouses import StockFeedBatch

__all__ = ["WarehousePort"]


@runtime_checkable
class WarehousePort(Protocol):
    """A WMS stock feed. Adapters register under the ``ordercore.warehouses`` entry point."""

    name: str
    """The feed's source name: cursors and applied batches are kept per source."""

    async def fetch_stock(self, cursor: str | None, *, limit: int = 500) -> StockFeedBatch:
        """The next page of stock changes after ``cursor`` (None: from the beginning).

        Raises WarehouseFeedError (``transient`` when a retry may help) or
        SignatureInvalid when the answer's signature does not verify.
        """
        ...

    async def ping(self) -> None:
        """Raise WarehouseFeedError when the WMS cannot be reached."""
        ...
