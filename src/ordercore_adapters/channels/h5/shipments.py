"""H5 store shipment push-back: ``POST {base_url}/v1/orders/{id}/shipments``.

The seller's own store takes one shipment per package, keyed by (order, tracking
number), so a POST repeated after a lost answer is the same shipment (the store answers
200 again). Body ``{"tracking_number": ..., "carrier": <our courier code, or an
override from courier_codes>, "lines": [<line ids>]}`` (empty lines: the whole order).
A 4xx is a refusal (ShipmentPushRefused); 5xx and timeouts are retried, then
ChannelUnavailable.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from urllib.parse import quote

from ordercore.errors import ShipmentPushRefused

from .._platform.courier_codes import CourierCodeOverrides
from .._platform.json_http import ApiError, JsonHttp

__all__ = ["H5Shipments"]


class H5Shipments(CourierCodeOverrides):
    """The ShipmentPushPort side of :class:`~.adapter.H5Channel` (a mixin)."""

    name: str
    base_url: str
    _http: JsonHttp

    async def push_shipment(
        self, external_order_id: str, courier: str, tracking_number: str, lines: Sequence[str]
    ) -> None:
        """Record one package of an order at the store (all of it when ``lines`` is empty)."""
        carrier = self.courier_codes.get(courier, courier)
        path = f"/v1/orders/{quote(external_order_id, safe='')}/shipments"
        body = {"tracking_number": tracking_number, "carrier": carrier, "lines": list(lines)}
        try:
            await self._http.request(
                "POST",
                f"{self.base_url}{path}",
                what=f"POST {path}",
                content=json.dumps(body, ensure_ascii=False).encode(),
                headers={"Content-Type": "application/json"},
            )
        except ApiError as exc:
            raise ShipmentPushRefused(self.name, external_order_id, "http-4xx", str(exc)) from exc
