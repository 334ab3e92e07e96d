"""What a rule is and what it sees: :class:`Rule`, :class:`ScreeningContext` and friends."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from ordercore.domain.exceptions import RuleAction, default_actions
from ordercore.domain.orders import Order
from ordercore.domain.rules.config import RulesConfig
from ordercore.domain.severity import Severity

__all__ = [
    "Check",
    "HistorySummary",
    "PaymentState",
    "PaymentStatus",
    "Rule",
    "ScreeningContext",
]


class PaymentStatus(StrEnum):
    """Where an order's payment callback stands."""

    CONFIRMED = "confirmed"
    PENDING = "pending"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class PaymentState:
    """The payment of an order as the payment provider's callbacks left it.

    ``since`` is when the payment started (PENDING) or when the callback arrived.
    """

    status: PaymentStatus
    since: datetime
    detail: str = ""


@dataclass(frozen=True, slots=True)
class HistorySummary:
    """Recent orders sharing a key with this one (each count includes this order)."""

    orders_per_phone: int = 1
    orders_per_address: int = 1
    orders_per_device: int = 1
    receivers_per_buyer: int = 1
    """Distinct receiver phones the buyer account shipped to in the mismatch window."""
    buyers_per_receiver: int = 1
    """Distinct buyer accounts that shipped to this receiver phone in the mismatch window."""


@dataclass(frozen=True, slots=True)
class ScreeningContext:
    """What rules know besides the order, filled by the exception service from its ports.

    ``None`` means "not known": a rule that needs it stays silent rather than guess.
    ``stock`` maps each SKU to the units this order can still get (sellable plus what
    it already holds); a SKU missing from it is unknown.
    """

    now: datetime
    stock: Mapping[str, int] | None = None
    delisted: frozenset[str] = frozenset()
    payment: PaymentState | None = None
    history: HistorySummary | None = None
    device: str = ""
    messages: tuple[str, ...] = ()
    """Buyer messages and seller notes besides ``order.remark``."""


Check = Callable[[Order, ScreeningContext, RulesConfig], Sequence[str]]
"""A rule's logic: the reasons it fires (empty: it does not). No I/O, no customer data."""


@dataclass(frozen=True, slots=True)
class Rule:
    """An exception rule: data (id, level, actions) plus a small check function.

    ``extra_actions`` come on top of the severity ladder (see
    :func:`ordercore.domain.exceptions.default_actions`); ``actions``, when given,
    replaces both.
    """

    id: str
    family: str
    description: str
    severity: Severity
    check: Check
    extra_actions: frozenset[RuleAction] = frozenset()
    actions_override: frozenset[RuleAction] | None = field(default=None)

    @property
    def actions(self) -> frozenset[RuleAction]:
        """What a finding of this rule makes the service do."""
        if self.actions_override is not None:
            return self.actions_override
        return default_actions(self.severity) | self.extra_actions
