"""Shipments and their push-back to the platform (发货回传).

A :class:`Shipment` is one physical parcel with one tracking number. It carries one
:class:`ShipmentPart` per order inside it: one order split over several parcels has a
part in each, several orders merged into one parcel are parts of the same shipment.
A part names the order's package id (the waybill's) and the platform's sub-order ids
it holds (empty: the whole order).

Its life::

    preparing --pick--> picked --ship--> shipped
        |                  |
        +--intercept-------+--> recall_requested --recalled--> recalled

A platform does not know our parcels; it learns each one from a push per (order,
parcel). Each part therefore has a :class:`ShipmentPush` record::

    waiting --ship--> pending --ok--> ok
       |                 |  ^
       |                 v  | (the outbox retries it)
       |               retry ----------> failed (refused, or attempts used up)
       +--intercept--> cancelled

``last_error`` is what the platform or transport said, masked and cut short
(:func:`ordercore.domain.outbox.scrub_error`): no phone, name or secret is stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from ordercore.domain.outbox import scrub_error

__all__ = [
    "OPEN_PUSH_STATES",
    "PUSH_KIND",
    "RECALL_KIND",
    "SHIPMENT_TRANSITIONS",
    "PushState",
    "RecallRequest",
    "Shipment",
    "ShipmentPart",
    "ShipmentPush",
    "ShipmentState",
    "push_key",
    "pushes_for",
]

PUSH_KIND = "shipment.push"
"""The outbox task kind that pushes one part of a shipment to its platform."""
RECALL_KIND = "shipment.recall"
"""The outbox task kind that asks the warehouse / courier to stop an intercepted parcel."""

_FROZEN = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
Id = Annotated[str, Field(min_length=1, max_length=100)]


def push_key(shipment_id: str, order_id: str) -> str:
    """The idempotency key of the push of one order's part of one shipment."""
    return f"{PUSH_KIND}:{shipment_id}:{order_id}"


class ShipmentState(StrEnum):
    """Where a parcel is."""

    PREPARING = "preparing"
    """Handed to the warehouse (waybill printed), not yet picked."""
    PICKED = "picked"
    """Picked and packed, waiting for the courier."""
    SHIPPED = "shipped"
    """Handed to the courier. Final for interception: later it is an after-sale."""
    RECALL_REQUESTED = "recall_requested"
    """An order in it was cancelled before it shipped: the warehouse / courier is asked to stop."""
    RECALLED = "recalled"
    """The recall went out: the parcel is stopped."""


_SS = ShipmentState
SHIPMENT_TRANSITIONS: dict[ShipmentState, frozenset[ShipmentState]] = {
    _SS.PREPARING: frozenset({_SS.PICKED, _SS.SHIPPED, _SS.RECALL_REQUESTED}),
    _SS.PICKED: frozenset({_SS.SHIPPED, _SS.RECALL_REQUESTED}),
    _SS.SHIPPED: frozenset(),
    _SS.RECALL_REQUESTED: frozenset({_SS.RECALLED}),
    _SS.RECALLED: frozenset(),
}
"""Shipment state -> the states it may move to."""


class PushState(StrEnum):
    """Where the push-back of one order's part of a shipment is."""

    WAITING = "waiting"
    """The parcel has not shipped: nothing to tell the platform yet."""
    PENDING = "pending"
    """Shipped; the push task is queued."""
    RETRY = "retry"
    """An attempt failed in a way a retry may fix; the outbox runs it again later."""
    OK = "ok"
    """The platform accepted it (or already had exactly this). Final."""
    FAILED = "failed"
    """Refused by the platform, or out of attempts; a ticket is open. Redrive to retry."""
    CANCELLED = "cancelled"
    """Intercepted before the parcel shipped: never pushed. Final."""


OPEN_PUSH_STATES = (PushState.PENDING, PushState.RETRY)
"""States in which a push task still has work to do."""


class ShipmentPart(BaseModel):
    """One order's share of a parcel."""

    model_config = _FROZEN

    order_id: Id
    package_id: Annotated[str, Field(min_length=1, max_length=50)] = "1"
    """The order's package id (the waybill's), unique within the order."""
    sub_orders: tuple[Annotated[str, Field(min_length=1, max_length=100)], ...] = ()
    """The platform's sub-order ids (line ids) in this parcel; empty: the whole order."""


class Shipment(BaseModel):
    """One parcel: courier, tracking number and the order parts inside it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Id
    courier: Annotated[str, Field(min_length=1, max_length=50)]
    """Our courier code (``zto``, ``sf``...); adapters map it to the platform's code."""
    tracking_number: Annotated[str, Field(min_length=1, max_length=64)]
    parts: Annotated[tuple[ShipmentPart, ...], Field(min_length=1)]
    warehouse: str = ""
    state: ShipmentState = ShipmentState.PREPARING
    created_at: AwareDatetime
    updated_at: AwareDatetime
    shipped_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_part_per_order(self) -> Self:
        orders = [part.order_id for part in self.parts]
        if len(set(orders)) != len(orders):
            raise ValueError(f"one part per order in a shipment; orders repeat: {orders}")
        return self

    @property
    def order_ids(self) -> tuple[str, ...]:
        """The orders in this parcel, in part order."""
        return tuple(part.order_id for part in self.parts)

    @property
    def merged(self) -> bool:
        """Several orders share this parcel."""
        return len(self.parts) > 1

    def part_of(self, order_id: str) -> ShipmentPart | None:
        """The part of one order, if it is in this parcel."""
        for part in self.parts:
            if part.order_id == order_id:
                return part
        return None

    def can_move_to(self, target: ShipmentState) -> bool:
        """Whether the state machine allows ``target`` from the current state."""
        return target in SHIPMENT_TRANSITIONS[self.state]


class ShipmentPush(BaseModel):
    """The push-back of one order's part of one shipment; unique per (shipment, order)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shipment_id: Id
    order_id: Id
    package_id: Annotated[str, Field(min_length=1, max_length=50)] = "1"
    channel: Id
    external_order_id: Id
    sub_orders: tuple[str, ...] = ()
    state: PushState = PushState.WAITING
    attempts: Annotated[int, Field(ge=0)] = 0
    """Calls made to the platform so far."""
    last_error: str | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime
    pushed_at: AwareDatetime | None = None

    @property
    def key(self) -> str:
        """Its task's idempotency key (also sent to platforms that take one)."""
        return push_key(self.shipment_id, self.order_id)

    def failed_attempt(self, error: str, now: datetime, *, final: bool) -> ShipmentPush:
        """One more attempt that failed: ``retry``, or ``failed`` when ``final``."""
        return self.model_copy(
            update={
                "state": PushState.FAILED if final else PushState.RETRY,
                "attempts": self.attempts + 1,
                "last_error": scrub_error(error),
                "updated_at": max(now, self.updated_at),
            }
        )

    def succeeded(self, now: datetime, *, attempted: bool = True) -> ShipmentPush:
        """The platform has it; ``attempted``: this call counted as an attempt."""
        return self.model_copy(
            update={
                "state": PushState.OK,
                "attempts": self.attempts + (1 if attempted else 0),
                "pushed_at": now,
                "updated_at": max(now, self.updated_at),
            }
        )


def pushes_for(
    shipment: Shipment, orders: Iterable[tuple[str, str, str]], now: datetime
) -> list[ShipmentPush]:
    """The push records of a new shipment; ``orders`` gives (order id, channel, external id).

    Waiting until the parcel ships; pending at once when it is recorded as shipped.
    """
    known = {order_id: (channel, external) for order_id, channel, external in orders}
    state = PushState.PENDING if shipment.state is ShipmentState.SHIPPED else PushState.WAITING
    pushes = []
    for part in shipment.parts:
        channel, external = known[part.order_id]
        pushes.append(
            ShipmentPush(
                shipment_id=shipment.id,
                order_id=part.order_id,
                package_id=part.package_id,
                channel=channel,
                external_order_id=external,
                sub_orders=part.sub_orders,
                state=state,
                created_at=now,
                updated_at=now,
            )
        )
    return pushes


class RecallRequest(BaseModel):
    """Ask the warehouse (and courier) to stop a parcel whose order was intercepted.

    ``shipment_id`` is empty when only a waybill exists (nothing handed over yet).
    """

    model_config = _FROZEN

    order_id: Id
    package_id: str = ""
    shipment_id: str = ""
    warehouse: str = ""
    courier: str = ""
    tracking_number: str = ""
    reason: str = ""

    @property
    def key(self) -> str:
        """The recall's idempotency key (a WMS takes it as its request number)."""
        target = self.shipment_id or f"waybill:{self.order_id}:{self.package_id}"
        return f"{RECALL_KIND}:{target}"
