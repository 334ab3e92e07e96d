"""A JD POP order (``jingdong.pop.order.search``'s OrderSearchInfo) mapped to the Order.

Fields read (public, JOS docs of the POP order APIs): ``orderId``, ``orderState``,
``orderStartTime`` (created), ``modified`` (Asia/Shanghai wall clock), ``pin`` (buyer),
``orderRemark``, ``freightPrice`` (yuan string), ``consigneeInfo`` (``fullname``,
``mobile``/``telephone``, ``province``, ``city``, ``county``, ``town``, ``fullAddress``)
and ``itemInfoList[]`` (``outerSkuId``, ``skuId``, ``skuName``, ``itemTotal``,
``jdPrice`` in yuan).

A line's SKU is the seller's ``outerSkuId``; without one, JD's ``skuId`` is used and a
warning says so. Consignee data arrives masked (``*``) or encrypted: both mark the
section as masked (the ``~..~`` ciphertext shape is assumed to be recognisable as for
TOP; the marker function is the Taobao adapter's). Unknown states fail naming the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ordercore.domain.channels import MappedOrder, RawRecord
from ordercore.domain.mapping import (
    FieldMap,
    LineMapping,
    MappingContext,
    OrderMapping,
    as_text,
    platform_time,
    positive_int,
    status_table,
    yuan,
)
from ordercore.domain.orders import OrderStatus

from .._platform.privacy import private_text

__all__ = ["JD_MAPPING", "JD_STATUSES", "ORDER_FIELDS", "map_jd_order"]

JD_STATUSES: Final[Mapping[str, OrderStatus]] = {
    "WAIT_SELLER_STOCK_OUT": OrderStatus.PAID,
    "WAIT_SELLER_DELIVERY": OrderStatus.PAID,
    "WAIT_SEND_CODE": OrderStatus.PAID,
    "POP_ORDER_PAUSE": OrderStatus.PAID,
    "LOCKED": OrderStatus.PAID,
    "WAIT_GOODS_RECEIVE_CONFIRM": OrderStatus.SHIPPED,
    "FINISHED_L": OrderStatus.COMPLETED,
    "TRADE_CANCELED": OrderStatus.CANCELLED,
}
"""JOS orderState -> ours. The search only lists states asked for: all of these."""

_STATUS_NOTES: Final[Mapping[str, str]] = {
    "POP_ORDER_PAUSE": "JD paused the order (POP_ORDER_PAUSE): do not ship yet",
    "LOCKED": "JD locked the order (LOCKED, usually a pending refund): do not ship yet",
}

ORDER_FIELDS: Final = (
    "orderId,orderState,orderStartTime,modified,pin,orderRemark,freightPrice,"
    "consigneeInfo,itemInfoList"
)
"""The ``optional_fields`` asked for: exactly what the mapping reads."""

_STATUS_TABLE = status_table(JD_STATUSES)
_SHANGHAI_TIME = platform_time("Asia/Shanghai")


def _order_state(value: Any, context: MappingContext, target: str) -> OrderStatus:
    status: OrderStatus = _STATUS_TABLE(value, context, target)
    note = _STATUS_NOTES.get(str(value))
    if note:
        context.warnings.append(f"status: {note}")
    return status


JD_MAPPING: Final = OrderMapping(
    fields=(
        FieldMap("external_id", "orderId", convert=as_text),
        FieldMap("status", "orderState", convert=_order_state),
        FieldMap("created_at", "orderStartTime", convert=_SHANGHAI_TIME),
        FieldMap("source_modified_at", "modified", convert=_SHANGHAI_TIME),
        FieldMap("buyer_id", "pin", convert=as_text, required=False),
        FieldMap("remark", "orderRemark", convert=as_text, required=False),
        FieldMap("shipping_fee", "freightPrice", convert=yuan, required=False),
        FieldMap("receiver.name", "consigneeInfo.fullname", convert=private_text),
        FieldMap(
            "receiver.phone",
            ("consigneeInfo.mobile", "consigneeInfo.telephone"),
            convert=private_text,
        ),
        FieldMap("address.province", "consigneeInfo.province", convert=as_text),
        FieldMap("address.city", "consigneeInfo.city", convert=as_text, required=False),
        FieldMap("address.district", "consigneeInfo.county", convert=as_text, required=False),
        FieldMap("address.street", "consigneeInfo.town", convert=as_text, required=False),
        FieldMap("address.detail", "consigneeInfo.fullAddress", convert=private_text),
    ),
    lines=LineMapping(
        "itemInfoList",
        fields=(
            FieldMap("sku", ("outerSkuId", "skuId"), convert=as_text),
            FieldMap("quantity", "itemTotal", convert=positive_int),
            FieldMap("unit_price", "jdPrice", convert=yuan),
            FieldMap("title", "skuName", convert=as_text, required=False),
        ),
    ),
    constants={"currency": "CNY"},
)
"""The declarative mapping of a JD order (used through :func:`map_jd_order`)."""


def map_jd_order(record: RawRecord) -> MappedOrder:
    """Map a fetched JD order; warn where a line's SKU is JD's skuId, not outerSkuId."""
    mapped = JD_MAPPING.map(record)
    extra: list[str] = []
    lines = record.payload.get("itemInfoList", [])
    for index, line in enumerate(lines if isinstance(lines, list) else []):
        if isinstance(line, Mapping) and line.get("outerSkuId") in (None, ""):
            extra.append(
                f"itemInfoList[{index}]: no outerSkuId, SKU taken from JD's skuId "
                f"{line.get('skuId')!s}"
            )
    if not extra:
        return mapped
    return mapped.model_copy(update={"warnings": (*mapped.warnings, *extra)})
