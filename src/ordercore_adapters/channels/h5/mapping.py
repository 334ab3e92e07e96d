"""The H5 store's order JSON (schema ``h5.order.v1``) mapped to the canonical Order.

The shape is ours (the seller's own store sends it), so it is plain and versioned::

    {
      "schema": "h5.order.v1",
      "id": "H5-20261111-0001",
      "status": "paid",                      # pending_payment | paid | shipped | completed
                                             # | cancelled
      "created_at": "2026-11-11T08:00:05+08:00",   # ISO 8601, offset required
      "updated_at": "2026-11-11T08:01:10.250+08:00",
      "currency": "CNY",                     # ISO 4217; every amount is in it
      "buyer_id": "u-42",                    # optional
      "note": "",                            # optional, the buyer's message
      "shipping_fee": "10.00",               # decimal text, optional
      "receiver": {"name": "张三", "phone": "13800005678", "email": ""},
      "address": {"country": "CN", "province": "浙江省", "city": "杭州市",
                  "district": "西湖区", "street": "", "detail": "文三路 1 号",
                  "postal_code": "310012"},
      "lines": [{"id": "L1", "sku": "TEE-BLK-M", "quantity": 2,
                 "unit_price": "59.00", "title": "T恤"}]
    }

A value the store masked (``138****5678``) marks its section as masked. A schema other
than ``h5.order.v1`` fails the mapping naming it (a v2 is a new mapping, not a guess).
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

__all__ = ["H5_SCHEMA", "H5_STATUSES", "map_h5_order"]

H5_SCHEMA: Final = "h5.order.v1"
H5_STATUSES: Final[Mapping[str, OrderStatus]] = {
    "pending_payment": OrderStatus.PENDING_PAYMENT,
    "paid": OrderStatus.PAID,
    "shipped": OrderStatus.SHIPPED,
    "completed": OrderStatus.COMPLETED,
    "cancelled": OrderStatus.CANCELLED,
}


@lru_cache(maxsize=16)
def _mapping(currency: str) -> OrderMapping:
    money = decimal_money(currency)
    return OrderMapping(
        fields=(
            FieldMap("external_id", "id", convert=as_text),
            FieldMap("status", "status", convert=status_table(H5_STATUSES)),
            FieldMap("created_at", "created_at", convert=iso_time),
            FieldMap("source_modified_at", "updated_at", convert=iso_time),
            FieldMap("buyer_id", "buyer_id", convert=as_text, required=False),
            FieldMap("remark", "note", convert=as_text, required=False),
            FieldMap("shipping_fee", "shipping_fee", convert=money, required=False),
            FieldMap("receiver.name", "receiver.name", convert=masked_text),
            FieldMap("receiver.phone", "receiver.phone", convert=masked_text),
            FieldMap("receiver.email", "receiver.email", convert=masked_text, required=False),
            FieldMap("address.country", "address.country", convert=as_text, required=False),
            FieldMap("address.province", "address.province", convert=as_text),
            FieldMap("address.city", "address.city", convert=as_text, required=False),
            FieldMap("address.district", "address.district", convert=as_text, required=False),
            FieldMap("address.street", "address.street", convert=as_text, required=False),
            FieldMap("address.detail", "address.detail", convert=masked_text),
            FieldMap("address.postal_code", "address.postal_code", convert=as_text, required=False),
        ),
        lines=LineMapping(
            "lines",
            fields=(
                FieldMap("sku", "sku", convert=as_text),
                FieldMap("quantity", "quantity", convert=positive_int),
                FieldMap("unit_price", "unit_price", convert=money),
                FieldMap("title", "title", convert=as_text, required=False),
                FieldMap("external_line_id", "id", convert=as_text, required=False),
            ),
        ),
        constants={"currency": currency},
    )


def map_h5_order(record: RawRecord) -> MappedOrder:
    """Map one ``h5.order.v1`` payload (InvalidOrder names the field and value)."""
    payload: dict[str, Any] = record.payload
    subject = f"{record.channel} order {record.external_id}"
    schema = payload.get("schema")
    if schema != H5_SCHEMA:
        raise InvalidOrder(
            [FieldError("schema", f"must be {H5_SCHEMA!r}", schema)], subject=subject
        )
    currency = payload.get("currency")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isupper():
        raise InvalidOrder(
            [FieldError("currency", "must be an ISO 4217 code like CNY", currency)], subject=subject
        )
    return _mapping(currency).map(record)
