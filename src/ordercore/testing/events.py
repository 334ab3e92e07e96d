"""An in-memory event publisher, and the contract every event-publisher adapter passes.

:class:`InMemoryEventPublisher` keeps what it was given, drops ids it has seen (as
JetStream does with ``Nats-Msg-Id``) and can be told to fail, for relay tests.

:class:`EventPublisherContract`: mix it into a test class and provide two fixtures,
``publisher`` (an EventPublisherPort on a fresh destination) and ``read_back`` (an async
callable returning every envelope the destination holds, in the order it stored them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from ordercore.domain.events import EventEnvelope, EventLine, OrderIngested, StockReserved
from ordercore.errors import EventPublishFailed
from ordercore.ports.events import EventPublisherPort

__all__ = ["EventPublisherContract", "InMemoryEventPublisher", "ReadBack", "sample_events"]

ReadBack = Callable[[], Awaitable[list[EventEnvelope]]]


class InMemoryEventPublisher:
    """Implements EventPublisherPort in memory: ``published`` holds each event once, in order."""

    name = "memory"

    def __init__(self) -> None:
        self.published: list[EventEnvelope] = []
        self.duplicates = 0
        """Envelopes given again after they were published (dropped, like a broker would)."""
        self.calls = 0
        self.closed = False
        self._failures = 0
        self._seen: set[str] = set()

    def fail_next(self, calls: int = 1) -> None:
        """Make the next ``calls`` publish calls raise EventPublishFailed, publishing nothing."""
        self._failures = calls

    async def publish(self, envelopes: Sequence[EventEnvelope]) -> None:
        """Keep each new envelope, in order; drop ids already kept."""
        self.calls += 1
        if self._failures:
            self._failures -= 1
            raise EventPublishFailed(
                envelopes[0].id if envelopes else None,
                "broker unavailable (InMemoryEventPublisher.fail_next)",
            )
        for envelope in envelopes:
            if envelope.id in self._seen:
                self.duplicates += 1
                continue
            self._seen.add(envelope.id)
            self.published.append(envelope)

    async def ping(self) -> None:
        """Always reachable unless told to fail."""
        if self._failures:
            raise EventPublishFailed(None, "broker unavailable (InMemoryEventPublisher.fail_next)")

    async def aclose(self) -> None:
        """Nothing to release."""
        self.closed = True


def sample_events(order_id: str = "o-1", count: int = 3) -> list[EventEnvelope]:
    """``count`` envelopes of one order, ingested first, then reservations, a second apart."""
    start = datetime(2026, 11, 11, tzinfo=UTC)
    envelopes = [
        OrderIngested(
            id=f"{order_id}-e0",
            order_id=order_id,
            occurred_at=start,
            channel="taobao",
            external_id=f"T{order_id}",
            status="pending_payment",
            buyer_id="b-1",
        ).envelope()
    ]
    envelopes.extend(
        StockReserved(
            id=f"{order_id}-e{index}",
            order_id=order_id,
            occurred_at=start + timedelta(seconds=index),
            reservation_id=f"r-{order_id}-{index}",
            lines=(EventLine(sku="SKU-1", warehouse="main", quantity=index),),
        ).envelope()
        for index in range(1, count)
    )
    return envelopes


class EventPublisherContract:
    """What every event publisher does: in order, acknowledged, de-duplicated by id."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def publisher(self) -> EventPublisherPort:
        raise NotImplementedError("provide a publisher fixture on a fresh destination")

    @pytest.fixture
    def read_back(self) -> ReadBack:
        raise NotImplementedError("provide read_back: every stored envelope, in stored order")

    @pytest.mark.anyio
    async def test_envelopes_arrive_whole_and_in_order(
        self, publisher: EventPublisherPort, read_back: ReadBack
    ) -> None:
        """What publish() returned from is stored, in the order given, field for field."""
        first, second = sample_events("o-1"), sample_events("o-2")
        await publisher.publish(first)
        await publisher.publish(second)
        assert await read_back() == first + second

    @pytest.mark.anyio
    async def test_a_resent_event_is_stored_once(
        self, publisher: EventPublisherPort, read_back: ReadBack
    ) -> None:
        """Publishing an id again (the relay's re-send after a crash) stores nothing new."""
        events = sample_events("o-1")
        await publisher.publish(events[:2])
        await publisher.publish(events)
        assert [envelope.id for envelope in await read_back()] == [e.id for e in events]

    @pytest.mark.anyio
    async def test_ping_succeeds_on_a_reachable_destination(
        self, publisher: EventPublisherPort
    ) -> None:
        """ping() returns quietly when the destination can be used."""
        await publisher.ping()
