"""Shopify-style shipment push-back: a fulfillment with a tracking number per package.

``GET orders/{id}/fulfillments.json`` first: a fulfillment already carrying this
tracking number means the package was pushed before (a retry after a lost answer) and
nothing is sent again, since Shopify does not deduplicate fulfillments. Otherwise ``POST
orders/{id}/fulfillments.json`` with ``tracking_number``, ``tracking_company`` (our
courier code mapped through :data:`~.._platform.courier_codes.SHOPIFY` and the adapter's
``courier_codes``) and, for a package holding part of the order, its ``line_items``
(the order's line item ids). ``notify_customer`` is off: the shop's own messaging
decides. Newer Admin API versions move this to fulfillment orders; a shop on those
wraps the same two calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from ordercore.errors import ShipmentPushRefused

from .._platform.courier_codes import SHOPIFY, CourierCodeOverrides, platform_courier
from .._platform.json_http import ApiError, JsonHttp

__all__ = ["ShopifyShipments"]


class ShopifyShipments(CourierCodeOverrides):
    """The ShipmentPushPort side of :class:`~.adapter.ShopifyChannel` (a mixin)."""

    name: str
    shop_url: str
    _http: JsonHttp
    _throttle: Callable[[httpx.Response, Any], None]

    async def push_shipment(
        self, external_order_id: str, courier: str, tracking_number: str, lines: Sequence[str]
    ) -> None:
        """Fulfil one package of an order (all of it when ``lines`` is empty), once.

        Raises ShipmentPushRefused for a 4xx refusal (an unknown order, line items
        already fulfilled) and an unmapped courier; ChannelUnavailable after retries.
        """
        company = platform_courier(
            SHOPIFY,
            self.courier_codes,
            courier,
            channel=self.name,
            external_order_id=external_order_id,
        )
        path = f"orders/{external_order_id}/fulfillments.json"
        fulfillment: dict[str, Any] = {
            "tracking_number": tracking_number,
            "tracking_company": company,
            "notify_customer": False,
        }
        if lines:
            fulfillment["line_items"] = [
                {"id": int(line) if line.isdigit() else line} for line in lines
            ]
        try:
            _, data = await self._http.request(
                "GET", f"{self.shop_url}/{path}", what=f"GET {path}", check=self._throttle
            )
            done = data.get("fulfillments", []) if isinstance(data, dict) else []
            if any(item.get("tracking_number") == tracking_number for item in done):
                return
            await self._http.request(
                "POST",
                f"{self.shop_url}/{path}",
                what=f"POST {path}",
                content=json.dumps({"fulfillment": fulfillment}).encode(),
                headers={"Content-Type": "application/json"},
                check=self._throttle,
            )
        except ApiError as exc:
            raise ShipmentPushRefused(self.name, external_order_id, "http-4xx", str(exc)) from exc
