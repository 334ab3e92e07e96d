"""The records the memory storage keeps, and the undo log that makes a unit atomic.

Everything here is mutated only by a unit of work that holds the storage's lock, so no
record needs a lock of its own. Counters live in small mutable slotted records; the
reservation itself is the caller's frozen :class:`Reservation`, stored as given and
replaced (``dataclasses.replace``) when it changes: no copy per request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeAlias

from ordercore.domain.after_sales import AfterSale, Inspection
from ordercore.domain.channels import ChannelTokens
from ordercore.domain.couriers import WaybillRecord
from ordercore.domain.health import ReviewEntry
from ordercore.domain.intake import Cursor, Feed, RejectedRecord, SyncRun
from ordercore.domain.inventory import Reservation, StockLevel
from ordercore.domain.orders import Order
from ordercore.domain.outbox import OutboxTask
from ordercore.domain.routing import FulfilmentPlan, TransferRequest
from ordercore.domain.shipments import Shipment, ShipmentPush
from ordercore.domain.stock_push import PushRecord
from ordercore.domain.tickets import Ticket, TicketTask
from ordercore.domain.warehouses import Warehouse

__all__ = [
    "Level",
    "MemoryRepository",
    "MemoryState",
    "Movement",
    "Sale",
    "UndoEntry",
    "UndoLog",
    "Unit",
    "closed_unit",
    "undo_to",
]

UndoEntry: TypeAlias = tuple[Callable[..., None], *tuple[object, ...]]
"""``(function, *arguments)``: calling it reverses one applied change."""

UndoLog: TypeAlias = list[UndoEntry]
"""The changes of the open unit, oldest first; rolled back newest first."""


class Unit(Protocol):
    """What a repository needs from its unit of work: the open undo log, or None."""

    log: UndoLog | None


def closed_unit() -> RuntimeError:
    """The error for using a unit of work outside its ``async with`` or after commit()."""
    return RuntimeError(
        "this unit of work is not open: use it inside 'async with storage.unit_of_work()' "
        "and before commit()"
    )


class MemoryRepository:
    """Base of a memory unit of work's repositories: the shared state and the unit's undo log."""

    __slots__ = ("_state", "_unit")

    def __init__(self, state: MemoryState, unit: Unit) -> None:
        self._state = state
        self._unit = unit

    def _log(self) -> UndoLog:
        """The open unit's undo log (RuntimeError when the unit is not open)."""
        log = self._unit.log
        if log is None:
            raise closed_unit()
        return log


def undo_to(log: UndoLog, mark: int) -> None:
    """Reverse the changes logged after position ``mark``, newest first (a failed step)."""
    while len(log) > mark:
        entry = log.pop()
        entry[0](*entry[1:])


@dataclass(slots=True)
class Level:
    """The counters of one (sku, warehouse) stock level.

    ``moved`` is the running sum of this level's movements (what on_hand should be); it
    is kept so that old movements can one day be folded away without losing the sum.
    ``verify()`` still recomputes from the movement list itself.
    """

    on_hand: int = 0
    reserved: int = 0
    safety: int = 0
    safety_bp: int | None = None
    moved: int = 0

    def view(self, sku: str, warehouse: str) -> StockLevel:
        """This level as the port's frozen StockLevel."""
        return StockLevel(sku, warehouse, self.on_hand, self.reserved, self.safety, self.safety_bp)


@dataclass(frozen=True, slots=True)
class Movement:
    """One recorded change of on_hand: a receipt, an adjustment, a stocktake, a shipment."""

    sku: str
    warehouse: str
    delta: int
    reason: str
    reference: str
    at: datetime


@dataclass(slots=True)
class Sale:
    """The running flash sale of one SKU; ``sold`` counts units taken under ``sale_id``."""

    sale_id: str
    cap: int | None
    per_buyer_limit: int | None
    sold: int = 0


@dataclass(slots=True)
class MemoryState:
    """All data of one memory storage.

    ``reservations`` is keyed by order id (one reservation per order). ``sale_marks``
    holds, only for reservations with at least one flash-sale line, the sale id each line
    was counted under (None for a line outside any sale), aligned with ``lines``.

    ``expiry`` is a heap of ``(expires_at, order_id)`` and ``paying`` a heap of
    ``(payment_deadline, expires_at, order_id)`` for due reservations whose payment is in
    flight. Both are lazy indexes: an entry is only a hint, checked against the
    reservation when it is popped, so changing a reservation never searches a heap. Every
    active reservation with an ``expires_at`` has an entry in one of them.
    """

    levels: dict[str, dict[str, Level]] = field(default_factory=dict)
    """sku -> warehouse -> counters: no key tuple per lookup, a SKU's levels together."""
    movements: list[Movement] = field(default_factory=list)
    reservations: dict[str, Reservation] = field(default_factory=dict)
    sale_marks: dict[str, tuple[str | None, ...]] = field(default_factory=dict)
    sales: dict[str, Sale] = field(default_factory=dict)
    purchases: dict[str, dict[str, int]] = field(default_factory=dict)
    """Units per SKU per buyer, counted under the SKU's running sale."""
    expiry: list[tuple[datetime, str]] = field(default_factory=list)
    paying: list[tuple[datetime, datetime, str]] = field(default_factory=list)
    orders: dict[str, Order] = field(default_factory=dict)
    order_keys: dict[tuple[str, str], str] = field(default_factory=dict)
    """(channel, external_id) -> order id."""
    cursors: dict[tuple[str, Feed], Cursor] = field(default_factory=dict)
    runs: dict[str, SyncRun] = field(default_factory=dict)
    rejects: dict[str, RejectedRecord] = field(default_factory=dict)
    """By id, in insertion order."""
    deliveries: dict[tuple[str, str], datetime] = field(default_factory=dict)
    """(channel, message id) -> when it was first received."""
    reviews: dict[str, ReviewEntry] = field(default_factory=dict)
    """The review queue by order id, resolved entries included."""
    channel_tokens: dict[str, ChannelTokens] = field(default_factory=dict)
    """Each channel's refreshed tokens, by channel name."""
    tickets: dict[str, Ticket] = field(default_factory=dict)
    ticket_keys: dict[str, str] = field(default_factory=dict)
    """Key of each active ticket -> its id (one active ticket per key)."""
    ticket_tasks: dict[str, TicketTask] = field(default_factory=dict)
    ticket_task_keys: dict[str, str] = field(default_factory=dict)
    """Task key -> task id (scheduling is idempotent per key)."""
    outbox: dict[str, OutboxTask] = field(default_factory=dict)
    """Outbox tasks by id, in insertion (seq) order."""
    outbox_keys: dict[str, str] = field(default_factory=dict)
    """Idempotency key -> task id."""
    outbox_seq: list[int] = field(default_factory=lambda: [0])
    stock_pushes: dict[tuple[str, str], PushRecord] = field(default_factory=dict)
    """The last push per (shop, sku)."""
    """The last seq handed out (never reused, like a SQL sequence: not undone)."""
    waybills: dict[tuple[str, str], WaybillRecord] = field(default_factory=dict)
    """Waybill records by (order id, package id)."""
    shipments: dict[str, Shipment] = field(default_factory=dict)
    """Parcels by shipment id, in insertion order."""
    shipment_pushes: dict[tuple[str, str], ShipmentPush] = field(default_factory=dict)
    """Push-back records by (shipment id, order id), in insertion order."""
    warehouses: dict[str, Warehouse] = field(default_factory=dict)
    """Warehouses by code."""
    plans: dict[str, FulfilmentPlan] = field(default_factory=dict)
    """Each order's current fulfilment plan (its transfers live in ``transfers``)."""
    transfers: dict[str, TransferRequest] = field(default_factory=dict)
    """Transfer requests by id, in creation order."""
    feed_batches: dict[tuple[str, str], tuple[datetime, str]] = field(default_factory=dict)
    """(WMS source, batch id) -> when it was applied and its digest."""
    feed_cursors: dict[str, str] = field(default_factory=dict)
    after_sales: dict[str, AfterSale] = field(default_factory=dict)
    """After-sale requests by our id."""
    after_sale_keys: dict[tuple[str, str], str] = field(default_factory=dict)
    """(channel, external id) -> our after-sale id."""
    after_sale_handovers: dict[str, datetime] = field(default_factory=dict)
    """After-sale id -> when it was handed over to interception."""
    inspections: dict[str, Inspection] = field(default_factory=dict)
    """Inspections by after-sale id."""
    """Where each WMS source's feed was read up to."""
