"""Declarative field mapping from platform payloads to the canonical order."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest

from ordercore.domain.channels import RawRecord
from ordercore.domain.mapping import (
    FieldMap,
    LineMapping,
    OrderMapping,
    as_text,
    fen_to_yuan,
    masked_text,
    platform_time,
    positive_int,
    status_table,
    yuan,
)
from ordercore.domain.orders import OrderStatus
from ordercore.errors import InvalidOrder

SHOP_TIME = platform_time("Asia/Shanghai")
MAPPING = OrderMapping(
    fields=(
        FieldMap(
            "status",
            "status",
            status_table({"WAIT_SELLER_SEND_GOODS": "paid", "WAIT_BUYER_PAY": "pending_payment"}),
        ),
        FieldMap("created_at", "created", SHOP_TIME),
        FieldMap("buyer_id", "buyer_open_uid", as_text, required=False),
        FieldMap("receiver.name", "receiver_name", masked_text),
        FieldMap("receiver.phone", ("receiver_mobile", "receiver_phone"), masked_text),
        FieldMap("address.province", "receiver_state", as_text),
        FieldMap("address.city", "receiver_city", as_text),
        FieldMap("address.district", "receiver_district", as_text, required=False),
        FieldMap("address.detail", "receiver_address", masked_text),
        FieldMap("shipping_fee", "post_fee", yuan, default={"amount": "0"}),
    ),
    lines=LineMapping(
        "orders.order",
        fields=(
            FieldMap("sku", ("outer_sku_id", "outer_iid", "sku_id"), as_text),
            FieldMap("quantity", "num", positive_int),
            FieldMap("unit_price", "price", yuan),
            FieldMap("title", "title", as_text, required=False),
            FieldMap("external_line_id", "oid", as_text),
        ),
    ),
)


def payload(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "tid": 4321,
        "status": "WAIT_SELLER_SEND_GOODS",
        "created": "2026-11-11 00:30:00",
        "buyer_open_uid": "AAH1",
        "receiver_name": "张三",
        "receiver_mobile": "13800138000",
        "receiver_state": "浙江省",
        "receiver_city": "杭州市",
        "receiver_district": "西湖区",
        "receiver_address": "文三路90号",
        "post_fee": "6.00",
        "orders": {
            "order": [
                {"oid": 1, "outer_sku_id": "RED-M", "sku_id": 99, "num": 2, "price": "19.90"},
                {"oid": 2, "outer_sku_id": "", "outer_iid": "BLUE", "num": "1", "price": "9.9"},
            ]
        },
    }
    base.update(changes)
    return base


def record(data: dict[str, Any]) -> RawRecord:
    return RawRecord(
        channel="taobao",
        external_id=str(data["tid"]),
        modified_at=datetime(2026, 11, 10, 16, 40, tzinfo=UTC),
        payload=data,
    )


def test_a_platform_order_maps_to_the_canonical_order() -> None:
    """Fields, fallbacks, money and times land where the mapping says."""
    mapped = MAPPING.map(record(payload()))
    order = mapped.order
    assert order.id == "taobao:4321"
    assert (order.channel, order.external_id, order.status) == ("taobao", "4321", OrderStatus.PAID)
    assert order.created_at == datetime(2026, 11, 10, 16, 30, tzinfo=UTC)  # 00:30 in Beijing
    assert [line.sku for line in order.lines] == ["RED-M", "BLUE"]  # outer id, then fallback
    assert order.total.amount == Decimal("55.70")
    assert order.address.one_line() == "浙江省杭州市西湖区文三路90号"
    assert mapped.warnings == ()
    assert not order.address.masked


def test_masked_receiver_data_is_marked_and_warned() -> None:
    """Masked phones and addresses mark their section and say so in the warnings."""
    mapped = MAPPING.map(
        record(payload(receiver_mobile="138****8000", receiver_address="文三路**号"))
    )
    assert mapped.order.receiver.masked
    assert mapped.order.address.masked
    assert set(mapped.warnings) == {
        "receiver data is masked by the platform",
        "address data is masked by the platform",
    }


def test_every_failure_names_channel_order_field_and_value() -> None:
    """All bad fields are reported at once, each with its platform path and value."""
    bad = payload(status="TRADE_UNKNOWN", created="yesterday")
    bad["orders"]["order"][1]["num"] = "x"
    del bad["receiver_state"]
    with pytest.raises(InvalidOrder) as caught:
        MAPPING.map(record(bad))
    message = str(caught.value)
    assert message.startswith("invalid taobao order 4321: ")
    by_field = {error.field: error for error in caught.value.errors}
    assert by_field["status"].value == "TRADE_UNKNOWN"
    assert "known: WAIT_BUYER_PAY, WAIT_SELLER_SEND_GOODS" in by_field["status"].message
    assert by_field["created"].value == "yesterday"
    assert by_field["orders.order[1].num"].value == "x"
    assert "receiver_state" in by_field


def test_an_order_without_lines_is_refused() -> None:
    """A payload with no line items names where the lines were expected."""
    with pytest.raises(InvalidOrder, match=r"orders\.order: the order has no lines"):
        MAPPING.map(record(payload(orders={"order": []})))


@pytest.mark.parametrize(("fen", "expected"), [(1990, "19.90"), ("5", "0.05"), (0, "0")])
def test_fen_become_yuan_exactly(fen: object, expected: str) -> None:
    """Integer fen convert to yuan without float rounding."""
    money = fen_to_yuan(fen, None, "unit_price")  # type: ignore[arg-type]
    assert money["amount"] == Decimal(expected)


def test_epoch_seconds_are_utc() -> None:
    """Platforms that send epoch seconds (Douyin, Pinduoduo) map to the same instant in UTC."""
    assert SHOP_TIME(1762878600, None, "created_at") == datetime(  # type: ignore[arg-type]
        2025, 11, 11, 16, 30, tzinfo=UTC
    )


NESTED = OrderMapping(
    fields=(
        FieldMap("status", "trade.state", status_table({"PAID": "paid"})),
        FieldMap("created_at", "trade.created", SHOP_TIME),
        FieldMap("receiver.phone", ("consignee.contact.mobile", "consignee.phone"), masked_text),
    ),
    lines=LineMapping(
        "trade.items",
        fields=(
            FieldMap("sku", ("spec.code", "sku_id"), as_text),
            FieldMap("quantity", "count", positive_int, default=1),
        ),
    ),
)


def test_dotted_sources_fall_back_through_nested_and_read_only_objects() -> None:
    """Dotted paths, fallbacks and defaults work in nested and non-dict mappings alike."""
    data = {
        "tid": 7,
        "trade": {
            "state": "PAID",
            "created": "2026-11-11 08:00:00",
            "items": [
                MappingProxyType({"spec": MappingProxyType({"code": "RED"}), "count": "2"}),
                {"spec": {"code": ""}, "sku_id": 55},
            ],
        },
        "consignee": {"contact": {"mobile": None}, "phone": "13800138000"},
    }
    order = NESTED.map(record(data)).order
    assert order.receiver.phone == "13800138000"
    assert [(line.sku, line.quantity) for line in order.lines] == [("RED", 2), ("55", 1)]


def test_missing_nested_fields_name_every_fallback_path() -> None:
    """A missing line field names each path it tried, under the line's own index."""
    data = {
        "tid": 8,
        "trade": {"state": "PAID", "created": "2026-11-11 08:00:00", "items": [{"count": 1}]},
        "consignee": {"phone": "13800138000"},
    }
    with pytest.raises(InvalidOrder) as caught:
        NESTED.map(record(data))
    (error,) = caught.value.errors
    assert error.field == "trade.items[0].spec.code or trade.items[0].sku_id"


def test_the_platform_version_time_defaults_to_the_record_time() -> None:
    """Without a mapped modification time, the order carries the record's."""
    mapped = MAPPING.map(record(payload()))
    assert mapped.order.source_modified_at == datetime(2026, 11, 10, 16, 40, tzinfo=UTC)
    assert mapped.order.updated_at == mapped.order.source_modified_at
