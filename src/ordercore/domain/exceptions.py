"""Exceptions found by screening an order: findings, actions, the screening result, cases.

The rules engine (:mod:`ordercore.domain.rules`) turns an order and its screening
context into :class:`Finding` values; the exception service applies their actions
(flag, notify, hold, raise priority) and opens an :class:`ExceptionCase` per rule family
for the ticket workflow.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from ordercore.domain.severity import Severity

__all__ = [
    "ExceptionCase",
    "Finding",
    "RuleAction",
    "ScreeningResult",
    "default_actions",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class RuleAction(StrEnum):
    """What a finding makes the exception service do."""

    FLAG = "flag"
    NOTIFY_OPERATIONS = "notify_operations"
    HOLD_SHIPMENT = "hold_shipment"
    RAISE_PRIORITY = "raise_priority"
    NOTIFY_SUPERVISOR = "notify_supervisor"


_BY_SEVERITY: dict[Severity, frozenset[RuleAction]] = {
    Severity.INFO: frozenset({RuleAction.FLAG}),
    Severity.WARNING: frozenset({RuleAction.FLAG, RuleAction.NOTIFY_OPERATIONS}),
    Severity.HIGH: frozenset(
        {RuleAction.FLAG, RuleAction.NOTIFY_OPERATIONS, RuleAction.HOLD_SHIPMENT}
    ),
    Severity.CRITICAL: frozenset(
        {
            RuleAction.FLAG,
            RuleAction.NOTIFY_OPERATIONS,
            RuleAction.HOLD_SHIPMENT,
            RuleAction.NOTIFY_SUPERVISOR,
        }
    ),
}


def default_actions(severity: Severity) -> frozenset[RuleAction]:
    """The alert ladder: info flags; warning also notifies operations; high also holds
    shipment; critical also notifies a supervisor."""
    return _BY_SEVERITY[severity]


class Finding(BaseModel):
    """One rule that fired on one order, with why (reasons never quote customer data)."""

    model_config = _FROZEN

    rule_id: str
    family: str
    severity: Severity
    reasons: tuple[str, ...]
    actions: frozenset[RuleAction]


class ScreeningResult(BaseModel):
    """What screening an order found and did."""

    model_config = _FROZEN

    order_id: str
    findings: tuple[Finding, ...] = ()
    screened_at: datetime
    held: bool = False
    """The order was moved to on_hold by this screening."""
    priority_raised: bool = False

    @property
    def severity(self) -> Severity | None:
        """The highest severity found, None when the order is clean."""
        return max((finding.severity for finding in self.findings), default=None)

    @property
    def actions(self) -> frozenset[RuleAction]:
        """Every action the findings asked for."""
        return frozenset(action for finding in self.findings for action in finding.actions)

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """Ids of the rules that fired, in evaluation order."""
        return tuple(finding.rule_id for finding in self.findings)


class ExceptionCase(BaseModel):
    """A screening exception that warrants a ticket: one per order and rule family.

    ``ticket_type`` is the rule family ("vague_address", "invalid_contact", "payment",
    "stock", "fraud", "remark_risk" or a user family); ``severity`` is the highest of
    its findings.
    """

    model_config = _FROZEN

    order_id: str
    channel: str
    ticket_type: str
    severity: Severity
    reasons: tuple[str, ...]
    rule_ids: tuple[str, ...]
