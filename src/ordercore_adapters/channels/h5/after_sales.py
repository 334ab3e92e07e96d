"""The H5 store's after-sales feed: ``GET {base_url}/v1/after-sales`` (our API, version 1).

Mixed into :class:`~.adapter.H5Channel` (the AfterSalesPort). Same rules as
``/v1/orders``: ``updated_since`` inclusive, ``updated_before`` exclusive (ISO 8601 UTC),
oldest first by (``updated_at``, ``id``), pages from 1, ``per_page`` 1..100. The answer:
``{"schema": "h5.after-sale-page.v1", "total": N, "page": P, "per_page": S,
"after_sales": [<h5.after-sale.v1>...]}`` where an ``h5.after-sale.v1`` is::

    {"schema": "h5.after-sale.v1", "id": "AS-1", "order_id": "H5-1001",
     "type": "refund_only" | "return_refund" | "exchange" | "resend",
     "status": "requested" | "approved" | "rejected" | "returning" | "received"
               | "refunded" | "closed",
     "lines": [{"id": "H5-1001-1", "sku": "TEE-BLK-M", "quantity": 1}],
     "refund_amount": "59.00", "currency": "CNY", "reason": "", "description": "",
     "tracking_number": "", "created_at": "<ISO>", "updated_at": "<ISO>"}

Since the store speaks our vocabulary, mapping is validation: an unknown type or status
is rejected (kept for replay).
"""

from __future__ import annotations

from typing import Any

from ordercore.domain.after_sales import AfterSale, AfterSaleKind, AfterSaleStatus
from ordercore.domain.channels import ChannelLimits, Page, RawRecord, RecordKind, TimeWindow
from ordercore.errors import ChannelUnavailable

from .._platform.after_sales import AfterSaleReader
from .._platform.json_http import JsonHttp
from .._platform.values import parse_iso

__all__ = ["H5AfterSales"]

_KINDS = {kind.value: kind for kind in AfterSaleKind}
_STATUSES = {status.value: status for status in AfterSaleStatus}


class H5AfterSales:
    """The AfterSalesPort of an H5 store (mixed into H5Channel)."""

    name: str
    limits: ChannelLimits
    base_url: str
    _http: JsonHttp
    _page_size: int

    @property
    def after_sales_limits(self) -> ChannelLimits:
        """The order feed's limits."""
        return self.limits

    async def fetch_after_sales(self, window: TimeWindow, page: str | None) -> Page:
        """One page (forward, from 1) of after-sales updated in ``[start, end)``."""
        number = 1 if page is None else int(page)
        _, data = await self._http.request(
            "GET",
            f"{self.base_url}/v1/after-sales",
            what="GET /v1/after-sales",
            params={
                "updated_since": window.start.isoformat(),
                "updated_before": window.end.isoformat(),
                "page": str(number),
                "per_page": str(self._page_size),
            },
        )
        if not isinstance(data, dict) or data.get("schema") != "h5.after-sale-page.v1":
            raise ChannelUnavailable(
                f"h5 channel {self.name!r}: /v1/after-sales did not answer an h5.after-sale-page.v1"
            )
        total, items = data.get("total"), data.get("after_sales")
        if isinstance(total, bool) or not isinstance(total, int) or not isinstance(items, list):
            raise ChannelUnavailable(
                f"h5 channel {self.name!r}: an after-sale page lacks a total or an after_sales list"
            )
        records = tuple(self._after_sale_record(item) for item in items)
        more = number * self._page_size < total and bool(items)
        return Page(records=records, total=total, next_page=str(number + 1) if more else None)

    def _after_sale_record(self, item: Any) -> RawRecord:
        key = item.get("id") if isinstance(item, dict) else None
        try:
            modified_at = parse_iso(str(item.get("updated_at"))) if key else None
        except ValueError:
            modified_at = None
        if not isinstance(key, str) or not key or modified_at is None:
            raise ChannelUnavailable(
                f"h5 channel {self.name!r}: an after-sale came without id or ISO updated_at"
            )
        return RawRecord(
            channel=self.name,
            external_id=key,
            modified_at=modified_at,
            payload=item,
            kind=RecordKind.AFTER_SALE,
        )

    def map_after_sale(self, record: RawRecord) -> AfterSale:
        """Validate an ``h5.after-sale.v1`` (see the module docstring)."""
        read = AfterSaleReader(self.name, record)
        raw_lines = read.raw("lines", [])
        lines = read.lines(
            (str(line.get("id", "")), line.get("sku"), line.get("quantity"))
            for line in (raw_lines if isinstance(raw_lines, list) else [])
            if isinstance(line, dict)
        )
        return read.build(
            order_external_id=read.text("order_id"),
            kind=read.choose("type", _KINDS),
            status=read.choose("status", _STATUSES),
            platform_status=read.text("status", ""),
            lines=lines,
            refund={
                "amount": read.amount("refund_amount"),
                "currency": read.text("currency", "CNY") or "CNY",
            },
            reason=read.text("reason", ""),
            description=read.text("description", ""),
            tracking_number=read.text("tracking_number", ""),
            created_at=read.time("created_at", default=record.modified_at),
        )
