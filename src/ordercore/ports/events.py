"""The event-publisher port: hands domain events to the company's message broker.

The relay (:mod:`ordercore.services.outbox`) calls :meth:`EventPublisherPort.publish`
with the envelopes of one order, oldest first, and marks them sent only after it
returns. An adapter therefore:

* publishes the envelopes in the order given and returns only when the broker has
  acknowledged (persisted) every one of them;
* raises :class:`ordercore.errors.EventPublishFailed` when it could not, having
  published none or a prefix of them (the relay sends them all again);
* passes ``envelope.id`` to the broker as its de-duplication id (JetStream's
  ``Nats-Msg-Id``, a RabbitMQ ``message_id``), so a re-send after a crash is dropped by
  the broker, and consumers that see one anyway can drop it by the same id.

Adapters register under the ``ordercore.events`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ordercore.domain.events import EventEnvelope

__all__ = ["EventPublisherPort"]


@runtime_checkable
class EventPublisherPort(Protocol):
    """Publishes event envelopes to a broker, at least once, in the order given."""

    name: str

    async def publish(self, envelopes: Sequence[EventEnvelope]) -> None:
        """Publish in order; return once the broker acknowledged all (EventPublishFailed if not)."""
        ...

    async def ping(self) -> None:
        """Raise EventPublishFailed when the broker cannot be reached."""
        ...

    async def aclose(self) -> None:
        """Release the connection."""
        ...
