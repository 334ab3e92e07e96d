"""Pinduoduo shipment push-back (发货回传): ``pdd.logistics.online.send`` and extra packages.

PDD ships an order once, with one tracking number (``order_sn``, ``logistics_id``,
``tracking_number``); further packages of a split order are added with
``pdd.order.upload.extra.logistic`` (``extra_track_list``). The adapter sends the first
through ``online.send``; when PDD answers that the order has shipped already, the package
goes up as an extra tracking number instead. Our courier code becomes PDD's numeric
``logistics_id`` through :data:`~.._platform.courier_codes.PINDUODUO` and the adapter's
``courier_codes`` overrides.

Assumed (PDD publishes no error catalogue for these): the "already shipped" error code
:data:`ALREADY_SHIPPED` and that re-sending a tracking number PDD holds is answered as
success.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final

from ordercore.errors import ShipmentPushRefused

from .._platform.courier_codes import PINDUODUO, CourierCodeOverrides, platform_courier
from .client import PddApiError, PddClient

__all__ = ["ALREADY_SHIPPED", "EXTRA_API", "SEND_API", "PddShipments"]

SEND_API: Final = "pdd.logistics.online.send"
EXTRA_API: Final = "pdd.order.upload.extra.logistic"
ALREADY_SHIPPED: Final = "52101"
"""PDD's answer to ``online.send`` for an order that shipped already (assumed code)."""


class PddShipments(CourierCodeOverrides):
    """The ShipmentPushPort side of :class:`~.adapter.PinduoduoChannel` (a mixin)."""

    name: str
    _client: PddClient

    async def push_shipment(
        self, external_order_id: str, courier: str, tracking_number: str, lines: Sequence[str]
    ) -> None:
        """Ship the order with this package, or add it as an extra package when shipped.

        ``lines`` are not sent: PDD tracks packages per order, not per line.
        Raises ShipmentPushRefused for PDD's refusals and an unmapped courier.
        """
        logistics_id = platform_courier(
            PINDUODUO,
            self.courier_codes,
            courier,
            channel=self.name,
            external_order_id=external_order_id,
        )
        try:
            try:
                body = await self._client.call(
                    SEND_API,
                    {
                        "order_sn": external_order_id,
                        "logistics_id": logistics_id,
                        "tracking_number": tracking_number,
                    },
                )
            except PddApiError as exc:
                if exc.code != ALREADY_SHIPPED:
                    raise
                track = [{"shipping_id": int(logistics_id), "tracking_number": tracking_number}]
                body = await self._client.call(
                    EXTRA_API,
                    {"order_sn": external_order_id, "extra_track_list": json.dumps(track)},
                )
        except PddApiError as exc:
            raise ShipmentPushRefused(self.name, external_order_id, exc.code, str(exc)) from exc
        if body.get("is_success") is not True:
            raise ShipmentPushRefused(
                self.name, external_order_id, "not-successful", f"PDD answered {body!r}"
            )
