"""The order health score and its reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers
import pytest

from ordercore.domain.health import HealthPolicy, score_order
from ordercore.domain.orders import Address, Contact, Order, OrderLine

CREATED = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)
GOOD_ADDRESS = Address(
    province="浙江省", city="杭州市", district="西湖区", detail="文三路90号3幢502室"
)


def order(**changes: Any) -> Order:
    data: dict[str, Any] = {
        "id": "o1",
        "channel": "jd",
        "external_id": "1",
        "lines": (OrderLine(sku="A", quantity=1),),
        "receiver": Contact(name="张三", phone="13800138000"),
        "address": GOOD_ADDRESS,
        "created_at": CREATED,
        "updated_at": CREATED,
    }
    data.update(changes)
    return Order(**data)


def test_a_clean_order_on_time_scores_100() -> None:
    """Valid name, phone and address, fetched at once, no warnings: 100, no reasons."""
    health = score_order(order(), ingested_at=CREATED + timedelta(minutes=2))
    assert (health.score, health.reasons) == (100, ())


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"address": GOOD_ADDRESS.model_copy(update={"detail": "万达广场附近"})}, "vague (附近)"),
        ({"address": GOOD_ADDRESS.model_copy(update={"district": ""})}, "lacks district"),
        ({"address": GOOD_ADDRESS.model_copy(update={"detail": "楼"})}, "too short"),
        ({"receiver": Contact(name="张三", phone="12345")}, "phone is not a valid"),
        ({"receiver": Contact(name="先生", phone="13800138000")}, "placeholder"),
    ],
)
def test_each_weak_field_costs_points_and_says_why(changes: dict[str, Any], reason: str) -> None:
    """Vague or incomplete addresses and invalid contacts lower the score with a reason."""
    health = score_order(order(**changes), ingested_at=CREATED)
    assert health.score < 100
    assert any(reason in text for text in health.reasons), health.reasons


def test_a_vague_address_with_a_bad_phone_goes_to_review() -> None:
    """Two weak fields push an order under the review threshold of 80."""
    weak = order(
        receiver=Contact(name="李四", phone="0000"),
        address=GOOD_ADDRESS.model_copy(update={"detail": "火车站对面"}),
    )
    health = score_order(weak, ingested_at=CREATED)
    assert health.needs_review(HealthPolicy())
    assert "13800138000" not in " ".join(health.reasons)


def test_late_and_retried_orders_lose_their_sync_points() -> None:
    """A day-late order fetched after two re-scans loses timeliness and sync points."""
    health = score_order(order(), ingested_at=CREATED + timedelta(days=1), retries=2)
    assert health.components["timeliness"] == 0
    assert health.components["sync"] == 10
    assert any("re-scan" in reason for reason in health.reasons)


def test_masked_data_is_not_the_orders_fault() -> None:
    """Receiver data the platform masks scores as present and its warning costs nothing."""
    masked = order(
        receiver=Contact(name="张*", phone="138****8000", masked=True),
        address=GOOD_ADDRESS.model_copy(update={"detail": "文三路**号", "masked": True}),
    )
    health = score_order(
        masked, ingested_at=CREATED, warnings=("receiver data is masked by the platform",)
    )
    assert health.score == 100


def test_mapping_warnings_and_weights_are_configurable() -> None:
    """Each mapping warning costs points; a policy can weigh components differently."""
    warned = score_order(order(), ingested_at=CREATED, warnings=("SKU came from sku_id",))
    assert warned.components["mapping"] == 15
    strict = HealthPolicy(warning_penalty=20, review_below=95)
    assert score_order(order(), ingested_at=CREATED, warnings=("x",), policy=strict).needs_review(
        strict
    )


def test_the_mobile_check_agrees_with_phonenumbers() -> None:
    """Bare 11-digit numbers are valid exactly when phonenumbers says so, prefix by prefix."""
    numbers = [f"1{prefix:02d}{suffix:08d}" for prefix in range(100) for suffix in (0, 4_321_987)]
    numbers += ["17400012345", "17406012345", "16100012345", "14500000000"]
    for number in numbers:
        parsed = phonenumbers.PhoneNumber(country_code=86, national_number=int(number))
        contact = Contact(name="张三", phone=number)
        health = score_order(order(receiver=contact), ingested_at=CREATED)
        valid = not any("phone" in reason for reason in health.reasons)
        assert valid == phonenumbers.is_valid_number(parsed), number
