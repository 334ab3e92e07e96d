"""A Shopify-style REST order (``orders.json``, and the ``orders/*`` webhook bodies) mapped.

Public (Shopify's REST Admin API, Order resource): ``id``, ``created_at`` and
``updated_at`` as ISO 8601 with the shop's UTC offset (``2026-11-11T08:00:05+08:00``),
``cancelled_at``, ``financial_status``, ``fulfillment_status``, ``currency`` and every
amount as decimal text in it (``"59.00"``), ``customer.id``, ``note``,
``total_shipping_price_set.shop_money.amount``, ``shipping_address`` and
``line_items[]`` (``id``, ``sku``, ``variant_id``, ``quantity``, ``price``, ``title``).

The status is derived, in this order: ``cancelled_at`` set -> cancelled; a fulfilled
order -> shipped; else :data:`SHOPIFY_FINANCIAL_STATUSES` on ``financial_status``. A
line without a ``sku`` falls back to its ``variant_id`` with a warning. Shipping
address values that are redacted (``*``; apps without protected-customer-data access)
mark their section as masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

from ordercore.domain.channels import MappedOrder, RawRecord
from ordercore.domain.mapping import (
    FieldMap,
    LineMapping,
    OrderMapping,
    as_text,
    masked_text,
    positive_int,
    status_table,
)
from ordercore.domain.orders import OrderStatus
from ordercore.errors import FieldError, InvalidOrder
from ordercore_adapters.channels._platform.values import decimal_money, iso_time

__all__ = ["SHOPIFY_FINANCIAL_STATUSES", "map_shopify_order"]

SHOPIFY_FINANCIAL_STATUSES: Final[Mapping[str, OrderStatus]] = {
    "pending": OrderStatus.PENDING_PAYMENT,
    "authorized": OrderStatus.PENDING_PAYMENT,
    "partially_paid": OrderStatus.PENDING_PAYMENT,
    "paid": OrderStatus.PAID,
    "partially_refunded": OrderStatus.PAID,
    "refunded": OrderStatus.CANCELLED,
    "voided": OrderStatus.CANCELLED,
}
"""``financial_status`` -> ours, for orders neither cancelled nor fulfilled."""

_DERIVED: Final = "order_status"
_STATUS_TABLE: Final[Mapping[str, OrderStatus]] = {
    **SHOPIFY_FINANCIAL_STATUSES,
    "cancelled": OrderStatus.CANCELLED,
    "fulfilled": OrderStatus.SHIPPED,
}


@lru_cache(maxsize=16)
def _mapping(currency: str) -> OrderMapping:
    money = decimal_money(currency)
    return OrderMapping(
        fields=(
            FieldMap("external_id", "id", convert=as_text),
            FieldMap("status", _DERIVED, convert=status_table(_STATUS_TABLE)),
            FieldMap("created_at", "created_at", convert=iso_time),
            FieldMap("source_modified_at", "updated_at", convert=iso_time),
            FieldMap("buyer_id", "customer.id", convert=as_text, required=False),
            FieldMap("remark", "note", convert=as_text, required=False),
            FieldMap(
                "shipping_fee",
                "total_shipping_price_set.shop_money.amount",
                convert=money,
                required=False,
            ),
            FieldMap("receiver.name", "shipping_address.name", convert=masked_text, required=False),
            FieldMap(
                "receiver.phone",
                ("shipping_address.phone", "phone"),
                convert=masked_text,
                required=False,
            ),
            FieldMap(
                "receiver.email", ("email", "contact_email"), convert=masked_text, required=False
            ),
            FieldMap(
                "address.country", "shipping_address.country_code", convert=as_text, required=False
            ),
            FieldMap(
                "address.province", "shipping_address.province", convert=as_text, required=False
            ),
            FieldMap("address.city", "shipping_address.city", convert=as_text, required=False),
            FieldMap(
                "address.street", "shipping_address.address2", convert=masked_text, required=False
            ),
            FieldMap(
                "address.detail", "shipping_address.address1", convert=masked_text, required=False
            ),
            FieldMap(
                "address.postal_code", "shipping_address.zip", convert=as_text, required=False
            ),
        ),
        lines=LineMapping(
            "line_items",
            fields=(
                FieldMap("sku", ("sku", "variant_id"), convert=as_text),
                FieldMap("quantity", "quantity", convert=positive_int),
                FieldMap("unit_price", "price", convert=money),
                FieldMap("title", "title", convert=as_text, required=False),
                FieldMap("external_line_id", "id", convert=as_text, required=False),
            ),
        ),
        constants={"currency": currency},
    )


def _derived_status(payload: Mapping[str, Any]) -> object:
    if payload.get("cancelled_at"):
        return "cancelled"
    if payload.get("fulfillment_status") == "fulfilled":
        return "fulfilled"
    return payload.get("financial_status")


def map_shopify_order(record: RawRecord) -> MappedOrder:
    """Map one order; warn where a line's SKU is its variant id."""
    payload = record.payload
    currency = payload.get("currency")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isupper():
        raise InvalidOrder(
            [FieldError("currency", "must be an ISO 4217 code like CNY", currency)],
            subject=f"{record.channel} order {record.external_id}",
        )
    derived = record.model_copy(update={"payload": {**payload, _DERIVED: _derived_status(payload)}})
    mapped = _mapping(currency).map(derived)
    extra: list[str] = []
    lines = payload.get("line_items")
    for index, line in enumerate(lines if isinstance(lines, list) else []):
        if isinstance(line, Mapping) and line.get("sku") in (None, ""):
            extra.append(
                f"line_items[{index}]: no sku, SKU taken from variant_id {line.get('variant_id')}"
            )
    if not extra:
        return mapped
    return mapped.model_copy(update={"warnings": (*mapped.warnings, *extra)})
