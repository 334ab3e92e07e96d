"""Fraud and brushing rules (family ``fraud``): velocity, buyer/receiver mismatch,
abnormal amounts and the blacklist."""

from __future__ import annotations

from ordercore.domain.contact_checks import normalise_phone
from ordercore.domain.orders import Order
from ordercore.domain.rules.base import Rule, ScreeningContext
from ordercore.domain.rules.config import RulesConfig
from ordercore.domain.severity import Severity

__all__ = [
    "FRAUD_RULES",
    "check_abnormal_amount",
    "check_blacklist",
    "check_mismatch",
    "check_velocity",
]

FAMILY = "fraud"


def check_velocity(order: Order, context: ScreeningContext, config: RulesConfig) -> list[str]:
    """Too many orders from one phone, address or device within the window."""
    history = context.history
    if history is None:
        return []
    rules = config.fraud
    minutes = int(rules.window.total_seconds() // 60)
    reasons = []
    for what, seen, limit in (
        ("phone", history.orders_per_phone, rules.max_orders_per_phone),
        ("address", history.orders_per_address, rules.max_orders_per_address),
        ("device", history.orders_per_device, rules.max_orders_per_device),
    ):
        if seen > limit:
            reasons.append(
                f"{seen} orders from one {what} within {minutes} min (rule: at most {limit})"
            )
    return reasons


def check_mismatch(order: Order, context: ScreeningContext, config: RulesConfig) -> list[str]:
    """One buyer ships to many receivers, or many buyers ship to one receiver (brushing)."""
    history = context.history
    if history is None:
        return []
    rules = config.fraud
    hours = int(rules.mismatch_window.total_seconds() // 3600)
    reasons = []
    if history.receivers_per_buyer > rules.max_receivers_per_buyer:
        reasons.append(
            f"buyer shipped to {history.receivers_per_buyer} receivers within {hours} h "
            f"(rule: at most {rules.max_receivers_per_buyer})"
        )
    if history.buyers_per_receiver > rules.max_buyers_per_receiver:
        reasons.append(
            f"{history.buyers_per_receiver} buyer accounts shipped to one receiver within "
            f"{hours} h (rule: at most {rules.max_buyers_per_receiver})"
        )
    return reasons


def check_abnormal_amount(
    order: Order, context: ScreeningContext, config: RulesConfig
) -> list[str]:
    """The total is implausibly high or low, or a line's quantity is implausibly large."""
    rules = config.fraud
    reasons = []
    total = order.total.amount
    if total > rules.max_order_amount:
        reasons.append(f"order total {total} is above {rules.max_order_amount}")
    elif total < rules.min_order_amount:
        reasons.append(f"order total {total} is below {rules.min_order_amount}")
    reasons.extend(
        f"line {line.sku!r} orders {line.quantity} units (rule: at most {rules.max_line_quantity})"
        for line in order.lines
        if line.quantity > rules.max_line_quantity
    )
    return reasons


def check_blacklist(order: Order, context: ScreeningContext, config: RulesConfig) -> list[str]:
    """The receiver phone, buyer, device or address is on the blacklist."""
    rules = config.fraud
    reasons = []
    receiver = order.receiver
    if not receiver.masked and normalise_phone(receiver.phone) in rules.blacklist_phones:
        reasons.append("receiver phone is blacklisted")
    if order.buyer_id and order.buyer_id in rules.blacklist_buyers:
        reasons.append("buyer account is blacklisted")
    if context.device and context.device in rules.blacklist_devices:
        reasons.append("device is blacklisted")
    if rules.blacklist_address_words and not order.address.masked:
        place = order.address.one_line()
        if any(word in place for word in rules.blacklist_address_words):
            reasons.append("address matches a blacklisted place")
    return reasons


FRAUD_RULES = (
    Rule(
        id="fraud.velocity",
        family=FAMILY,
        description="Many orders from one phone, address or device in a short window",
        severity=Severity.HIGH,
        check=check_velocity,
    ),
    Rule(
        id="fraud.mismatch",
        family=FAMILY,
        description="One buyer to many receivers, or many buyers to one receiver",
        severity=Severity.HIGH,
        check=check_mismatch,
    ),
    Rule(
        id="fraud.abnormal_amount",
        family=FAMILY,
        description="Order total or line quantity outside plausible bounds",
        severity=Severity.WARNING,
        check=check_abnormal_amount,
    ),
    Rule(
        id="fraud.blacklist",
        family=FAMILY,
        description="Phone, buyer, device or address on the blacklist",
        severity=Severity.CRITICAL,
        check=check_blacklist,
    ),
)
"""The built-in fraud rules."""
