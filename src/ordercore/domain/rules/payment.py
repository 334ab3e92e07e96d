"""Payment rules (family ``payment``): failed callbacks and payments never confirmed."""

from __future__ import annotations

from ordercore.domain.orders import Order
from ordercore.domain.rules.base import PaymentStatus, Rule, ScreeningContext
from ordercore.domain.rules.config import RulesConfig
from ordercore.domain.severity import Severity

__all__ = ["PAYMENT_RULES", "check_callback_failed", "check_unconfirmed"]

FAMILY = "payment"


def check_callback_failed(
    order: Order, context: ScreeningContext, config: RulesConfig
) -> list[str]:
    """The payment provider's callback reported a failure."""
    payment = context.payment
    if payment is None or payment.status is not PaymentStatus.FAILED:
        return []
    detail = f": {payment.detail}" if payment.detail else ""
    return [f"payment callback failed{detail}"]


def check_unconfirmed(order: Order, context: ScreeningContext, config: RulesConfig) -> list[str]:
    """A started payment has had no confirming callback within ``confirm_within``."""
    payment = context.payment
    if payment is None or payment.status is not PaymentStatus.PENDING:
        return []
    waited = context.now - payment.since
    limit = config.payment.confirm_within
    if waited <= limit:
        return []
    return [
        f"payment not confirmed after {int(waited.total_seconds() // 60)} min "
        f"(rule: within {int(limit.total_seconds() // 60)} min)"
    ]


PAYMENT_RULES = (
    Rule(
        id="payment.callback_failed",
        family=FAMILY,
        description="The payment callback reported a failure",
        severity=Severity.HIGH,
        check=check_callback_failed,
    ),
    Rule(
        id="payment.unconfirmed",
        family=FAMILY,
        description="No payment confirmation within the configured time",
        severity=Severity.HIGH,
        check=check_unconfirmed,
    ),
)
"""The built-in payment rules."""
