"""A Pinduoduo order (``pdd.order.number.list.increment.get``) mapped to the Order.

Fields read (public, the open platform's order API docs): ``order_sn``,
``order_status`` (1 waiting to ship, 2 shipped, 3 received), ``refund_status`` (1 none
or closed, 2 after-sale in progress, 3 refunding, 4 refunded), ``created_time`` and
``updated_at`` (Asia/Shanghai wall clock), ``buyer_memo``, ``postage``, ``receiver_name``,
``receiver_phone``, ``province``, ``city``, ``town`` (district), ``address`` and
``item_list[]`` (``outer_id``, ``sku_id``, ``goods_name``, ``goods_count``,
``goods_price``).

Amounts: the docs of this API give ``pay_amount``, ``goods_amount`` and
``discount_amount`` in yuan (元, decimal strings) and leave the unit of ``postage`` and
``goods_price`` unstated, so the unit is a choice: ``amount_unit="yuan"`` (the default,
:data:`PDD_MAPPING`, exact decimals) or ``"fen"`` (:data:`PDD_MAPPING_FEN`, whole
numbers through :func:`ordercore.domain.mapping.fen_to_yuan`, exact: 1999 -> 19.99).
Either rejects a value in the other unit's shape it cannot read, naming it.

A line's SKU is the seller's ``outer_id``; without one, Pinduoduo's ``sku_id`` is used
and a warning says so. Receiver data arrives masked (``*``) or encrypted (``~..~``
ciphertext): both mark the section masked (the Taobao adapter's marker is reused). A
refunded order (refund_status 4) is cancelled whatever its order_status; an after-sale
in progress warns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ordercore.domain.channels import MappedOrder, RawRecord
from ordercore.domain.mapping import (
    Converter,
    FieldMap,
    LineMapping,
    OrderMapping,
    as_text,
    fen_to_yuan,
    platform_time,
    positive_int,
    status_table,
    yuan,
)
from ordercore.domain.orders import OrderStatus

from .._platform.privacy import private_text

__all__ = [
    "AMOUNT_UNITS",
    "PDD_MAPPING",
    "PDD_MAPPING_FEN",
    "PDD_STATUSES",
    "REFUNDED",
    "map_pdd_order",
]

AMOUNT_UNITS: Final = ("yuan", "fen")

PDD_STATUSES: Final[Mapping[str, OrderStatus]] = {
    "1": OrderStatus.PAID,
    "2": OrderStatus.SHIPPED,
    "3": OrderStatus.COMPLETED,
}
"""order_status -> ours (the increment API lists paid orders only)."""
REFUNDED: Final = "4"
"""refund_status 4 (退款成功): the order is cancelled."""
_REFUND_NOTES: Final[Mapping[str, str]] = {
    "2": "an after-sale is in progress (refund_status 2): check before shipping",
    "3": "a refund is in progress (refund_status 3): do not ship yet",
}

_SHANGHAI_TIME = platform_time("Asia/Shanghai")


def _mapping(money: Converter) -> OrderMapping:
    return OrderMapping(
        fields=(
            FieldMap("external_id", "order_sn", convert=as_text),
            FieldMap("status", "order_status", convert=status_table(PDD_STATUSES)),
            FieldMap("created_at", "created_time", convert=_SHANGHAI_TIME),
            FieldMap("source_modified_at", "updated_at", convert=_SHANGHAI_TIME),
            FieldMap("remark", "buyer_memo", convert=as_text, required=False),
            FieldMap("shipping_fee", "postage", convert=money, required=False),
            FieldMap("receiver.name", "receiver_name", convert=private_text),
            FieldMap("receiver.phone", "receiver_phone", convert=private_text),
            FieldMap("address.province", "province", convert=as_text),
            FieldMap("address.city", "city", convert=as_text, required=False),
            FieldMap("address.district", "town", convert=as_text, required=False),
            FieldMap("address.detail", "address", convert=private_text),
        ),
        lines=LineMapping(
            "item_list",
            fields=(
                FieldMap("sku", ("outer_id", "sku_id"), convert=as_text),
                FieldMap("quantity", "goods_count", convert=positive_int),
                FieldMap("unit_price", "goods_price", convert=money),
                FieldMap("title", "goods_name", convert=as_text, required=False),
            ),
        ),
        constants={"currency": "CNY"},
    )


PDD_MAPPING: Final = _mapping(yuan)
"""Amounts in yuan (the default; used through :func:`map_pdd_order`)."""
PDD_MAPPING_FEN: Final = _mapping(fen_to_yuan)
"""Amounts in fen (``amount_unit="fen"``)."""


def map_pdd_order(record: RawRecord, *, amount_unit: str = "yuan") -> MappedOrder:
    """Map a fetched order: refunds cancel it, SKU fallbacks and after-sales warn."""
    if amount_unit not in AMOUNT_UNITS:
        raise ValueError(f"pinduoduo: amount_unit must be yuan or fen, got {amount_unit!r}")
    mapped = (PDD_MAPPING if amount_unit == "yuan" else PDD_MAPPING_FEN).map(record)
    extra: list[str] = []
    refund = str(record.payload.get("refund_status", ""))
    if refund in _REFUND_NOTES:
        extra.append(f"status: {_REFUND_NOTES[refund]}")
    lines = record.payload.get("item_list", [])
    for index, line in enumerate(lines if isinstance(lines, list) else []):
        if isinstance(line, Mapping) and line.get("outer_id") in (None, ""):
            extra.append(
                f"item_list[{index}]: no outer_id, SKU taken from Pinduoduo's sku_id "
                f"{line.get('sku_id')!s}"
            )
    order = mapped.order
    if refund == REFUNDED:
        order = order.model_copy(update={"status": OrderStatus.CANCELLED})
    if not extra and order is mapped.order:
        return mapped
    return MappedOrder(order=order, warnings=(*mapped.warnings, *extra))
