"""Douyin shipment push-back (发货回传): ``order.logisticsAdd`` and multi-pack.

A package holding the whole order goes through ``order.logisticsAdd`` (``order_id``,
``company_code``, ``logistics_code``); a package of a split order goes through
``order.logisticsAddMultiPack`` with one pack listing its sub-orders
(``shipped_order_info``: the ``sku_order_id`` of each line) and a ``request_id`` derived
from (order, tracking number), which Douyin uses to recognise a repeated request. Our
courier code becomes Douyin's ``company_code`` through
:data:`~.._platform.courier_codes.DOUYIN` and the adapter's ``courier_codes``.

Assumed: that ``order.logisticsAdd`` for a tracking number Douyin already holds is
answered as success; every other refusal is final (ShipmentPushRefused).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

from ordercore.errors import (
    ChannelAuthExpired,
    ChannelUnavailable,
    OrderCoreError,
    ShipmentPushRefused,
)

from .._platform.courier_codes import DOUYIN, CourierCodeOverrides, platform_courier

__all__ = ["ADD", "ADD_MULTI_PACK", "DouyinShipments"]

ADD: Final = "order.logisticsAdd"
ADD_MULTI_PACK: Final = "order.logisticsAddMultiPack"


class DouyinShipments(CourierCodeOverrides):
    """The ShipmentPushPort side of :class:`~.adapter.DouyinChannel` (a mixin)."""

    name: str
    call: Callable[[str, Mapping[str, object]], Awaitable[dict[str, Any]]]

    async def push_shipment(
        self, external_order_id: str, courier: str, tracking_number: str, lines: Sequence[str]
    ) -> None:
        """Ship the whole order, or one pack of its sub-orders (``lines``).

        Raises ShipmentPushRefused for Douyin's refusals and an unmapped courier.
        """
        company = platform_courier(
            DOUYIN,
            self.courier_codes,
            courier,
            channel=self.name,
            external_order_id=external_order_id,
        )
        if lines:
            request_id = hashlib.sha256(
                f"{external_order_id}:{tracking_number}".encode()
            ).hexdigest()[:32]
            method = ADD_MULTI_PACK
            params: dict[str, Any] = {
                "order_id": external_order_id,
                "request_id": request_id,
                "pack_list": [
                    {
                        "shipped_order_info": [
                            {"shipped_order_id": line, "shipped_num": 1} for line in lines
                        ],
                        "logistics_code": tracking_number,
                        "company_code": company,
                    }
                ],
            }
        else:
            method = ADD
            params = {
                "order_id": external_order_id,
                "company_code": company,
                "logistics_code": tracking_number,
            }
        try:
            await self.call(method, params)
        except (ChannelAuthExpired, ChannelUnavailable):
            raise
        except OrderCoreError as exc:  # DouyinApiError: a refusal
            code = str(getattr(exc, "sub_code", "") or getattr(exc, "code", ""))
            raise ShipmentPushRefused(self.name, external_order_id, code, str(exc)) from exc
