"""Taobao shipment push-back (发货回传) through ``taobao.logistics.offline.send``.

"Self-arranged delivery" (自己联系物流): the seller already has the tracking number from
its own courier account, so the trade moves straight to "seller shipped". A package
that holds only some lines of a trade is sent with ``is_split=1`` and ``sub_tid`` (the
sub-order ``oid`` list, comma-separated), once per package. Our courier code becomes
TOP's ``company_code`` through :data:`~.._platform.courier_codes.TAOBAO` and the
adapter's ``courier_codes`` overrides.

Assumed (not in TOP's public docs as such): that sending exactly the same ``out_sid``
for the same lines again is answered as success, so a retry after a lost answer is
harmless; any other ``isv.*`` refusal is final (ShipmentPushRefused).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ordercore.errors import ShipmentPushRefused

from .._platform.courier_codes import TAOBAO, CourierCodeOverrides, platform_courier
from .client import TopApiError, TopClient

__all__ = ["SEND_METHOD", "TaobaoShipments"]

SEND_METHOD = "taobao.logistics.offline.send"


class TaobaoShipments(CourierCodeOverrides):
    """The ShipmentPushPort side of :class:`~.adapter.TaobaoChannel` (a mixin)."""

    name: str
    _client: TopClient

    async def push_shipment(
        self, external_order_id: str, courier: str, tracking_number: str, lines: Sequence[str]
    ) -> None:
        """Send one package of a trade (all of it when ``lines`` is empty).

        Raises ShipmentPushRefused for TOP's refusals (``isv.*``) and an unmapped
        courier; ChannelUnavailable (after the client's retries) for transport failures.
        """
        company = platform_courier(
            TAOBAO,
            self.courier_codes,
            courier,
            channel=self.name,
            external_order_id=external_order_id,
        )
        params: dict[str, Any] = {
            "tid": external_order_id,
            "out_sid": tracking_number,
            "company_code": company,
        }
        if lines:
            params["is_split"] = 1
            params["sub_tid"] = ",".join(lines)
        try:
            body = await self._client.call(SEND_METHOD, params)
        except TopApiError as exc:
            raise ShipmentPushRefused(
                self.name, external_order_id, exc.sub_code or str(exc.code), str(exc)
            ) from exc
        shipping = body.get("shipping")
        if not isinstance(shipping, dict) or shipping.get("is_success") is not True:
            raise ShipmentPushRefused(
                self.name, external_order_id, "not-successful", f"TOP answered {body!r}"
            )
