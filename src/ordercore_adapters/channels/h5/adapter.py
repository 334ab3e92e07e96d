"""The seller's own H5 store: Standard Webhooks pushes plus a paged REST safety poll.

``H5Channel(name, config)`` implements :class:`ordercore.ports.channels.ChannelPort`.
The API is ours (documented here and in :mod:`.mapping`), version 1:

* ``GET {base_url}/v1/orders?updated_since=&updated_before=&page=&per_page=`` with
  ``Authorization: Bearer <api_token>``; ``updated_since`` is inclusive and
  ``updated_before`` exclusive (ISO 8601 UTC, microseconds allowed), so our half-open
  window is sent as it is. Orders come oldest first by (``updated_at``, ``id``); pages
  start at 1; ``per_page`` is 1..100. The answer: ``{"schema": "h5.order-page.v1",
  "total": N, "page": P, "per_page": S, "orders": [<h5.order.v1>...]}``.
* ``GET {base_url}/v1/time`` -> ``{"now": "<ISO 8601>"}`` (the store's clock).
* Errors: 401 (token expired or revoked) -> ChannelAuthExpired; 429 with ``Retry-After``
  (waited out, bounded by ``max_wait``); 5xx/timeouts/malformed JSON retried by stamina,
  then ChannelUnavailable; another 4xx -> ApiError.
* Webhooks (Standard Webhooks: ``webhook-id``, ``webhook-timestamp``,
  ``webhook-signature``; 5-minute tolerance; several ``whsec_`` secrets during a
  rotation): the body is ``{"type": "order.created" | "order.updated" |
  "order.cancelled", "timestamp": "<ISO>", "data": <h5.order.v1>}``. The delivery id is
  the dedup key: the core remembers it durably, so a replay is reported ``replayed``.

Config keys: ``base_url``, ``api_token``, ``webhook_secrets`` (one or a list, required),
``token_expires_at`` (optional), ``page_size`` (100), ``timeout`` (15 s), ``attempts``
(4), ``max_wait`` (60 s), ``tolerance_seconds`` (300).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

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
from ordercore_adapters.channels._platform.json_http import JsonHttp
from ordercore_adapters.channels._platform.values import parse_iso
from ordercore_adapters.channels.signatures import StandardWebhooksVerifier

from .after_sales import H5AfterSales
from .mapping import map_h5_order
from .shipments import H5Shipments

__all__ = ["H5_TOPICS", "H5Channel", "h5_time"]

H5_TOPICS: Final = frozenset({"order.created", "order.updated", "order.cancelled"})
MAX_PAGE_SIZE: Final = 100
_KNOWN: Final = frozenset(
    {
        "base_url",
        "api_token",
        "webhook_secrets",
        "token_expires_at",
        "page_size",
        "timeout",
        "attempts",
        "max_wait",
        "tolerance_seconds",
    }
)


def h5_time(moment: datetime) -> str:
    """A window bound as the store's API takes it: ISO 8601 in UTC (``...+00:00``)."""
    return moment.astimezone(UTC).isoformat()


class H5Channel(H5AfterSales, H5Shipments):
    """A ChannelPort for the seller's own H5 store (see the module docstring)."""

    kind = "h5"
    retries_transient_failures = True

    def __init__(
        self,
        name: str,
        config: Mapping[str, object],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not name:
            raise ValueError("h5: a channel needs a name")
        self.name = name
        read = ConfigReader(
            "h5",
            name,
            config,
            known=_KNOWN,
            required=("base_url", "api_token", "webhook_secrets"),
            secret_keys=("api_token", "webhook_secrets"),
        )
        self.base_url = read.url("base_url")
        token = read.text("api_token")
        secrets = read.texts("webhook_secrets")
        self._token_expires_at = read.time("token_expires_at")
        self._page_size = int(read.number("page_size", MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE, whole=True))
        timeout = read.number("timeout", 15.0, 0.001, None)
        attempts = int(read.number("attempts", 4, 1, 20, whole=True))
        max_wait = read.number("max_wait", 60.0, 0.0, None)
        tolerance = read.number("tolerance_seconds", 300.0, 0.0, 3600.0)
        read.done()
        try:
            self._verifier = StandardWebhooksVerifier(
                secrets, tolerance=timedelta(seconds=tolerance)
            )
        except ValueError as exc:
            raise ValueError(f"h5 channel {name!r}: webhook_secrets: {exc}") from None
        self.limits = ChannelLimits(
            max_window=timedelta(days=1),
            lag=timedelta(seconds=5),
            history_depth=timedelta(days=365),
            page_size=self._page_size,
            paging=PagingDirection.FORWARD,
            lookback=timedelta(minutes=10),
        )
        self._http = JsonHttp(
            kind="h5",
            channel=name,
            timeout=timeout,
            attempts=attempts,
            max_wait=max_wait,
            headers={"Authorization": f"Bearer {token}"},
            secrets=(token, *secrets),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"H5Channel({self.name!r}, base_url={self.base_url!r})"

    async def __aenter__(self) -> H5Channel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    # -- credentials ----------------------------------------------------------------------

    async def credential_status(self) -> CredentialStatus:
        """The API token's expiry when configured (store tokens are issued by the seller)."""
        expires = {"api_token": self._token_expires_at} if self._token_expires_at else {}
        return CredentialStatus(channel=self.name, expires_at=expires, refreshable=False)

    async def refresh_credentials(self) -> CredentialStatus:
        """Not possible: the seller issues a new API token in the store's admin."""
        raise ChannelAuthExpired(
            f"h5 channel {self.name!r}: the store's API token is renewed by the seller "
            f"issuing a new one in the store's admin"
        )

    # -- pulling --------------------------------------------------------------------------

    async def platform_time(self) -> datetime:
        """The store's clock (``GET /v1/time``) in UTC."""
        _, data = await self._http.request("GET", f"{self.base_url}/v1/time", what="GET /v1/time")
        try:
            return parse_iso(str(data["now"]))
        except (KeyError, TypeError, ValueError):
            raise ChannelUnavailable(
                f"h5 channel {self.name!r}: /v1/time answered without a valid 'now'"
            ) from None

    async def fetch_orders(self, window: TimeWindow, page: str | None) -> Page:
        """One page (forward, from 1) of orders updated in ``[start, end)``."""
        number = 1 if page is None else int(page)
        _, data = await self._http.request(
            "GET",
            f"{self.base_url}/v1/orders",
            what="GET /v1/orders",
            params={
                "updated_since": h5_time(window.start),
                "updated_before": h5_time(window.end),
                "page": str(number),
                "per_page": str(self._page_size),
            },
        )
        total, orders = self._page_body(data)
        records = tuple(self._record(order) for order in orders)
        more = number * self._page_size < total and bool(orders)
        return Page(records=records, total=total, next_page=str(number + 1) if more else None)

    def _page_body(self, data: Any) -> tuple[int, list[Any]]:
        if not isinstance(data, dict) or data.get("schema") != "h5.order-page.v1":
            raise ChannelUnavailable(
                f"h5 channel {self.name!r}: /v1/orders did not answer an h5.order-page.v1"
            )
        total, orders = data.get("total"), data.get("orders")
        if isinstance(total, bool) or not isinstance(total, int) or not isinstance(orders, list):
            raise ChannelUnavailable(
                f"h5 channel {self.name!r}: an order page lacks an integer total or an orders list"
            )
        return total, orders

    def _record(self, order: Any) -> RawRecord:
        if not isinstance(order, dict):
            raise ChannelUnavailable(f"h5 channel {self.name!r}: an order is not an object")
        external_id, updated = order.get("id"), order.get("updated_at")
        try:
            modified_at = parse_iso(str(updated))
        except ValueError:
            modified_at = None
        if not isinstance(external_id, str) or not external_id or modified_at is None:
            raise ChannelUnavailable(
                f"h5 channel {self.name!r}: an order came without an id or an ISO updated_at "
                f"with an offset"
            )
        return RawRecord(
            channel=self.name, external_id=external_id, modified_at=modified_at, payload=order
        )

    # -- pushes and mapping ---------------------------------------------------------------

    # -- stock push and listings ---------------------------------------------------------

    async def push_stock(self, quantities: Mapping[str, int]) -> Mapping[str, str | None]:
        """Set listed quantities: ``POST {base_url}/v1/stock`` (absolute values).

        Body ``{"items": [{"sku": <listing id>, "quantity": n}]}``; the answer
        ``{"results": [{"sku": ..., "error": null | "<reason>"}]}`` answers per listing (a
        listing the store does not answer for is reported as such).
        """
        items = [{"sku": listing, "quantity": qty} for listing, qty in quantities.items()]
        return await self._items("/v1/stock", items)

    async def set_listed(self, listings: Mapping[str, bool]) -> Mapping[str, str | None]:
        """List or delist: ``POST {base_url}/v1/listings`` with ``{"sku", "listed"}`` items."""
        items = [{"sku": listing, "listed": listed} for listing, listed in listings.items()]
        return await self._items("/v1/listings", items)

    async def _items(self, path: str, items: list[dict[str, Any]]) -> dict[str, str | None]:
        if not items:
            return {}
        _, data = await self._http.request(
            "POST",
            f"{self.base_url}{path}",
            what=f"POST {path}",
            content=json.dumps({"items": items}, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json"},
        )
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise ChannelUnavailable(
                f"h5 channel {self.name!r}: POST {path} answered without a results list"
            )
        answered: dict[str, str | None] = {}
        for result in results:
            if isinstance(result, dict) and isinstance(result.get("sku"), str):
                error = result.get("error")
                answered[result["sku"]] = None if error is None else str(error)
        return {
            str(item["sku"]): answered.get(str(item["sku"]), "the store did not answer for it")
            for item in items
        }

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> WebhookDelivery:
        """Verify a Standard Webhooks delivery; its ``data`` order becomes the record.

        Events other than the order ones are verified and carry no record.
        """
        verified = self._verifier.verify(headers, body, now)
        delivery = verified.delivery
        payload = verified.payload
        if delivery.topic not in H5_TOPICS:
            return delivery
        try:
            record = self._record(payload.get("data") if isinstance(payload, dict) else None)
        except ChannelUnavailable:
            raise SignatureInvalid(
                f"h5 channel {self.name!r}: {delivery.topic} {delivery.message_id!r} is signed "
                f"but its data is not an order with an id and an ISO updated_at"
            ) from None
        return delivery.model_copy(update={"records": (record,)})

    def map_order(self, record: RawRecord) -> MappedOrder:
        """Map an ``h5.order.v1`` payload (see :mod:`.mapping`)."""
        return map_h5_order(record)
