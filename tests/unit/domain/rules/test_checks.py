"""Phone, name and address checks, the remark matcher and the fraud-window keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ordercore.domain.contact_checks import (
    PhoneKind,
    classify_phone,
    has_house_number,
    is_placeholder_phone,
)
from ordercore.domain.orders import Address, Contact, Order, OrderLine
from ordercore.domain.rules import FraudRules, RiskMatcher, history_entry, summarise_history

NOW = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("phone", "kind"),
    [
        ("13657120984", PhoneKind.MOBILE),
        ("+86 136 5712 0984", PhoneKind.MOBILE),
        ("17093812745-5521", PhoneKind.VIRTUAL),
        ("0571-87022088", PhoneKind.LANDLINE),
        ("0512-65223637转806", PhoneKind.LANDLINE),
        ("62752114", PhoneKind.INVALID),
        ("12345678901", PhoneKind.INVALID),
        ("400-820-8820", PhoneKind.SERVICE),
        ("+1 650 253 0000", PhoneKind.INVALID),
    ],
)
def test_phones_are_classified_by_cn_numbering_rules(phone: str, kind: PhoneKind) -> None:
    """Mobiles, privacy numbers, landlines with area code, hotlines and junk are told apart."""
    assert classify_phone(phone) is kind


def test_placeholder_mobiles_are_recognised_but_vanity_landlines_are_not() -> None:
    """13800000000 and runs are placeholders; a landline 88888888 is a real number."""
    assert is_placeholder_phone("13800000000")
    assert is_placeholder_phone("139 1234 5678")
    assert is_placeholder_phone("13800138000", known={"13800138000"})
    assert not is_placeholder_phone("0571-88888888")
    assert not is_placeholder_phone("13657120984")


def test_house_numbers_include_rural_groups_and_room_codes() -> None:
    """号/栋/室, 三组-style rural numbers and A座1203 count; a bare street does not."""
    assert has_house_number("王庄村三组")
    assert has_house_number("A座1203")
    assert not has_house_number("人民路步行街")


def test_negated_risk_words_are_ignored() -> None:
    """不会给差评 mentions 差评 to rule it out; 差评 alone is a risk."""
    matcher = RiskMatcher(("差评", "12315"), ("不会给差评",))
    assert matcher.find("放心不会给差评") == []
    assert matcher.find("不发货就差评，再打１２３１５") == ["差评", "12315"]


def _order(order_id: str, phone: str, buyer: str, at: datetime) -> Order:
    return Order(
        id=order_id,
        external_id=order_id,
        buyer_id=buyer,
        lines=(OrderLine(sku="A", quantity=1),),
        receiver=Contact(name="王", phone=phone),
        address=Address(province="浙江省", city="杭州市", district="西湖区", detail="文三路1号"),
        created_at=at,
        updated_at=at,
    )


def test_history_keys_normalise_and_depend_on_the_salt() -> None:
    """+86 and spaces do not change the key; another salt gives another key."""
    a = history_entry(_order("a", "13657120984", "b", NOW), at=NOW, salt=b"s1")
    b = history_entry(_order("b", "+86 136 5712 0984", "b", NOW), at=NOW, salt=b"s1")
    c = history_entry(_order("c", "13657120984", "b", NOW), at=NOW, salt=b"s2")
    assert a.phone_key == b.phone_key != c.phone_key
    assert "13657120984" not in repr(a)


def test_summary_ignores_the_same_order_and_entries_outside_the_window() -> None:
    """A re-screened order and an order two hours old do not count toward velocity."""
    rules = FraudRules()
    current = history_entry(_order("x", "13657120984", "b1", NOW), at=NOW)
    again = history_entry(_order("x", "13657120984", "b1", NOW), at=NOW)
    old = history_entry(_order("y", "13657120984", "b2", NOW), at=NOW - timedelta(hours=2))
    recent = history_entry(_order("z", "13657120984", "b3", NOW), at=NOW - timedelta(minutes=5))
    summary = summarise_history(current, [again, old, recent], rules)
    assert summary.orders_per_phone == 2
    assert summary.buyers_per_receiver == 3
