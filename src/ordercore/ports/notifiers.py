"""The notifier port: where ordercore sends alerts (operations, supervisors, on-call).

Adapters (SMS, webhook, log, chat) implement :class:`NotifierPort`; the core composes
them. An alert's text is already masked: no secret, no customer name, phone or address.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from ordercore.domain.severity import Severity

__all__ = ["Alert", "AlertLevel", "NotifierPort", "RecordingNotifier"]


AlertLevel = Severity
"""How urgent an alert is: the same levels as an exception's severity."""


class Alert(BaseModel):
    """One thing people should know about. ``key`` dedups repeats of the same condition."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: AlertLevel
    topic: str
    message: str
    key: str
    at: datetime
    channel: str = ""


@runtime_checkable
class NotifierPort(Protocol):
    """Deliver an alert. Must not block the caller for long: queue or time out internally."""

    async def send(self, alert: Alert) -> None: ...


class RecordingNotifier:
    """Keeps alerts in a list: the default when no notifier is configured, and for tests."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    async def send(self, alert: Alert) -> None:
        """Record the alert."""
        self.alerts.append(alert)
