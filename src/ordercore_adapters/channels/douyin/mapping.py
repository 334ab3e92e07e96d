"""A 抖店 shop order (``order.searchList``'s ``shop_order_list[]``) mapped to the Order.

Public (抖店开放平台, 订单列表查询): ``order_id`` (text), ``order_status`` (an integer, see
:data:`DOUYIN_STATUSES`), ``create_time`` / ``update_time`` (unix seconds), amounts in
fen (``post_amount``; per line ``goods_price`` per unit, ``item_num``), ``buyer_words``,
``doudian_open_id``, the receiver as masked text (``mask_post_receiver``,
``mask_post_tel``, ``mask_post_addr`` with ``province.name`` ... ``detail``) and as
ciphertext (``encrypt_post_*``, decrypted only through the platform's 解密 API), and
``sku_order_list[]`` with the seller's SKU code in ``code`` (``out_sku_id`` on older
items) and the platform's ``sku_id``.

Masked values (``*``) and ciphertext (``#...#``; ``$$...$$`` for phones) mark their
section as masked and warn; the masked form is preferred. A line whose SKU falls back
to the platform's ``sku_id`` or ``product_id`` warns. Assumed: the status codes 103 and
21 (not in every version of the table) and that ``goods_price`` is the unit price.
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
    fen_to_yuan,
    platform_time,
    positive_int,
    status_table,
)
from ordercore.domain.orders import OrderStatus

__all__ = ["DOUYIN_MAPPING", "DOUYIN_STATUSES", "map_shop_order"]

DOUYIN_STATUSES: Final[Mapping[str, OrderStatus]] = {
    "1": OrderStatus.PENDING_PAYMENT,  # 待确认/待支付
    "103": OrderStatus.PENDING_PAYMENT,  # 部分支付
    "105": OrderStatus.PAID,  # 已支付
    "2": OrderStatus.PAID,  # 备货中
    "101": OrderStatus.SHIPPED,  # 部分发货
    "3": OrderStatus.SHIPPED,  # 已发货
    "5": OrderStatus.COMPLETED,  # 已完成
    "4": OrderStatus.CANCELLED,  # 已取消
    "21": OrderStatus.CANCELLED,  # 发货前退款完结
}
"""抖店 ``order_status`` -> ours."""

_SKU_SOURCES: Final = ("code", "out_sku_id", "sku_id", "product_id")


def private_text(value: Any, context: MappingContext, target: str) -> str:
    """Receiver data as given; masked (``*``) or encrypted (``#..#``, ``$$..$$``) marks it."""
    text = as_text(value, context, target)
    section = target.split(".", 1)[0]
    if len(text) > 2 and text[0] in "#$" and text[-1] == text[0]:
        kind = "encrypted"  # ciphertext may hold '*' too, so it is checked first
    elif "*" in text:
        kind = "masked"
    else:
        return text
    note = f"{section} data is {kind} by the platform"
    if note not in context.warnings:
        context.warnings.append(note)
    context.masked.add(section)
    return text


_UTC_TIME = platform_time("Asia/Shanghai")  # epoch seconds; wall-clock text as GMT+8

DOUYIN_MAPPING: Final = OrderMapping(
    fields=(
        FieldMap("external_id", "order_id", convert=as_text),
        FieldMap("status", "order_status", convert=status_table(DOUYIN_STATUSES)),
        FieldMap("created_at", "create_time", convert=_UTC_TIME),
        FieldMap("source_modified_at", "update_time", convert=_UTC_TIME),
        FieldMap("buyer_id", "doudian_open_id", convert=as_text, required=False),
        FieldMap("remark", "buyer_words", convert=as_text, required=False),
        FieldMap("shipping_fee", "post_amount", convert=fen_to_yuan, required=False),
        FieldMap(
            "receiver.name", ("mask_post_receiver", "encrypt_post_receiver"), convert=private_text
        ),
        FieldMap("receiver.phone", ("mask_post_tel", "encrypt_post_tel"), convert=private_text),
        FieldMap(
            "address.province",
            ("mask_post_addr.province.name", "encrypt_post_addr.province.name"),
            convert=as_text,
        ),
        FieldMap(
            "address.city",
            ("mask_post_addr.city.name", "encrypt_post_addr.city.name"),
            convert=as_text,
            required=False,
        ),
        FieldMap(
            "address.district",
            ("mask_post_addr.town.name", "encrypt_post_addr.town.name"),
            convert=as_text,
            required=False,
        ),
        FieldMap(
            "address.street",
            ("mask_post_addr.street.name", "encrypt_post_addr.street.name"),
            convert=as_text,
            required=False,
        ),
        FieldMap(
            "address.detail",
            ("mask_post_addr.detail", "encrypt_post_addr.detail"),
            convert=private_text,
        ),
    ),
    lines=LineMapping(
        "sku_order_list",
        fields=(
            FieldMap("sku", _SKU_SOURCES, convert=as_text),
            FieldMap("quantity", "item_num", convert=positive_int),
            FieldMap("unit_price", "goods_price", convert=fen_to_yuan),
            FieldMap("title", "product_name", convert=as_text, required=False),
            FieldMap("external_line_id", "order_id", convert=as_text, required=False),
        ),
    ),
    constants={"currency": "CNY"},
)


def map_shop_order(record: RawRecord) -> MappedOrder:
    """Map a shop order; warn where a line's SKU is the platform's id, not the seller's code."""
    mapped = DOUYIN_MAPPING.map(record)
    extra: list[str] = []
    lines = record.payload.get("sku_order_list")
    for index, line in enumerate(lines if isinstance(lines, list) else []):
        if not isinstance(line, Mapping):
            continue
        used = next((key for key in _SKU_SOURCES if line.get(key) not in (None, "")), None)
        if used in ("sku_id", "product_id"):
            extra.append(
                f"sku_order_list[{index}]: no code or out_sku_id, SKU taken from the "
                f"platform's {used} {line[used]!s}"
            )
    if not extra:
        return mapped
    return mapped.model_copy(update={"warnings": (*mapped.warnings, *extra)})
