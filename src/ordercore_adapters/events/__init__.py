"""Event-publisher adapters: domain events from the outbox to the company's message broker.

Registered under the ``ordercore.events`` entry-point group; the name is the URL scheme
(``nats://127.0.0.1:4222`` selects :class:`~ordercore_adapters.events.nats.NatsEventPublisher`).
"""
