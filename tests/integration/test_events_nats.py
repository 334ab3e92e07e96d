"""The NATS JetStream event publisher against the real server at 127.0.0.1:4222.

Each test gets its own stream (and subject prefix), deleted afterwards. Skips with the
reason when no JetStream-enabled server is reachable (fails instead under CI, which sets
ORDERCORE_REQUIRE_NATS=1).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import anyio
import nats
import pytest
from click.testing import CliRunner
from nats.js.errors import NotFoundError

from ordercore.cli import main
from ordercore.config import Settings
from ordercore.core import OrderCore
from ordercore.domain.events import (
    DomainEvent,
    EventEnvelope,
    EventLine,
    OrderIngested,
    StockReserved,
)
from ordercore.domain.outbox import OutboxState
from ordercore.errors import EventPublishFailed
from ordercore.ports.clock import ManualClock
from ordercore.services.outbox import EVENT_KIND, HandlerRegistry, event_relay
from ordercore.testing import EventPublisherContract
from ordercore.testing.events import ReadBack, sample_events
from ordercore_adapters.events.nats import NatsEventPublisher
from ordercore_adapters.storage.sql import SqlStorage
from support.nats import nats_url_or_skip

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Stream:
    """A fresh stream on the server: its URL for the publisher and how to read it back."""

    server: str
    name: str
    prefix: str

    @property
    def url(self) -> str:
        return f"{self.server}?stream={self.name}&subject_prefix={self.prefix}"

    async def read(self) -> list[EventEnvelope]:
        client = await nats.connect(self.server)
        try:
            js = client.jetstream()
            info = await js.stream_info(self.name)
            if not info.state.messages:
                return []
            subscription = await js.pull_subscribe(f"{self.prefix}.>", stream=self.name)
            messages = await subscription.fetch(info.state.messages, timeout=5)
            for message in messages:
                await message.ack()
            return [EventEnvelope.from_json(message.data) for message in messages]
        finally:
            await client.close()


@pytest.fixture
def stream() -> Iterator[Stream]:
    server = nats_url_or_skip()
    suffix = uuid.uuid4().hex[:10]
    made = Stream(server, f"TEST_{suffix.upper()}", f"test.{suffix}")
    yield made
    anyio.run(_delete_stream, made)


async def _delete_stream(stream: Stream) -> None:
    client = await nats.connect(stream.server)
    try:
        await client.jetstream().delete_stream(stream.name)
    except NotFoundError:
        pass
    finally:
        await client.close()


class TestNatsEventPublisher(EventPublisherContract):
    """The publisher contract on a real JetStream stream."""

    @pytest.fixture
    async def publisher(self, stream: Stream) -> AsyncIterator[NatsEventPublisher]:
        publisher = NatsEventPublisher(stream.url)
        yield publisher
        await publisher.aclose()

    @pytest.fixture
    def read_back(self, stream: Stream) -> ReadBack:
        return stream.read


async def test_messages_carry_the_dedup_id_and_routing_headers(stream: Stream) -> None:
    """Each message has Nats-Msg-Id = event id, type and order headers, on <prefix>.<type>."""
    event = OrderIngested(
        id="e-1",
        order_id="o-1",
        occurred_at=ManualClock().now(),
        channel="jd",
        external_id="J1",
        status="paid",
        buyer_id="b",
    )
    async with NatsEventPublisher(stream.url) as publisher:
        await publisher.publish([event.envelope()])
    client = await nats.connect(stream.server)
    try:
        js = client.jetstream()
        subscription = await js.pull_subscribe(f"{stream.prefix}.>", stream=stream.name)
        (message,) = await subscription.fetch(1, timeout=5)
    finally:
        await client.close()
    assert message.subject == f"{stream.prefix}.order.ingested"
    assert message.headers is not None
    assert message.headers["Nats-Msg-Id"] == "e-1"
    assert (message.headers["Ordercore-Event-Type"], message.headers["Ordercore-Order-Id"]) == (
        "order.ingested",
        "o-1",
    )


async def test_a_missing_stream_is_an_error_when_not_allowed_to_create_it(stream: Stream) -> None:
    """create_stream=false and no stream: EventPublishFailed naming the stream."""
    publisher = NatsEventPublisher(f"{stream.url}&create_stream=false")
    with pytest.raises(EventPublishFailed, match=stream.name):
        await publisher.ping()
    await publisher.aclose()


async def test_an_unreachable_broker_raises_event_publish_failed() -> None:
    """No server at the address: EventPublishFailed, with the address but no credentials."""
    publisher = NatsEventPublisher("nats://relay:s3cret@127.0.0.1:1", connect_timeout=0.5)
    with pytest.raises(EventPublishFailed, match=r"nats://127\.0\.0\.1:1") as caught:
        await publisher.ping()
    assert "s3cret" not in str(caught.value)


async def test_the_relay_delivers_every_event_once_in_order_after_a_crash(
    stream: Stream, tmp_path: Path
) -> None:
    """Outbox -> JetStream: a relay that crashed after publishing is re-run; no duplicate lands."""
    clock = ManualClock()
    settings = Settings(outbox_poll_interval=timedelta(milliseconds=10))
    storage = SqlStorage(f"sqlite:///{tmp_path}/relay.db", settings)
    await storage.open()
    core = OrderCore(storage, clock, settings)
    events = [
        StockReserved(
            id=f"{order}-{n}",
            order_id=order,
            occurred_at=clock.now() + timedelta(seconds=n),
            reservation_id=f"r-{order}",
            lines=(EventLine(sku="A", warehouse="main", quantity=n + 1),),
        )
        for n in range(4)
        for order in ("o1", "o2", "o3")
    ]
    publisher = NatsEventPublisher(stream.url)
    try:
        async with storage.unit_of_work() as uow:
            for event in events:
                await core.outbox.enqueue_event(uow, event)
            await uow.commit()
        # A relay claims the first event, publishes it, and dies before marking it sent.
        now = clock.now()
        async with storage.unit_of_work() as uow:
            (first,) = await uow.outbox.claim(
                "crashed", limit=1, lease_until=now + settings.outbox_lease, now=now
            )
            await uow.commit()
        await publisher.publish([EventEnvelope.model_validate(first.payload)])
        clock.advance(settings.outbox_lease)

        registry = HandlerRegistry()
        registry.register(EVENT_KIND, event_relay(publisher))
        stats = await core.outbox.worker(registry).run(stop_when="drained")
        counts = await core.outbox.counts()
        stored = await stream.read()
    finally:
        await publisher.aclose()
        await storage.close()

    assert stats.done == len(events)
    assert sorted(envelope.id for envelope in stored) == sorted(event.id for event in events)
    for order in ("o1", "o2", "o3"):
        assert [e.id for e in stored if e.order_id == order] == [f"{order}-{n}" for n in range(4)]
    assert counts[OutboxState.DONE] == len(events)


def test_the_worker_command_relays_events_to_nats(stream: Stream, tmp_path: Path) -> None:
    """ordercore worker --events nats://... publishes every enqueued event, then exits."""
    url = f"sqlite:///{(tmp_path / 'cli.db').as_posix()}"
    events = sample_events("o-9", count=4)

    async def enqueue() -> None:
        async with OrderCore.open(url) as core, core.storage.unit_of_work() as uow:
            for envelope in events:
                await core.outbox.enqueue_event(uow, DomainEvent.from_envelope(envelope))
            await uow.commit()

    anyio.run(enqueue)
    result = CliRunner().invoke(
        main,
        ["worker", "--db", url, "--events", stream.url, "--until", "drained", "--json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["by_kind"] == {EVENT_KIND: 4}
    assert anyio.run(stream.read) == events
