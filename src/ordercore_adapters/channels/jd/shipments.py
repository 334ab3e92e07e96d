"""JD shipment push-back (发货回传) through ``jingdong.pop.order.shipment``.

``360buy_param_json`` carries ``orderId``, ``logiCoprId`` (JD's numeric company id,
mapped from our courier code through :data:`~.._platform.courier_codes.JD` and the
adapter's ``courier_codes``) and ``logiNo``. The answer's ``sopjosshipment_result``
says whether JD took it; ``success: false`` is a refusal (ShipmentPushRefused).

JD POP ships an order once: a split order's packages must go in one call with their
tracking numbers joined by ``|``; a package pushed after the order shipped is refused
(the push ends ``failed`` with a ticket, for the seller to add it in the JD back office).
Assumed: that a re-send of the tracking number JD holds is answered as success.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ordercore.errors import ShipmentPushRefused

from .._platform.courier_codes import JD, CourierCodeOverrides, platform_courier
from .client import JosApiError, JosClient

__all__ = ["SHIPMENT_METHOD", "JdShipments"]

SHIPMENT_METHOD: Final = "jingdong.pop.order.shipment"


class JdShipments(CourierCodeOverrides):
    """The ShipmentPushPort side of :class:`~.adapter.JdChannel` (a mixin)."""

    name: str
    _client: JosClient

    async def push_shipment(
        self, external_order_id: str, courier: str, tracking_number: str, lines: Sequence[str]
    ) -> None:
        """Ship the order with this package (``lines`` are not sent: JD ships whole orders).

        Raises ShipmentPushRefused for JD's refusals and an unmapped courier.
        """
        company = platform_courier(
            JD, self.courier_codes, courier, channel=self.name, external_order_id=external_order_id
        )
        try:
            body = await self._client.call(
                SHIPMENT_METHOD,
                {"orderId": external_order_id, "logiCoprId": company, "logiNo": tracking_number},
            )
        except JosApiError as exc:
            raise ShipmentPushRefused(self.name, external_order_id, exc.code, str(exc)) from exc
        result = body.get("sopjosshipment_result")
        if not isinstance(result, dict) or result.get("success") is not True:
            detail = result if isinstance(result, dict) else body
            code = str(detail.get("errorCode", "not-successful"))
            message = self._client.redact(str(detail.get("chineseErrCode", detail)))
            raise ShipmentPushRefused(self.name, external_order_id, code, message)
