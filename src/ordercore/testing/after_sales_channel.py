"""A fake channel with an after-sales feed, for tests of ``core.after_sales``.

:class:`FakeAfterSalesChannel` is a :class:`~ordercore.testing.channels.FakeChannel`
(orders, webhooks, faults) that also serves after-sale requests the way a platform's
after-sales list does: the current version of each request, listed by modification time
in forward pages with the window's total, through the AfterSalesPort. Its failing-page
and credential faults are the platform's, shared with the order feed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from ordercore.domain.after_sales import (
    AfterSale,
    AfterSaleKind,
    AfterSaleStatus,
    after_sale_id,
    parse_after_sale,
)
from ordercore.domain.channels import ChannelLimits, Page, RawRecord, RecordKind, TimeWindow
from ordercore.errors import ChannelAuthExpired, ChannelUnavailable, FieldError, InvalidInput
from ordercore.testing.channels import FakeChannel, FakePlatform

__all__ = ["FAKE_KINDS", "FAKE_STATUSES", "FakeAfterSalesChannel", "fake_after_sale_payload"]

FAKE_KINDS = {
    "REFUND": AfterSaleKind.REFUND_ONLY,
    "RETURN": AfterSaleKind.RETURN_REFUND,
    "EXCHANGE": AfterSaleKind.EXCHANGE,
    "RESEND": AfterSaleKind.RESEND,
}
"""The fake platform's request types -> ours."""
FAKE_STATUSES = {
    "WAIT_SELLER": AfterSaleStatus.REQUESTED,
    "AGREED": AfterSaleStatus.APPROVED,
    "REFUSED": AfterSaleStatus.REJECTED,
    "BUYER_SENT": AfterSaleStatus.RETURNING,
    "SELLER_RECEIVED": AfterSaleStatus.RECEIVED,
    "SUCCESS": AfterSaleStatus.REFUNDED,
    "CLOSED": AfterSaleStatus.CLOSED,
}
"""The fake platform's request statuses -> ours."""


def fake_after_sale_payload(
    request_id: str,
    order_id: str,
    *,
    kind: str = "RETURN",
    status: str = "SELLER_RECEIVED",
    sku: str = "SKU-1",
    qty: int = 1,
    amount: str = "59.00",
) -> dict[str, Any]:
    """A request in the fake platform's shape."""
    return {
        "id": request_id,
        "order_id": order_id,
        "type": kind,
        "status": status,
        "items": [{"sku": sku, "qty": qty}],
        "amount": amount,
        "reason": "尺码不合适",
        "created": "2026-11-11T08:00:00+00:00",
    }


class FakeAfterSalesChannel(FakeChannel):
    """A FakeChannel that also implements the AfterSalesPort."""

    def __init__(
        self,
        name: str,
        platform: FakePlatform,
        *,
        after_sales_limits: ChannelLimits | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, platform, **kwargs)
        self.after_sales_limits = after_sales_limits or ChannelLimits(
            max_window=timedelta(minutes=30), lag=timedelta(seconds=30), page_size=20
        )
        self.requests: dict[str, tuple[datetime, dict[str, Any]]] = {}
        self.after_sale_pages = 0

    def put_after_sale(self, payload: dict[str, Any], *, at: datetime | None = None) -> datetime:
        """Create or change a request; its modification time is ``at`` (default: now)."""
        modified = at or self.platform.clock.now()
        self.requests[str(payload["id"])] = (modified, payload)
        return modified

    async def fetch_after_sales(self, window: TimeWindow, page: str | None) -> Page:
        """Requests modified in ``window``, oldest first, ``page_size`` per page."""
        platform = self.platform
        self.after_sale_pages += 1
        if platform.clock.now() >= platform.credentials_expire_at:
            raise ChannelAuthExpired(f"channel {self.name!r}: token expired (code 27)")
        if platform.fail_pages > 0:
            platform.fail_pages -= 1
            raise ChannelUnavailable(f"channel {self.name!r}: 503 from the platform")
        matching = sorted(
            (modified, request_id, payload)
            for request_id, (modified, payload) in self.requests.items()
            if window.contains(modified)
        )
        offset = int(page or 0)
        size = self.after_sales_limits.page_size
        records = tuple(
            RawRecord(
                channel=self.name,
                external_id=request_id,
                modified_at=modified,
                payload=payload,
                kind=RecordKind.AFTER_SALE,
            )
            for modified, request_id, payload in matching[offset : offset + size]
        )
        more = offset + size < len(matching)
        return Page(
            records=records, total=len(matching), next_page=str(offset + size) if more else None
        )

    def map_after_sale(self, record: RawRecord) -> AfterSale:
        """Map the fake shape; an unknown type or status raises InvalidInput."""
        data = record.payload
        errors: list[FieldError] = []
        kind = FAKE_KINDS.get(str(data.get("type")))
        status = FAKE_STATUSES.get(str(data.get("status")))
        if kind is None:
            errors.append(FieldError("type", f"not one of {sorted(FAKE_KINDS)}", data.get("type")))
        if status is None:
            errors.append(
                FieldError("status", f"not one of {sorted(FAKE_STATUSES)}", data.get("status"))
            )
        try:
            amount = Decimal(str(data.get("amount", "0")))
        except InvalidOperation:
            errors.append(FieldError("amount", "not a decimal amount", data.get("amount")))
            amount = Decimal(0)
        if errors:
            raise InvalidInput(f"after-sale {record.external_id} of channel {self.name!r}", errors)
        return parse_after_sale(
            {
                "id": after_sale_id(self.name, record.external_id),
                "channel": self.name,
                "external_id": record.external_id,
                "order_external_id": str(data.get("order_id", "")),
                "kind": kind,
                "status": status,
                "platform_status": str(data.get("status")),
                "lines": [
                    {"sku": item.get("sku"), "quantity": item.get("qty")}
                    for item in data.get("items", [])
                ],
                "refund": {"amount": amount},
                "reason": str(data.get("reason", "")),
                "created_at": data.get("created"),
                "source_modified_at": record.modified_at,
                "updated_at": record.modified_at,
            }
        )
