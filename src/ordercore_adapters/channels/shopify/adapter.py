"""A Shopify-style shop: orders by webhook, a REST safety poll with cursor paging.

``ShopifyChannel(name, config)`` implements :class:`ordercore.ports.channels.ChannelPort`.

Public (Shopify's REST Admin API and webhook docs):

* webhooks ``orders/create``, ``orders/updated``, ``orders/cancelled`` carry the whole
  order; the body is signed (``X-Shopify-Hmac-Sha256``, base64 HMAC-SHA256 with the
  app's secret), ``X-Shopify-Webhook-Id`` is the same across the platform's retries.
  The id is the delivery's dedup key: the core remembers it durably (a re-delivery is
  reported ``replayed``; the verifier runs no in-process guard so that outcome stays
  visible). Other topics are verified and carry no record.
* ``GET orders.json?updated_at_min=&updated_at_max=&status=any&limit=`` (both bounds
  "at or after" / "at or before", ISO 8601 with an offset; ``limit`` <= 250), ordered
  by ``updated_at``; further pages only through the ``Link`` header's ``rel="next"`` URL
  (``page_info``, no other filter allowed with it); ``orders/count.json`` with the same
  filters is the window's total; without ``read_all_orders`` only 60 days of orders
  are visible (our ``history_depth``).
* ``X-Shopify-Shop-Api-Call-Limit: used/size`` (a leaky bucket, 2 calls/s leak on
  standard plans); 429 with ``Retry-After`` when it overflows; 401 for a revoked token.

Assumed: the half-open window ``[start, end)`` is sent as the whole seconds ``ceil(start)
.. ceil(end) - 1 s`` in UTC (``+00:00``), as Shopify stamps times to the second; the
count is read once per window and carried in the page token (the intake re-scans when
a page's orders do not add up to it); a max window of one day (Shopify has none: ours
keeps pages few per window); the bucket pause: with ``bucket_headroom`` calls or fewer
left we wait until the bucket has leaked that much.

Config keys: ``shop_url`` (the Admin API base, ``https://x.myshopify.com/admin/api/
2024-10``), ``access_token``, ``webhook_secrets`` (one or a list), ``page_size`` (250),
``timeout`` (15 s), ``attempts`` (4), ``max_wait`` (60 s), ``leak_rate`` (2/s),
``bucket_headroom`` (4).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import httpx

from ordercore.domain.channels import (
    ChannelLimits,
    CredentialStatus,
    MappedOrder,
    Page,
    PagingDirection,
    RawRecord,
    TimeWindow,
    WebhookDelivery,
)
from ordercore.errors import ChannelAuthExpired, ChannelUnavailable, SignatureInvalid
from ordercore_adapters.channels._platform.config_reader import ConfigReader
from ordercore_adapters.channels._platform.json_http import ApiError, JsonHttp
from ordercore_adapters.channels._platform.values import parse_iso
from ordercore_adapters.channels.signatures import ShopifyVerifier

from .after_sales import ShopifyAfterSales
from .mapping import map_shopify_order
from .shipments import ShopifyShipments

__all__ = ["SHOPIFY_TOPICS", "ShopifyChannel", "shopify_bounds"]

logger = logging.getLogger("ordercore.channels.shopify")

SHOPIFY_TOPICS: Final = frozenset({"orders/create", "orders/updated", "orders/cancelled"})
MAX_PAGE_SIZE: Final = 250
CALL_LIMIT_HEADER: Final = "X-Shopify-Shop-Api-Call-Limit"
_SECOND = timedelta(seconds=1)
_KNOWN: Final = frozenset(
    {
        "shop_url",
        "access_token",
        "webhook_secrets",
        "page_size",
        "timeout",
        "attempts",
        "max_wait",
        "leak_rate",
        "bucket_headroom",
    }
)


def shopify_bounds(window: TimeWindow) -> tuple[datetime, datetime]:
    """The inclusive whole-second bounds (UTC) for a half-open window (see the module)."""
    return _ceil(window.start), _ceil(window.end) - _SECOND


def _ceil(moment: datetime) -> datetime:
    floored = moment.replace(microsecond=0)
    return floored if floored == moment else floored + _SECOND


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class ShopifyChannel(ShopifyAfterSales, ShopifyShipments):
    """A ChannelPort for one Shopify-style shop (see the module docstring)."""

    kind = "shopify"

    def __init__(
        self,
        name: str,
        config: Mapping[str, object],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not name:
            raise ValueError("shopify: a channel needs a name")
        self.name = name
        read = ConfigReader(
            "shopify",
            name,
            config,
            known=_KNOWN,
            required=("shop_url", "access_token", "webhook_secrets"),
            secret_keys=("access_token", "webhook_secrets"),
        )
        self.shop_url = read.url("shop_url")
        token = read.text("access_token")
        secrets = read.texts("webhook_secrets")
        self._page_size = int(read.number("page_size", MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE, whole=True))
        timeout = read.number("timeout", 15.0, 0.001, None)
        attempts = int(read.number("attempts", 4, 1, 20, whole=True))
        max_wait = read.number("max_wait", 60.0, 0.0, None)
        self._leak_rate = read.number("leak_rate", 2.0, 0.001, None)
        self._headroom = int(read.number("bucket_headroom", 4, 0, 1000, whole=True))
        read.done()
        self._verifier = ShopifyVerifier(secrets)
        self.limits = ChannelLimits(
            max_window=timedelta(days=1),
            lag=timedelta(seconds=10),
            history_depth=timedelta(days=60),
            page_size=self._page_size,
            paging=PagingDirection.FORWARD,
            requests_per_second=self._leak_rate,
        )
        self._http = JsonHttp(
            kind="shopify",
            channel=name,
            timeout=timeout,
            attempts=attempts,
            max_wait=max_wait,
            headers={"X-Shopify-Access-Token": token},
            secrets=(token, *secrets),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"ShopifyChannel({self.name!r}, shop_url={self.shop_url!r})"

    async def __aenter__(self) -> ShopifyChannel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    # -- credentials ----------------------------------------------------------------------

    async def credential_status(self) -> CredentialStatus:
        """Offline access tokens do not expire (until the app is uninstalled)."""
        return CredentialStatus(channel=self.name, expires_at={}, refreshable=False)

    async def refresh_credentials(self) -> CredentialStatus:
        """Not possible: a revoked token needs the merchant to install the app again."""
        raise ChannelAuthExpired(
            f"shopify channel {self.name!r}: an offline access token is renewed by the "
            f"merchant installing the app again"
        )

    # -- pulling --------------------------------------------------------------------------

    def _throttle(self, response: httpx.Response, data: Any) -> None:
        raw = response.headers.get(CALL_LIMIT_HEADER, "")
        used, _, size = raw.partition("/")
        if not (used.isdigit() and size.isdigit()):
            return
        over = int(used) - (int(size) - self._headroom)
        if over >= 0:
            seconds = (over + 1) / self._leak_rate
            logger.info(
                "shopify channel %r: call bucket at %s, pausing %g s", self.name, raw, seconds
            )
            self._http.pause(seconds)

    async def _get(self, path: str, params: Mapping[str, str]) -> tuple[httpx.Response, Any]:
        return await self._http.request(
            "GET",
            f"{self.shop_url}/{path}",
            what=f"GET {path}",
            params=params,
            check=self._throttle,
        )

    async def platform_time(self) -> datetime:
        """Shopify's clock, from the ``Date`` header of ``shop.json`` (to the second)."""
        response, _ = await self._get("shop.json", {"fields": "id,iana_timezone"})
        try:
            return parsedate_to_datetime(response.headers["Date"]).astimezone(UTC)
        except (KeyError, TypeError, ValueError):
            raise ChannelUnavailable(
                f"shopify channel {self.name!r}: shop.json answered without a valid Date header"
            ) from None

    async def fetch_orders(self, window: TimeWindow, page: str | None) -> Page:
        """One page of orders updated in ``window``; the token carries the count and cursor."""
        if page is None:
            low, high = shopify_bounds(window)
            if high < low:
                return Page(records=(), total=0)
            bounds = {"updated_at_min": _iso(low), "updated_at_max": _iso(high), "status": "any"}
            _, counted = await self._get("orders/count.json", bounds)
            total = self._count(counted)
            params = {**bounds, "limit": str(self._page_size), "order": "updated_at asc"}
        else:
            count, _, page_info = page.partition("|")
            if not count.isdigit() or not page_info:
                raise ValueError(f"shopify: not a page token of this adapter: {page!r}")
            total = int(count)
            params = {"limit": str(self._page_size), "page_info": page_info}
        response, data = await self._get("orders.json", params)
        orders = data.get("orders") if isinstance(data, dict) else None
        if not isinstance(orders, list):
            raise ChannelUnavailable(f"shopify channel {self.name!r}: orders.json has no orders")
        records = tuple(self._record(order) for order in orders)
        next_info = _next_page_info(response)
        return Page(
            records=records, total=total, next_page=f"{total}|{next_info}" if next_info else None
        )

    def _count(self, data: Any) -> int:
        count = data.get("count") if isinstance(data, dict) else None
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ChannelUnavailable(
                f"shopify channel {self.name!r}: orders/count.json has no count"
            )
        return count

    def _record(self, order: Any) -> RawRecord:
        if not isinstance(order, dict):
            raise ChannelUnavailable(f"shopify channel {self.name!r}: an order is not an object")
        order_id, updated = order.get("id"), order.get("updated_at")
        try:
            modified_at = parse_iso(updated) if isinstance(updated, str) else None
        except ValueError:
            modified_at = None
        if order_id in (None, "") or isinstance(order_id, bool) or modified_at is None:
            raise ChannelUnavailable(
                f"shopify channel {self.name!r}: an order came without id or an ISO updated_at"
            )
        return RawRecord(
            channel=self.name, external_id=str(order_id), modified_at=modified_at, payload=order
        )

    # -- pushes and mapping ---------------------------------------------------------------

    # -- stock push ---------------------------------------------------------------------

    async def push_stock(self, quantities: Mapping[str, int]) -> Mapping[str, str | None]:
        """Set each listing's ``available`` (``POST inventory_levels/set.json``), one call each.

        A listing id is ``"<location_id>:<inventory_item_id>"``: Shopify keeps stock per
        inventory item per location. A 4xx refusal (an unknown item, an untracked one)
        answers for that listing; 401, 429 past ``max_wait`` and 5xx after the retries
        raise. The call sets an absolute value, so a retry is harmless.
        """
        answers: dict[str, str | None] = {}
        for listing, quantity in quantities.items():
            location, _, item = listing.partition(":")
            if not (location.isdigit() and item.isdigit()) or quantity < 0:
                answers[listing] = (
                    f"not a Shopify listing id ('<location_id>:<inventory_item_id>') with a "
                    f"quantity >= 0: {listing!r} = {quantity!r}"
                )
                continue
            body = {
                "location_id": int(location),
                "inventory_item_id": int(item),
                "available": quantity,
            }
            try:
                await self._http.request(
                    "POST",
                    f"{self.shop_url}/inventory_levels/set.json",
                    what="POST inventory_levels/set.json",
                    content=json.dumps(body).encode(),
                    headers={"Content-Type": "application/json"},
                    check=self._throttle,
                )
            except ApiError as exc:
                answers[listing] = str(exc)
            else:
                answers[listing] = None
        return answers

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> WebhookDelivery:
        """Verify a delivery (ShopifyVerifier); an ``orders/*`` body becomes its record."""
        verified = self._verifier.verify(headers, body, now)
        delivery = verified.delivery
        if delivery.topic not in SHOPIFY_TOPICS:
            return delivery
        try:
            record = self._record(verified.payload)
        except ChannelUnavailable:
            raise SignatureInvalid(
                f"shopify channel {self.name!r}: {delivery.topic} webhook "
                f"{delivery.message_id!r} is signed but is not an order with id and updated_at"
            ) from None
        return delivery.model_copy(update={"records": (record,)})

    def map_order(self, record: RawRecord) -> MappedOrder:
        """Map an order (see :mod:`.mapping`)."""
        return map_shopify_order(record)


def _next_page_info(response: httpx.Response) -> str | None:
    url = response.links.get("next", {}).get("url")
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("page_info")
    return values[0] if values else None
