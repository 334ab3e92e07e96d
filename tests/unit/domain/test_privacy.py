"""Masking customer data for the ledger, logs and errors."""

from __future__ import annotations

from ordercore.domain.privacy import is_personal_field, mask_text, mask_value


def test_phones_names_and_addresses_keep_only_their_edges() -> None:
    """A masked value shows too little to identify anyone but enough to tell values apart."""
    assert mask_value("13800138000") == "138****8000"
    assert mask_value("张三") == "张*"
    assert mask_value("浙江省杭州市西湖区文三路90号") == "浙江" + "*" * 12 + "号"
    assert "13800138000" not in mask_value("+86 13800138000")


def test_free_text_loses_phone_numbers_and_emails() -> None:
    """Mobile and landline numbers and e-mail addresses are masked wherever they appear."""
    text = mask_text("call 13912345678 or 021-12345678, mail li.si@example.com")
    assert text == "call 139****5678 or 021-****5678, mail l***@example.com"


def test_personal_field_errors_mask_their_values_only() -> None:
    """In a FieldError rendering, personal fields' values are masked, others kept."""
    message = (
        "invalid taobao order 9: receiver.name: bad (got '王小明'); "
        "orders.order[0].num: must be a whole number > 0 (got 'x')"
    )
    masked = mask_text(message)
    assert "王小明" not in masked
    assert "(got '王*')" not in masked  # three characters keep the first only
    assert "(got '王**')" in masked
    assert "(got 'x')" in masked


def test_field_names_that_hold_personal_data_are_recognised() -> None:
    """receiver_mobile, address.detail and buyer name fields count as personal."""
    assert is_personal_field("receiver_mobile")
    assert is_personal_field("address.detail")
    assert not is_personal_field("orders.order[0].num")
