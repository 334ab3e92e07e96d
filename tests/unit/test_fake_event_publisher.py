"""The in-memory event publisher passes the event-publisher contract, and fails on demand."""

from __future__ import annotations

import pytest

from ordercore.domain.events import EventEnvelope
from ordercore.errors import EventPublishFailed
from ordercore.ports.events import EventPublisherPort
from ordercore.testing import EventPublisherContract, InMemoryEventPublisher
from ordercore.testing.events import ReadBack, sample_events


class TestInMemoryEventPublisher(EventPublisherContract):
    """The fake keeps what it is given, like a broker with de-duplication."""

    @pytest.fixture
    def memory(self) -> InMemoryEventPublisher:
        return InMemoryEventPublisher()

    @pytest.fixture
    def publisher(self, memory: InMemoryEventPublisher) -> EventPublisherPort:
        return memory

    @pytest.fixture
    def read_back(self, memory: InMemoryEventPublisher) -> ReadBack:
        async def read() -> list[EventEnvelope]:
            return list(memory.published)

        return read


@pytest.mark.anyio
async def test_fail_next_refuses_whole_calls_then_recovers() -> None:
    """fail_next(1): the next publish raises and keeps nothing; the one after succeeds."""
    publisher = InMemoryEventPublisher()
    publisher.fail_next()
    with pytest.raises(EventPublishFailed):
        await publisher.publish(sample_events())
    assert publisher.published == []
    await publisher.publish(sample_events())
    assert len(publisher.published) == 3
