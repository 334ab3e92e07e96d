"""Invalid-contact rules (family ``invalid_contact``): the receiver's phone and name."""

from __future__ import annotations

from ordercore.domain.contact_checks import (
    PhoneKind,
    classify_phone,
    is_placeholder_name,
    is_placeholder_phone,
)
from ordercore.domain.orders import Order
from ordercore.domain.rules.base import Rule, ScreeningContext
from ordercore.domain.rules.config import RulesConfig
from ordercore.domain.severity import Severity

__all__ = ["CONTACT_RULES", "check_phone", "check_receiver_name"]

FAMILY = "invalid_contact"


def check_phone(order: Order, context: ScreeningContext, config: RulesConfig) -> list[str]:
    """The receiver phone is empty, not a CN mobile/landline, or a placeholder."""
    receiver = order.receiver
    phone = receiver.phone
    if receiver.masked or "*" in phone:
        return []  # the platform hides it on purpose; its own privacy number reaches the buyer
    if not phone.strip():
        return ["receiver phone is empty"]
    kind = classify_phone(phone)
    if kind is PhoneKind.INVALID:
        return ["receiver phone is not a valid CN mobile or landline (with area code)"]
    if kind is PhoneKind.SERVICE and not config.contact.allow_service_numbers:
        return ["receiver phone is a service hotline, not a person's line"]
    if is_placeholder_phone(phone, config.contact.placeholder_phones):
        return ["receiver phone is a placeholder number"]
    return []


def check_receiver_name(order: Order, context: ScreeningContext, config: RulesConfig) -> list[str]:
    """The receiver name is empty or a placeholder (先生, 收货人, test, ...)."""
    receiver = order.receiver
    if receiver.masked or "*" in receiver.name:
        return []
    if is_placeholder_name(receiver.name, config.contact.placeholder_names):
        return ["receiver name is empty or a placeholder"]
    return []


CONTACT_RULES = (
    Rule(
        id="contact.phone",
        family=FAMILY,
        description="Receiver phone empty, invalid (CN mobile/landline rules) or a placeholder",
        severity=Severity.HIGH,
        check=check_phone,
    ),
    Rule(
        id="contact.name",
        family=FAMILY,
        description="Receiver name empty or a placeholder",
        severity=Severity.WARNING,
        check=check_receiver_name,
    ),
)
"""The built-in invalid-contact rules."""
