"""Domain events: what happened to an order, told to the rest of the company's systems.

Events are frozen values carrying ids, codes and counts, never a customer's name, phone
or address (an ERP that needs those reads the order). Each one travels as a stable JSON
:class:`EventEnvelope`::

    {"type": "stock.reserved", "id": "5f0c...", "order_id": "o-1",
     "occurred_at": "2026-11-11T00:00:03.120000Z", "version": 1,
     "data": {"reservation_id": "r-9", "lines": [{"sku": "A", "warehouse": "main", ...}]}}

``type`` and ``version`` name the schema of ``data``: a change that a consumer could
trip over bumps the version, a new optional field does not. ``id`` is unique per event
and stays the same on every redelivery, so consumers (and the broker) drop duplicates.
"""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

__all__ = [
    "EVENT_TYPES",
    "DomainEvent",
    "EventEnvelope",
    "EventLine",
    "OrderCancelled",
    "OrderCompleted",
    "OrderHeld",
    "OrderIngested",
    "OrderPaid",
    "OrderReleased",
    "OrderRouted",
    "OrderShipped",
    "OrderStatusChanged",
    "ReservationCommitted",
    "ReservationReleased",
    "StockReserved",
    "WaybillRequested",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")

EventId = Annotated[str, Field(min_length=1, max_length=64)]


class EventEnvelope(BaseModel):
    """The wire form of every event: stable field names, ``data`` per ``type``/``version``."""

    model_config = _FROZEN

    type: Annotated[str, Field(min_length=1)]
    id: EventId
    order_id: Annotated[str, Field(min_length=1)]
    occurred_at: AwareDatetime
    version: Annotated[int, Field(ge=1)]
    data: dict[str, JsonValue]

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON, times in UTC with a ``Z``: the bytes put on the wire."""
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> EventEnvelope:
        """Parse the wire form back (a consumer's view)."""
        return cls.model_validate_json(raw)


class DomainEvent(BaseModel):
    """Base of every event: which order, when, and a unique id. Subclasses add ``data``."""

    model_config = _FROZEN

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    id: EventId
    order_id: Annotated[str, Field(min_length=1)]
    occurred_at: AwareDatetime

    def envelope(self) -> EventEnvelope:
        """This event in its wire form."""
        data: dict[str, Any] = self.model_dump(
            mode="json", exclude={"id", "order_id", "occurred_at"}
        )
        return EventEnvelope(
            type=self.TYPE,
            id=self.id,
            order_id=self.order_id,
            occurred_at=self.occurred_at.astimezone(UTC),
            version=self.VERSION,
            data=data,
        )

    @staticmethod
    def from_envelope(envelope: EventEnvelope) -> DomainEvent:
        """The typed event of an envelope (raises KeyError for an unknown type)."""
        cls = EVENT_TYPES[envelope.type]
        return cls.model_validate(
            {
                **envelope.data,
                "id": envelope.id,
                "order_id": envelope.order_id,
                "occurred_at": envelope.occurred_at,
            }
        )


class EventLine(BaseModel):
    """One reserved, released or shipped line: SKU, warehouse, quantity."""

    model_config = _FROZEN

    sku: str
    warehouse: str
    quantity: Annotated[int, Field(gt=0)]


class OrderIngested(DomainEvent):
    """A channel's order was stored for the first time."""

    TYPE: ClassVar[str] = "order.ingested"

    channel: str
    external_id: str
    status: str
    buyer_id: str
    total: str | None = None
    """The order total as a decimal string, when the channel gave one."""
    currency: str | None = None


class OrderStatusChanged(DomainEvent):
    """An order moved from one status to another (the general case)."""

    TYPE: ClassVar[str] = "order.status_changed"

    from_status: str
    to_status: str
    reason: str | None = None


class OrderHeld(DomainEvent):
    """An order was put on hold by an exception rule or an operator."""

    TYPE: ClassVar[str] = "order.held"

    reasons: tuple[str, ...] = ()
    """Rule codes, never free text with customer data."""


class OrderReleased(DomainEvent):
    """A held order was released back into fulfilment."""

    TYPE: ClassVar[str] = "order.released"

    to_status: str


class OrderCancelled(DomainEvent):
    """An order was cancelled."""

    TYPE: ClassVar[str] = "order.cancelled"

    reason: str | None = None


class OrderShipped(DomainEvent):
    """An order left the warehouse with a courier."""

    TYPE: ClassVar[str] = "order.shipped"

    courier: str | None = None
    tracking_number: str | None = None
    lines: tuple[EventLine, ...] = ()


class StockReserved(DomainEvent):
    """Stock was held for an order."""

    TYPE: ClassVar[str] = "stock.reserved"

    reservation_id: str
    lines: tuple[EventLine, ...]
    expires_at: AwareDatetime | None = None


class ReservationReleased(DomainEvent):
    """An order's held stock went back on sale: released by a caller, or expired."""

    TYPE: ClassVar[str] = "stock.released"

    reservation_id: str
    reason: str
    """``released`` or ``expired``."""
    lines: tuple[EventLine, ...] = ()


class ReservationCommitted(DomainEvent):
    """An order's held stock left on_hand (it shipped)."""

    TYPE: ClassVar[str] = "stock.committed"

    reservation_id: str
    lines: tuple[EventLine, ...] = ()


class OrderPaid(DomainEvent):
    """The payment of an order was confirmed (its reservation no longer expires)."""

    TYPE: ClassVar[str] = "order.paid"

    reservation_id: str | None = None


class OrderRouted(DomainEvent):
    """An order got its fulfilment plan: the warehouses it ships from."""

    TYPE: ClassVar[str] = "order.routed"

    policy: str
    warehouses: tuple[str, ...]


class WaybillRequested(DomainEvent):
    """The order was allocated and its waybill task written (a worker asks the courier)."""

    TYPE: ClassVar[str] = "waybill.requested"

    task_key: str


class OrderCompleted(DomainEvent):
    """A shipped order was completed (delivered and no longer open for after-sales work)."""

    TYPE: ClassVar[str] = "order.completed"


EVENT_TYPES: dict[str, type[DomainEvent]] = {
    cls.TYPE: cls
    for cls in (
        OrderIngested,
        OrderStatusChanged,
        OrderHeld,
        OrderReleased,
        OrderCancelled,
        OrderShipped,
        StockReserved,
        ReservationReleased,
        ReservationCommitted,
        OrderPaid,
        OrderRouted,
        WaybillRequested,
        OrderCompleted,
    )
}
"""Every event type by its ``type`` name."""
