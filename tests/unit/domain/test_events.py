"""Domain events and their stable JSON envelope."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from ordercore.domain.events import (
    EVENT_TYPES,
    DomainEvent,
    EventEnvelope,
    EventLine,
    OrderHeld,
    StockReserved,
)

AT = datetime(2026, 11, 11, 8, 0, 3, tzinfo=timezone(timedelta(hours=8)))


def reserved() -> StockReserved:
    return StockReserved(
        id="e1",
        order_id="o1",
        occurred_at=AT,
        reservation_id="r1",
        lines=(EventLine(sku="A", warehouse="main", quantity=2),),
    )


def test_the_envelope_has_the_stable_field_names() -> None:
    """type, id, order_id, occurred_at (UTC, Z), version and data, nothing else."""
    body = json.loads(reserved().envelope().to_json())
    assert body == {
        "type": "stock.reserved",
        "id": "e1",
        "order_id": "o1",
        "occurred_at": "2026-11-11T00:00:03Z",
        "version": 1,
        "data": {
            "reservation_id": "r1",
            "lines": [{"sku": "A", "warehouse": "main", "quantity": 2}],
            "expires_at": None,
        },
    }


def test_an_envelope_turns_back_into_its_event() -> None:
    """from_envelope(envelope(e)) == e, through the wire form."""
    event = reserved()
    wire = EventEnvelope.from_json(event.envelope().to_json())
    assert DomainEvent.from_envelope(wire) == event.model_copy(
        update={"occurred_at": AT.astimezone(UTC)}
    )


def test_every_event_type_is_registered_once() -> None:
    """Each event class has its own type name in EVENT_TYPES."""
    assert EVENT_TYPES["order.held"] is OrderHeld
    assert len({cls.TYPE for cls in EVENT_TYPES.values()}) == len(EVENT_TYPES)


def test_events_are_frozen_and_need_an_aware_time() -> None:
    """A naive occurred_at is refused; an event cannot be changed after it is made."""
    with pytest.raises(ValidationError):
        OrderHeld(id="e", order_id="o", occurred_at=datetime(2026, 1, 1), reasons=("r",))
    event = OrderHeld(id="e", order_id="o", occurred_at=AT, reasons=("fraud.velocity",))
    with pytest.raises(ValidationError):
        event.order_id = "other"  # type: ignore[misc]
