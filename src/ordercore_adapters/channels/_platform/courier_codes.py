"""Our courier codes -> each platform's logistics company code, as data.

A shipment names its courier by our code (the courier adapter's ``code``: ``zto``,
``sf``...); every platform wants its own: TOP a ``company_code`` (``ZTO``), Pinduoduo a
numeric ``logistics_id``, JD a ``logiCoprId``, Douyin a ``company_code`` (``zhongtong``),
Shopify a ``tracking_company`` name. The tables below are the defaults; an adapter's
``courier_codes`` (set per shop) override and extend them.

Sources: TOP's and Douyin's codes follow their public company lists
(``taobao.logistics.companies.get``, ``/order/logisticsCompanyList``); the numeric ids
of Pinduoduo (``pdd.logistics.companies.get``) and JD (``jingdong.ldop...``,
``360buy.get.vender.all.delivery.company``) are **assumed** from public samples and must
be checked against the shop's own company list before going live.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ordercore.errors import ShipmentPushRefused

__all__ = [
    "DOUYIN",
    "JD",
    "PINDUODUO",
    "SHOPIFY",
    "TAOBAO",
    "UNMAPPED",
    "CourierCodeOverrides",
    "platform_courier",
]

UNMAPPED: Final = "courier-unmapped"
"""The refusal code when a courier has no platform code (add it to ``courier_codes``)."""

TAOBAO: Final[Mapping[str, str]] = {
    "zto": "ZTO",
    "yto": "YTO",
    "sto": "STO",
    "yunda": "YUNDA",
    "sf": "SF",
    "ems": "EMS",
    "jd": "JD",
    "best": "HTKY",
    "deppon": "DBKD",
    "post": "POSTB",
}
PINDUODUO: Final[Mapping[str, str]] = {
    "zto": "115",
    "yto": "85",
    "sto": "1",
    "yunda": "121",
    "sf": "44",
    "ems": "118",
    "jd": "120",
    "best": "3",
    "deppon": "131",
    "post": "132",
}
JD: Final[Mapping[str, str]] = {
    "zto": "1499",
    "yto": "463",
    "sto": "470",
    "yunda": "1327",
    "sf": "467",
    "ems": "465",
    "jd": "2087",
    "best": "1748",
    "deppon": "3046",
    "post": "2170",
}
DOUYIN: Final[Mapping[str, str]] = {
    "zto": "zhongtong",
    "yto": "yuantong",
    "sto": "shentong",
    "yunda": "yunda",
    "sf": "shunfeng",
    "ems": "ems",
    "jd": "jd",
    "best": "huitongkuaidi",
    "deppon": "debangwuliu",
    "post": "youzhengguonei",
}
SHOPIFY: Final[Mapping[str, str]] = {
    "zto": "ZTO Express",
    "yto": "YTO Express",
    "sto": "STO Express",
    "yunda": "Yunda Express",
    "sf": "SF Express",
    "ems": "China EMS (ePacket)",
    "jd": "JD Logistics",
    "best": "Best Express",
    "deppon": "Deppon Express",
    "post": "China Post",
}


def platform_courier(
    table: Mapping[str, str],
    overrides: Mapping[str, str],
    courier: str,
    *,
    channel: str,
    external_order_id: str,
) -> str:
    """The platform's code for our ``courier`` (overrides first, then the table).

    Raises ShipmentPushRefused (``courier-unmapped``): a push without the platform's code
    would be refused anyway, and a retry will not add the mapping.
    """
    code = overrides.get(courier) or table.get(courier)
    if not code:
        known = ", ".join(sorted({*table, *overrides}))
        raise ShipmentPushRefused(
            channel,
            external_order_id,
            UNMAPPED,
            f"no platform code for courier {courier!r}; set courier_codes (known: {known})",
        )
    return code


class CourierCodeOverrides:
    """Gives a channel adapter a per-shop ``courier_codes`` dict (our code -> platform's)."""

    _courier_overrides: dict[str, str]

    @property
    def courier_codes(self) -> dict[str, str]:
        """This shop's overrides and additions to the default table; edit in place."""
        try:
            return self._courier_overrides
        except AttributeError:
            self._courier_overrides = {}
            return self._courier_overrides
