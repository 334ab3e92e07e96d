"""A fake sales channel in memory: a ChannelPort for tests of intake and its users.

:class:`FakePlatform` holds orders the way a platform does (the current version of each,
keyed by order id, with a modification time) and :class:`FakeChannel` serves them
through the ChannelPort: incremental windows, pages with the platform's total, webhooks
signed with HMAC-SHA256, and faults a test can inject (a failing page, a page that loses
records between reads, expired credentials). Times are UTC throughout.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ordercore.domain.channels import (
    ChannelLimits,
    CredentialStatus,
    MappedOrder,
    Page,
    RawRecord,
    TimeWindow,
    WebhookDelivery,
)
from ordercore.domain.mapping import (
    FieldMap,
    LineMapping,
    OrderMapping,
    as_text,
    masked_text,
    platform_time,
    positive_int,
    status_table,
    yuan,
)
from ordercore.errors import ChannelAuthExpired, ChannelUnavailable, SignatureInvalid
from ordercore.ports.clock import Clock

__all__ = ["FAKE_MAPPING", "FakeChannel", "FakePlatform", "fake_order_payload"]

FAKE_MAPPING = OrderMapping(
    fields=(
        FieldMap(
            "status",
            "status",
            status_table({"UNPAID": "pending_payment", "PAID": "paid", "CANCELLED": "cancelled"}),
        ),
        FieldMap("created_at", "created", platform_time("Asia/Shanghai")),
        FieldMap("buyer_id", "buyer", as_text, required=False),
        FieldMap("receiver.name", "name", masked_text),
        FieldMap("receiver.phone", "phone", masked_text),
        FieldMap("address.province", "province", as_text),
        FieldMap("address.city", "city", as_text),
        FieldMap("address.detail", "address", masked_text),
    ),
    lines=LineMapping(
        "items",
        fields=(
            FieldMap("sku", "sku", as_text),
            FieldMap("quantity", "qty", positive_int),
            FieldMap("unit_price", "price", yuan),
        ),
    ),
)
"""How the fake platform's order shape maps to the canonical order."""


def fake_order_payload(
    order_id: str, *, status: str = "PAID", sku: str = "SKU-1", qty: int = 1, note: str = ""
) -> dict[str, Any]:
    """A realistic order in the fake platform's shape."""
    return {
        "id": order_id,
        "status": status,
        "created": "2026-11-11 08:00:00",
        "buyer": f"buyer-{order_id}",
        "name": "李四",
        "phone": "13912345678",
        "province": "上海市",
        "city": "上海市",
        "address": "浦东新区世纪大道100号",
        "note": note,
        "items": [{"sku": sku, "qty": qty, "price": "59.00"}],
    }


@dataclass
class FakePlatform:
    """The platform's side: current order versions, its clock, its faults."""

    clock: Clock
    orders: dict[str, tuple[datetime, dict[str, Any]]] = field(default_factory=dict)
    fail_pages: int = 0
    """The next this many page requests fail with ChannelUnavailable."""
    lose_on_next_scan: int = 0
    """The next window scan silently drops this many records (its total still counts them)."""
    credentials_expire_at: datetime = datetime(2100, 1, 1, tzinfo=UTC)
    refreshable: bool = False
    refresh_expires_at: datetime | None = None
    """When the refresh token itself runs out (None: unknown or never)."""
    page_requests: int = 0

    _index: list[tuple[datetime, str]] | None = None

    def put(self, payload: dict[str, Any], *, at: datetime | None = None) -> datetime:
        """Create or change an order; its modification time is ``at`` (default: now)."""
        modified = at or self.clock.now()
        self.orders[str(payload["id"])] = (modified, payload)
        self._index = None
        return modified

    def modified_in(self, window: TimeWindow) -> list[tuple[datetime, str, dict[str, Any]]]:
        """Orders whose current version was modified in ``window``, oldest first."""
        if self._index is None:
            self._index = sorted((modified, oid) for oid, (modified, _) in self.orders.items())
        low = bisect.bisect_left(self._index, (window.start, ""))
        high = bisect.bisect_left(self._index, (window.end, ""))
        return [(m, oid, self.orders[oid][1]) for m, oid in self._index[low:high]]


class FakeChannel:
    """A ChannelPort over a FakePlatform (forward paging, HMAC webhooks)."""

    kind = "fake"

    def __init__(
        self,
        name: str,
        platform: FakePlatform,
        *,
        secret: str = "fake-secret",  # noqa: S107 - a test double's default
        limits: ChannelLimits | None = None,
    ) -> None:
        self.name = name
        self.platform = platform
        self._secret = secret.encode()
        self.limits = limits or ChannelLimits(
            max_window=timedelta(hours=1), lag=timedelta(seconds=30), page_size=50
        )

    def __repr__(self) -> str:
        return f"FakeChannel({self.name!r})"  # never the secret

    async def credential_status(self) -> CredentialStatus:
        return CredentialStatus(
            channel=self.name,
            expires_at={"orders": self.platform.credentials_expire_at},
            refreshable=self.platform.refreshable,
            refresh_expires_at=self.platform.refresh_expires_at,
        )

    async def refresh_credentials(self) -> CredentialStatus:
        if not self.platform.refreshable:
            raise ChannelAuthExpired(f"channel {self.name!r}: refresh not allowed")
        self.platform.credentials_expire_at = self.platform.clock.now() + timedelta(days=30)
        return await self.credential_status()

    async def platform_time(self) -> datetime:
        return self.platform.clock.now()

    async def fetch_orders(self, window: TimeWindow, page: str | None) -> Page:
        platform = self.platform
        platform.page_requests += 1
        if platform.clock.now() >= platform.credentials_expire_at:
            raise ChannelAuthExpired(f"channel {self.name!r}: token expired (code 27)")
        if platform.fail_pages > 0:
            platform.fail_pages -= 1
            raise ChannelUnavailable(f"channel {self.name!r}: 503 from the platform")
        matching = platform.modified_in(window)
        offset = int(page or 0)
        size = self.limits.page_size
        chunk = matching[offset : offset + size]
        if offset == 0 and platform.lose_on_next_scan:
            chunk = chunk[platform.lose_on_next_scan :]
            platform.lose_on_next_scan = 0
        records = tuple(
            RawRecord(
                channel=self.name, external_id=order_id, modified_at=modified, payload=payload
            )
            for modified, order_id, payload in chunk
        )
        more = offset + size < len(matching)
        return Page(
            records=records, total=len(matching), next_page=str(offset + size) if more else None
        )

    def sign(self, body: bytes) -> str:
        """The signature header value the platform would send."""
        return hmac.new(self._secret, body, hashlib.sha256).hexdigest()

    def webhook(
        self, message_id: str, payloads: list[dict[str, Any]]
    ) -> tuple[dict[str, str], bytes]:
        """A signed delivery of the current versions of some orders: (headers, body)."""
        body = json.dumps(
            {
                "id": message_id,
                "orders": [
                    {"modified": self.platform.orders[str(p["id"])][0].isoformat(), "order": p}
                    for p in payloads
                ],
            },
            ensure_ascii=False,
        ).encode()
        return {"X-Fake-Id": message_id, "X-Fake-Signature": self.sign(body)}, body

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> WebhookDelivery:
        lowered = {key.lower(): value for key, value in headers.items()}
        given = lowered.get("x-fake-signature", "")
        if not hmac.compare_digest(given.encode(), self.sign(body).encode()):
            raise SignatureInvalid(f"channel {self.name!r}: webhook signature does not match")
        data = json.loads(body)
        records = tuple(
            RawRecord(
                channel=self.name,
                external_id=str(item["order"]["id"]),
                modified_at=datetime.fromisoformat(item["modified"]),
                payload=item["order"],
            )
            for item in data["orders"]
        )
        return WebhookDelivery(message_id=lowered.get("x-fake-id", data["id"]), records=records)

    def map_order(self, record: RawRecord) -> MappedOrder:
        return FAKE_MAPPING.map(record)

    async def aclose(self) -> None:
        return None
