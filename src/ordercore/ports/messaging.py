"""The customer-message port: SMS (or chat) to the buyer of an order.

The core never handles a customer's phone number: it names the order, a template and
its parameters; the adapter looks the contact up in the shop's records or asks the
channel platform (most platforms relay messages to masked numbers). Sending may fail;
the ticket service keeps the message as a durable task and retries it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

__all__ = ["CustomerMessagePort"]


@runtime_checkable
class CustomerMessagePort(Protocol):
    """Send a templated message to the customer of an order; return the provider's id.

    Raise any exception when the message could not be handed over (it is retried).
    """

    async def send_sms(self, order_id: str, template: str, params: Mapping[str, str]) -> str: ...
