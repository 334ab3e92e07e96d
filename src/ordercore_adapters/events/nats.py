"""Domain events to NATS JetStream, with broker-side de-duplication.

::

    publisher = NatsEventPublisher("nats://127.0.0.1:4222?stream=ORDERCORE_EVENTS")
    registry.register(EVENT_KIND, event_relay(publisher))

Each envelope is published to ``<subject_prefix>.<type>`` (``ordercore.events.stock.reserved``)
with the JSON envelope as the body and these headers:

* ``Nats-Msg-Id``: the event id. JetStream drops a message whose id it has seen within
  the stream's duplicate window, so the relay's re-send after a crash (published, but
  not yet marked sent) is not stored twice.
* ``Ordercore-Event-Type``, ``Ordercore-Order-Id``, ``Ordercore-Event-Version``: for
  consumers that filter or route without parsing the body.

``publish`` awaits JetStream's acknowledgement of each message before sending the next,
so an order's events are stored in the stream in the order the relay hands them over.
Every nats-py error is translated to :class:`ordercore.errors.EventPublishFailed`.

Query parameters of the URL: ``stream`` (default ``ORDERCORE_EVENTS``), ``subject_prefix``
(``ordercore.events``), ``create_stream`` (``true``: create the stream when it is
missing, with file storage and a 2-minute duplicate window), ``timeout`` (seconds per
acknowledgement, default 5). User and password in the URL are passed to NATS and never
printed. nats-py runs on asyncio: use anyio's asyncio backend (the default).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Self
from urllib.parse import parse_qs, urlsplit, urlunsplit

import anyio
import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import Error as JetStreamError
from nats.js.errors import NotFoundError

from ordercore.domain.events import EventEnvelope
from ordercore.errors import EventPublishFailed, FieldError, InvalidInput

__all__ = ["NatsEventPublisher"]

logger = logging.getLogger("ordercore.events.nats")

DEFAULT_STREAM = "ORDERCORE_EVENTS"
DEFAULT_PREFIX = "ordercore.events"
DUPLICATE_WINDOW = 120.0
"""Seconds JetStream remembers message ids (of a stream this adapter creates)."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class NatsEventPublisher:
    """Publishes event envelopes to a JetStream stream; implements EventPublisherPort."""

    name = "nats"

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        *,
        stream: str | None = None,
        subject_prefix: str | None = None,
        create_stream: bool | None = None,
        timeout: float | None = None,
        connect_timeout: float = 2.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"nats", "tls"}:
            raise InvalidInput(
                "event broker URL", [FieldError("url", "must start with nats://", parts.scheme)]
            )
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        self.stream = stream or query.get("stream", DEFAULT_STREAM)
        self.subject_prefix = (
            subject_prefix or query.get("subject_prefix", DEFAULT_PREFIX)
        ).rstrip(".")
        self.create_stream = (
            create_stream
            if create_stream is not None
            else _flag(query.get("create_stream", "true"))
        )
        self.timeout = timeout if timeout is not None else float(query.get("timeout", "5"))
        self._connect_timeout = connect_timeout
        self._server = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        host = parts.hostname or "localhost"
        self._display = f"{parts.scheme}://{host}:{parts.port or 4222}"
        self._client: Client | None = None
        self._js: JetStreamContext | None = None
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"NatsEventPublisher({self._display!r}, stream={self.stream!r})"

    def subject_for(self, envelope: EventEnvelope) -> str:
        """The subject an envelope is published to."""
        return f"{self.subject_prefix}.{envelope.type}"

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def connect(self) -> JetStreamContext:
        """Connect (once) and make sure the stream exists; EventPublishFailed if not possible."""
        async with self._lock:
            if self._js is not None and self._client is not None and self._client.is_connected:
                return self._js
            try:
                client = await nats.connect(
                    self._server,
                    connect_timeout=self._connect_timeout,
                    max_reconnect_attempts=3,
                    reconnect_time_wait=0.5,
                    error_cb=self._on_error,
                    name="ordercore-event-relay",
                )
            except (NatsError, OSError) as exc:
                raise EventPublishFailed(
                    None, f"cannot connect to {self._display}: {_why(exc)}"
                ) from exc
            js = client.jetstream(timeout=self.timeout)
            try:
                await self._ensure_stream(js)
            except BaseException:
                await client.close()
                raise
            self._client, self._js = client, js
            return js

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        try:
            await js.stream_info(self.stream)
            return
        except NotFoundError:
            if not self.create_stream:
                raise EventPublishFailed(
                    None, f"stream {self.stream!r} does not exist on {self._display}"
                ) from None
        except (NatsError, JetStreamError) as exc:
            raise EventPublishFailed(None, f"stream {self.stream!r}: {_why(exc)}") from exc
        config = StreamConfig(
            name=self.stream,
            subjects=[f"{self.subject_prefix}.>"],
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW,
        )
        try:
            await js.add_stream(config)
        except (NatsError, JetStreamError) as exc:
            raise EventPublishFailed(
                None, f"cannot create stream {self.stream!r}: {_why(exc)}"
            ) from exc

    async def publish(self, envelopes: Sequence[EventEnvelope]) -> None:
        """Publish in order, each acknowledged by JetStream before the next is sent."""
        if not envelopes:
            return
        js = await self.connect()
        for envelope in envelopes:
            headers = {
                "Nats-Msg-Id": envelope.id,
                "Ordercore-Event-Type": envelope.type,
                "Ordercore-Order-Id": envelope.order_id,
                "Ordercore-Event-Version": str(envelope.version),
                "Content-Type": "application/json",
            }
            try:
                ack = await js.publish(
                    self.subject_for(envelope),
                    envelope.to_json(),
                    timeout=self.timeout,
                    stream=self.stream,
                    headers=headers,
                )
            except (NatsError, JetStreamError, OSError) as exc:
                raise EventPublishFailed(envelope.id, _why(exc)) from exc
            if ack.duplicate:
                logger.info(
                    "event %s was already in stream %s (a re-send)", envelope.id, ack.stream
                )

    async def ping(self) -> None:
        """Connect and check the stream; EventPublishFailed when the broker cannot be used."""
        js = await self.connect()
        try:
            await js.stream_info(self.stream)
        except (NatsError, JetStreamError) as exc:
            raise EventPublishFailed(None, f"stream {self.stream!r}: {_why(exc)}") from exc

    async def aclose(self) -> None:
        """Close the connection (pending acknowledgements are not waited for)."""
        client, self._client, self._js = self._client, None, None
        if client is not None and not client.is_closed:
            with anyio.CancelScope(shield=True):
                await client.close()

    async def _on_error(self, exc: Exception) -> None:
        logger.warning("NATS %s: %s", self._display, _why(exc))


def _flag(value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidInput(
        "event broker URL", [FieldError("create_stream", "must be true or false", value)]
    )


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".rstrip(": ") or type(exc).__name__
