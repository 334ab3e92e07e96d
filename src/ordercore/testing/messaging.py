"""A recording customer messenger: the fake of the CustomerMessagePort (SMS to customers)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["RecordingMessenger", "SentMessage"]


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One message handed to the messenger."""

    order_id: str
    template: str
    params: Mapping[str, str]
    message_id: str


@dataclass
class RecordingMessenger:
    """Keeps every message in ``sent``; fails the next ``fail_next`` sends (to test retries)."""

    sent: list[SentMessage] = field(default_factory=list)
    fail_next: int = 0

    async def send_sms(self, order_id: str, template: str, params: Mapping[str, str]) -> str:
        """Record the message and return its id, or raise ConnectionError while failing."""
        if self.fail_next > 0:
            self.fail_next -= 1
            raise ConnectionError("SMS gateway unavailable (simulated)")
        message_id = f"sms-{len(self.sent) + 1}"
        self.sent.append(SentMessage(order_id, template, dict(params), message_id))
        return message_id
