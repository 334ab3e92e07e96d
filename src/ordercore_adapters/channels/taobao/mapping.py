"""A TOP trade (``taobao.trades.sold.increment.get``) mapped to the canonical Order.

The shape is TOP's public Trade object: ``tid`` (``tid_str`` when TOP sends it, since a
19-digit tid does not survive a JavaScript number), ``status``, ``created`` and
``modified`` (Asia/Shanghai wall clock), ``buyer_open_uid``, ``receiver_*``, ``post_fee``
and the sub-orders in ``orders.order[]`` (``oid``, ``num``, ``price``, ``title`` and the
SKU ids). Prices are yuan strings ("59.00"), kept exact.

The SKU of a line is the seller's own code where there is one: ``outer_sku_id`` (the
SKU's merchant code), else ``outer_iid`` (the item's merchant code), else TOP's own
``sku_id``, else ``num_iid``; falling back past the merchant codes is reported as a
warning, since TOP's ids rarely match a warehouse's SKUs.

Receiver data comes masked (``138****5678``, ``张*``) for most apps, or encrypted
(``~...~`` blocks, TOP's "OAID" privacy scheme); either marks the section as masked and
warns. Status codes map as :data:`TAOBAO_STATUSES` says; a code missing from the table
fails the mapping with a message naming it.
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

__all__ = ["TAOBAO_MAPPING", "TAOBAO_STATUSES", "TRADE_FIELDS", "map_trade"]

TAOBAO_STATUSES: Final[Mapping[str, OrderStatus]] = {
    "TRADE_NO_CREATE_PAY": OrderStatus.PENDING_PAYMENT,
    "WAIT_BUYER_PAY": OrderStatus.PENDING_PAYMENT,
    "PAY_PENDING": OrderStatus.PENDING_PAYMENT,
    "WAIT_PRE_AUTH_CONFIRM": OrderStatus.PENDING_PAYMENT,
    "WAIT_SELLER_SEND_GOODS": OrderStatus.PAID,
    "PAID_FORBID_CONSIGN": OrderStatus.PAID,
    "SELLER_CONSIGNED_PART": OrderStatus.SHIPPED,
    "WAIT_BUYER_CONFIRM_GOODS": OrderStatus.SHIPPED,
    "TRADE_BUYER_SIGNED": OrderStatus.SHIPPED,
    "TRADE_FINISHED": OrderStatus.COMPLETED,
    "TRADE_CLOSED": OrderStatus.CANCELLED,
    "TRADE_CLOSED_BY_TAOBAO": OrderStatus.CANCELLED,
}
"""TOP trade status -> ours. TRADE_CLOSED also covers a paid trade refunded in full."""

_STATUS_NOTES: Final[Mapping[str, str]] = {
    "PAID_FORBID_CONSIGN": "paid, but TOP forbids shipping it yet (PAID_FORBID_CONSIGN)",
    "SELLER_CONSIGNED_PART": "only part of the trade has shipped (SELLER_CONSIGNED_PART)",
}

TRADE_FIELDS: Final = (
    "tid,tid_str,status,created,modified,pay_time,buyer_open_uid,buyer_message,post_fee,"
    "payment,receiver_name,receiver_mobile,receiver_phone,receiver_state,receiver_city,"
    "receiver_district,receiver_town,receiver_address,receiver_zip,orders"
)
"""The ``fields`` the adapter asks TOP for: exactly what the mapping reads."""

_SKU_SOURCES: Final = ("outer_sku_id", "outer_iid", "sku_id", "num_iid")


def _trade_status(value: Any, context: MappingContext, target: str) -> OrderStatus:
    status: OrderStatus = _STATUS_TABLE(value, context, target)
    note = _STATUS_NOTES.get(str(value))
    if note:
        context.warnings.append(f"status: {note}")
    return status


_STATUS_TABLE = status_table(TAOBAO_STATUSES)


_SHANGHAI_TIME = platform_time("Asia/Shanghai")

TAOBAO_MAPPING: Final = OrderMapping(
    fields=(
        FieldMap("external_id", ("tid_str", "tid"), convert=as_text),
        FieldMap("status", "status", convert=_trade_status),
        FieldMap("created_at", "created", convert=_SHANGHAI_TIME),
        FieldMap("source_modified_at", "modified", convert=_SHANGHAI_TIME),
        FieldMap("buyer_id", "buyer_open_uid", convert=as_text, required=False),
        FieldMap("remark", "buyer_message", convert=as_text, required=False),
        FieldMap("shipping_fee", "post_fee", convert=yuan, required=False),
        FieldMap("receiver.name", "receiver_name", convert=private_text),
        FieldMap("receiver.phone", ("receiver_mobile", "receiver_phone"), convert=private_text),
        FieldMap("address.province", "receiver_state", convert=as_text),
        FieldMap("address.city", "receiver_city", convert=as_text, required=False),
        FieldMap("address.district", "receiver_district", convert=as_text, required=False),
        FieldMap("address.street", "receiver_town", convert=as_text, required=False),
        FieldMap("address.detail", "receiver_address", convert=private_text),
        FieldMap("address.postal_code", "receiver_zip", convert=as_text, required=False),
    ),
    lines=LineMapping(
        "orders.order",
        fields=(
            FieldMap("sku", _SKU_SOURCES, convert=as_text),
            FieldMap("quantity", "num", convert=positive_int),
            FieldMap("unit_price", "price", convert=yuan),
            FieldMap("title", "title", convert=as_text, required=False),
            FieldMap("external_line_id", ("oid_str", "oid"), convert=as_text, required=False),
        ),
    ),
    constants={"currency": "CNY"},
)
"""The declarative mapping of a TOP trade (used through :func:`map_trade`)."""


def map_trade(record: RawRecord) -> MappedOrder:
    """Map a fetched trade; warn where a line's SKU is TOP's id, not a merchant code."""
    mapped = TAOBAO_MAPPING.map(record)
    extra: list[str] = []
    lines = record.payload.get("orders", {}).get("order", [])
    for index, line in enumerate(lines if isinstance(lines, list) else []):
        if not isinstance(line, Mapping):
            continue
        used = next((key for key in _SKU_SOURCES if line.get(key) not in (None, "")), None)
        if used in ("sku_id", "num_iid"):
            extra.append(
                f"orders.order[{index}]: no outer_sku_id or outer_iid, SKU taken from "
                f"TOP's {used} {line[used]!s}"
            )
    if not extra:
        return mapped
    return mapped.model_copy(update={"warnings": (*mapped.warnings, *extra)})
