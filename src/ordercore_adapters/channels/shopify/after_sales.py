"""Shopify-style refunds and returns: the ``refunds`` of orders updated in a window.

Mixed into :class:`~.adapter.ShopifyChannel` (the AfterSalesPort). **Public** (REST Admin
API): the Order resource carries its ``refunds`` (``id``, ``created_at``, ``note``,
``refund_line_items[]`` with ``line_item`` (``sku``, ``id``), ``quantity`` and
``restock_type`` (``return``, ``cancel``, ``no_restock``), ``transactions[]`` with
``kind`` ``refund`` and ``amount``), and a refund updates its order's ``updated_at``.
Shopify has no shop-wide refund list in REST, so this feed reads ``orders.json`` for the
window, exactly as the order feed does (same bounds, same cursor paging), and yields one
record per refund of those orders, stamped with its order's ``updated_at``: a refund is
then seen again (unchanged or, after a later order change, a newer version) whenever
its order changes, and the order feed's count check guards the listing.

A refund is final when Shopify lists it (status ``refunded``); with a ``return``
restock line it is a return and refund, else refund only. **Not public in REST**:
Shopify's Returns (requested, approved, in transit) live in the GraphQL Admin API and
are not pulled; exchanges and resends likewise.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from ordercore.domain.after_sales import AfterSale, AfterSaleKind, AfterSaleStatus
from ordercore.domain.channels import ChannelLimits, Page, RawRecord, RecordKind, TimeWindow

from .._platform.after_sales import AfterSaleReader

__all__ = ["ShopifyAfterSales"]


class ShopifyAfterSales:
    """The AfterSalesPort of a Shopify-style shop (mixed into ShopifyChannel)."""

    name: str
    limits: ChannelLimits

    async def fetch_orders(self, window: TimeWindow, page: str | None) -> Page:
        """The order feed (ShopifyChannel.fetch_orders)."""
        raise NotImplementedError

    @property
    def after_sales_limits(self) -> ChannelLimits:
        """The order feed's limits."""
        return self.limits

    async def fetch_after_sales(self, window: TimeWindow, page: str | None) -> Page:
        """The refunds of one page of orders updated in ``window`` (no total: see module)."""
        orders = await self.fetch_orders(window, page)
        records = tuple(
            record for order in orders.records for record in self._refund_records(order)
        )
        return Page(records=records, total=None, next_page=orders.next_page)

    def _refund_records(self, order: RawRecord) -> Iterator[RawRecord]:
        refunds = order.payload.get("refunds") or []
        for refund in refunds if isinstance(refunds, list) else []:
            if not isinstance(refund, dict) or refund.get("id") in (None, ""):
                continue
            yield RawRecord(
                channel=self.name,
                external_id=str(refund["id"]),
                modified_at=order.modified_at,
                payload={
                    **refund,
                    "order_id": order.external_id,
                    "order_currency": order.payload.get("currency") or "CNY",
                },
                kind=RecordKind.AFTER_SALE,
            )

    def map_after_sale(self, record: RawRecord) -> AfterSale:
        """Map a Shopify refund (see the module docstring)."""
        read = AfterSaleReader(self.name, record)
        raw_lines = read.raw("refund_line_items", [])
        items = [item for item in raw_lines if isinstance(item, dict)] if raw_lines else []
        lines = read.lines(
            (
                str((item.get("line_item") or {}).get("id", "")),
                (item.get("line_item") or {}).get("sku"),
                item.get("quantity"),
            )
            for item in items
            if (item.get("line_item") or {}).get("sku")
        )
        returned = any(item.get("restock_type") == "return" for item in items)
        return read.build(
            order_external_id=read.text("order_id"),
            kind=AfterSaleKind.RETURN_REFUND if returned else AfterSaleKind.REFUND_ONLY,
            status=AfterSaleStatus.REFUNDED,
            platform_status="refunded",
            lines=lines,
            refund={
                "amount": _refunded(read.raw("transactions", [])),
                "currency": read.text("order_currency", "CNY"),
            },
            reason=read.text("note", ""),
            created_at=read.time("created_at", default=record.modified_at),
        )


def _refunded(transactions: Any) -> Decimal:
    total = Decimal(0)
    for item in transactions if isinstance(transactions, list) else []:
        if isinstance(item, dict) and item.get("kind") == "refund":
            try:
                total += Decimal(str(item.get("amount", "0")))
            except InvalidOperation:
                continue
    return max(total, Decimal(0))
