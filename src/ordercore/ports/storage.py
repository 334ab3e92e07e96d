"""The storage port: repositories behind a unit of work, and the atomic stock primitives.

A storage adapter implements :class:`Storage`. Everything a caller does happens in a
:class:`UnitOfWork`::

    async with storage.unit_of_work() as uow:
        reservation, created = await uow.inventory.reserve(draft)
        await uow.commit()

Leaving the block without ``commit()`` (or with an exception) rolls everything back,
including stock taken by a primitive that succeeded earlier in the same unit. A
primitive that *raises* leaves no partial change behind: the unit can still commit
its other work (an SQL adapter undoes the rows it already touched before raising).

The inventory primitives are the no-oversell guarantee. Each is one atomic step in
the storage, never a read-then-write in the caller:

* ``reserve`` takes every line or nothing: the check ``on_hand - reserved - safety >= q``
  and the increment of ``reserved`` are one conditional update, lines are applied in
  sorted (sku, warehouse) order (the fixed lock order), and the order id is unique, so
  reserving the same order twice takes stock once.
* ``transition`` flips a reservation out of ``active`` first and adjusts counters only
  when that flip hit: release, commit and expire happen exactly once under retries
  and races.

The shared contract suite in :mod:`ordercore.testing` states all of it as tests.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from ordercore.config import Settings
from ordercore.domain.after_sales import AfterSale, AfterSaleStatus, Inspection
from ordercore.domain.channels import ChannelTokens
from ordercore.domain.couriers import Waybill, WaybillRecord, WaybillState
from ordercore.domain.health import ReviewEntry
from ordercore.domain.intake import Cursor, Feed, RejectedRecord, SyncRun, UpsertOutcome
from ordercore.domain.inventory import (
    BatchResult,
    Drift,
    FlashSale,
    Reservation,
    ReservationLine,
    ReservationStatus,
    StockLevel,
)
from ordercore.domain.orders import Order, OrderStatus
from ordercore.domain.outbox import OutboxState, OutboxTask
from ordercore.domain.routing import FulfilmentPlan, TransferRequest, TransferStatus
from ordercore.domain.shipments import PushState, Shipment, ShipmentPush, ShipmentState
from ordercore.domain.stock_push import PushRecord
from ordercore.domain.tickets import (
    AgentLoad,
    TaskKind,
    TaskState,
    Ticket,
    TicketQuery,
    TicketTask,
)
from ordercore.domain.warehouses import Warehouse

__all__ = [
    "AfterSaleRepository",
    "IntakeRepository",
    "InventoryRepository",
    "OrderRepository",
    "OutboxRepository",
    "RoutingRepository",
    "ShipmentRepository",
    "StockPushRepository",
    "Storage",
    "StorageFactory",
    "TicketRepository",
    "UnitOfWork",
    "WaybillRepository",
]


class InventoryRepository(Protocol):
    """Stock levels, reservations and flash sales: one consistency boundary."""

    async def receive(
        self, sku: str, warehouse: str, delta: int, now: datetime, *, reason: str, reference: str
    ) -> StockLevel:
        """Add ``delta`` (may be negative) to on_hand, creating the level when it is new.

        Raises StockAdjustmentConflict when on_hand would drop below reserved or zero, and
        UnknownSku for a negative delta on a level that does not exist. Records a movement.
        """
        ...

    async def count(
        self, sku: str, warehouse: str, on_hand: int, now: datetime, *, reference: str
    ) -> StockLevel:
        """Set on_hand to a counted figure (a stocktake), recording the difference as a movement."""
        ...

    async def set_safety(
        self, sku: str, warehouse: str, *, units: int | None, basis_points: int | None
    ) -> StockLevel:
        """Set safety stock as absolute units or a percentage in basis points (exactly one)."""
        ...

    async def stock_levels(
        self, sku: str | None = None, warehouse: str | None = None
    ) -> list[StockLevel]:
        """Stock levels, filtered by SKU and/or warehouse, sorted by (sku, warehouse)."""
        ...

    async def reserve(self, draft: Reservation) -> tuple[Reservation, bool]:
        """Hold every line of ``draft`` or nothing; return (reservation, created).

        ``draft.lines`` are merged and sorted by the caller. When the order already has a
        reservation, return it with ``created=False`` and take nothing. Raises UnknownSku,
        InsufficientStock, SaleCapReached, BuyerLimitExceeded or InvalidReservation, having
        undone whatever it had already changed (the unit can still commit other work).
        """
        ...

    async def reserve_batch(self, drafts: Sequence[Reservation]) -> BatchResult:
        """Reserve many one-line orders of one (sku, warehouse) in one step (a hot SKU).

        Every draft has exactly one line, all at the same (sku, warehouse); otherwise
        InvalidReservation. Lock the level once, read what it can sell, then grant the
        drafts in the given order while they fit (stock, flash-sale cap, per-buyer limit),
        and write the granted total with one conditional UPDATE and the granted
        reservations with one multi-row INSERT. Each draft gets its own all-or-nothing
        answer in ``BatchResult.outcomes``; an order that already has a reservation gets
        it back and takes nothing (also when it appears twice in one batch).
        """
        ...

    async def reservation(self, order_id: str) -> Reservation | None:
        """The reservation of an order, whatever its status."""
        ...

    async def reservations(self, order_ids: Sequence[str]) -> dict[str, Reservation]:
        """The reservations of several orders (those that have one), by order id; one read."""
        ...

    async def transition(
        self, order_id: str, target: ReservationStatus, now: datetime
    ) -> tuple[Reservation, bool] | None:
        """Move an *active* reservation to ``target`` (released, committed or expired).

        Flip the status first; only when that flip hit, adjust counters:
        released/expired give ``reserved`` (and flash-sale and per-buyer counts) back;
        committed lowers ``on_hand`` and ``reserved`` together and records a movement.
        Return (reservation as it now stands, whether this call changed it), or None when
        the order has no reservation.
        """
        ...

    async def begin_payment(self, order_id: str, deadline: datetime, now: datetime) -> bool:
        """Mark payment in flight on an active reservation until ``deadline``.

        The expiry sweep leaves it alone until then. False when it is not active.
        """
        ...

    async def mark_paid(self, order_id: str, now: datetime) -> bool:
        """Set paid and stop an active reservation from expiring. False when not active."""
        ...

    async def reactivate(
        self, order_id: str, now: datetime, expires_at: datetime | None, *, paid: bool
    ) -> Reservation | None:
        """Take stock again for an *expired* reservation, all or nothing; make it active.

        None when the reservation is not expired. Raises like ``reserve`` when stock or a
        flash-sale limit no longer allows it, leaving the reservation expired and nothing
        else changed.
        """
        ...

    async def expire_due(self, now: datetime, limit: int) -> list[Reservation]:
        """Expire up to ``limit`` due reservations (see Reservation.is_due) and return them.

        Safe to run in several processes at once: each reservation is expired once.
        """
        ...

    async def set_flash_sale(
        self, sku: str, *, cap: int | None, per_buyer_limit: int | None
    ) -> FlashSale:
        """Start (or change the limits of) the flash sale of a SKU."""
        ...

    async def end_flash_sale(self, sku: str) -> None:
        """End the flash sale of a SKU; its counters are dropped."""
        ...

    async def flash_sale(self, sku: str) -> FlashSale | None:
        """The flash sale of a SKU, if one runs."""
        ...

    async def verify(self) -> list[Drift]:
        """Recompute every counter from its records and report each disagreement.

        reserved per level = active reservation lines; on_hand per level = sum of
        movements; sold per flash sale = active and committed lines since it started;
        per-buyer counts likewise. An empty list means no drift.
        """
        ...


class OrderRepository(Protocol):
    """Orders, stored whole (lines, receiver, address, status history)."""

    async def add(self, order: Order) -> None:
        """Store a new order; DuplicateOrder if its id or (channel, external_id) exists."""
        ...

    async def get(self, order_id: str) -> Order | None:
        """The order with this id."""
        ...

    async def get_by_external(self, channel: str, external_id: str) -> Order | None:
        """The order a channel knows by ``external_id``."""
        ...

    async def save(self, order: Order) -> Order:
        """Store a changed order if its version is still the stored one; return it bumped.

        Raises ConcurrencyConflict when another writer saved first, OrderNotFound when absent.
        """
        ...

    async def list(self, *, status: OrderStatus | None = None, limit: int = 100) -> Sequence[Order]:
        """Orders, newest first, optionally of one status."""
        ...

    async def get_many_by_external(
        self, channel: str, external_ids: Sequence[str]
    ) -> dict[str, Order]:
        """The stored orders of one channel among ``external_ids``, by external id; one read."""
        ...

    async def upsert_many(self, orders: Sequence[Order]) -> builtins.list[UpsertOutcome]:
        """Store channel orders exactly once per (channel, external_id), newest version winning.

        For each order, aligned with the input: CREATED when the key is new; UPDATED when
        its ``source_modified_at`` is later than the stored one's (the document is
        replaced and ``version`` bumped); UNCHANGED when it is the same; STALE when it is
        older (nothing written). A None ``source_modified_at`` counts as oldest. The
        comparison is part of the write (a conditional UPDATE), so concurrent intakes of
        one order from poll and webhook cannot regress it. Two versions of one key in one
        call are applied in order. Batched: one round trip per statement, not per order.
        An existing key keeps its stored id; a new key whose id another order already
        holds raises DuplicateOrder and nothing from the call is kept.
        """
        ...


class IntakeRepository(Protocol):
    """Channel intake bookkeeping: cursors, the sync ledger, rejects, webhook dedup."""

    async def cursor(self, channel: str, feed: Feed) -> Cursor | None:
        """Where the channel's feed is complete up to, if it ever completed a window."""
        ...

    async def advance_cursor(self, cursor: Cursor) -> bool:
        """Move the feed's cursor to ``cursor.position`` if that is later; False otherwise.

        Runs in the same unit of work as the orders the window stored, so the cursor never
        gets ahead of them.
        """
        ...

    async def save_run(self, run: SyncRun) -> None:
        """Insert or replace a ledger entry (keyed by run id)."""
        ...

    async def runs(self, channel: str | None = None, *, limit: int = 50) -> list[SyncRun]:
        """Ledger entries, newest first (by started_at, then id), optionally of one channel."""
        ...

    async def add_rejects(self, records: Sequence[RejectedRecord]) -> None:
        """Keep raw payloads that failed mapping or storing, for replay."""
        ...

    async def rejects(
        self, channel: str | None = None, *, unresolved_only: bool = True, limit: int = 100
    ) -> list[RejectedRecord]:
        """Kept rejects, oldest first, optionally of one channel and only unresolved ones."""
        ...

    async def resolve_reject(self, reject_id: str, at: datetime) -> bool:
        """Mark a reject replayed successfully; False when unknown or already resolved."""
        ...

    async def enqueue_reviews(self, entries: Sequence[ReviewEntry]) -> None:
        """Put orders in the review queue, or refresh their score and reasons if queued.

        An order whose earlier entry was resolved is queued again (a new version scored
        low again); ``entered_at`` is kept while the entry stays unresolved.
        """
        ...

    async def review_queue(
        self, channel: str | None = None, *, limit: int = 100
    ) -> list[ReviewEntry]:
        """Unresolved entries, lowest score first (then oldest), optionally of one channel."""
        ...

    async def resolve_review(self, order_id: str, at: datetime) -> bool:
        """Take an order off the queue; False when it is not queued (or already resolved)."""
        ...

    async def remember_deliveries(
        self, channel: str, message_ids: Sequence[str], at: datetime
    ) -> set[str]:
        """Record webhook message ids; return those not seen before (the rest are replays)."""
        ...

    async def save_channel_tokens(self, tokens: ChannelTokens) -> bool:
        """Keep a channel's refreshed tokens (a refresh token is often single-use).

        One conditional write: stored when the channel has none, when the stored ones
        descend from another configured token (the seller authorised the app again) or
        are older (``refreshed_at``); otherwise nothing is written and False returned.
        Another process that saved newer tokens first therefore always wins.
        """
        ...

    async def load_channel_tokens(self, channel: str) -> ChannelTokens | None:
        """The channel's saved tokens, if any."""
        ...


class TicketRepository(Protocol):
    """Exception tickets and their durable tasks (timers, outgoing messages).

    At most one *active* ticket per ``Ticket.key`` (unique among active tickets, decided
    by the storage). Tasks are claimed exactly once: a claim is a conditional write
    (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the single writer on SQLite, the lock in
    memory), and only the claim's holder may finish the task.
    """

    async def add(self, ticket: Ticket) -> tuple[Ticket, bool]:
        """Store a new ticket; return (ticket, True).

        When an active ticket with the same key exists, store nothing and return
        (that ticket, False).
        """
        ...

    async def get(self, ticket_id: str) -> Ticket | None:
        """The ticket with this id."""
        ...

    async def save(self, ticket: Ticket) -> Ticket:
        """Store a changed ticket if its version is still the stored one; return it bumped.

        Raises ConcurrencyConflict when another writer saved first, TicketNotFound when
        absent.
        """
        ...

    async def find(self, query: TicketQuery) -> list[Ticket]:
        """Tickets matching ``query``, newest opened first (then id, descending)."""
        ...

    async def workload(self, agents: Sequence[str]) -> dict[str, AgentLoad]:
        """Active ticket count and last assignment time of each agent (all agents given)."""
        ...

    async def schedule(self, tasks: Sequence[TicketTask]) -> int:
        """Store new tasks; one whose key exists is skipped. Returns how many were stored."""
        ...

    async def cancel_tasks(self, ticket_id: str, kinds: Sequence[TaskKind], now: datetime) -> int:
        """Cancel the pending tasks of these kinds of a ticket; returns how many."""
        ...

    async def claim_tasks(
        self, now: datetime, *, claim: str, lease_until: datetime, limit: int
    ) -> list[TicketTask]:
        """Claim up to ``limit`` tasks, earliest due first, and return them claimed.

        Claimable: pending and due (``due_at <= now``), or claimed with a lease that ran
        out (``lease_until <= now``). Each claim sets ``claim``, ``lease_until`` and adds
        one attempt. Safe in several processes at once: no task is claimed twice.
        """
        ...

    async def finish_task(
        self,
        task_id: str,
        claim: str,
        state: TaskState,
        now: datetime,
        *,
        retry_at: datetime | None = None,
        error: str | None = None,
    ) -> bool:
        """End a claim: DONE, FAILED or CANCELLED, or PENDING again due at ``retry_at``.

        Only while the task is still claimed by ``claim``; False otherwise (it was taken
        over, and nothing is written).
        """
        ...

    async def tasks(
        self, ticket_id: str | None = None, *, states: Sequence[TaskState] = ()
    ) -> builtins.list[TicketTask]:
        """Tasks, optionally of one ticket and some states, by due time then id."""
        ...


class OutboxRepository(Protocol):
    """Durable tasks (the outbox), written in the same unit of work as the change they follow.

    A claim is a lease and a conditional write (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
    the single writer on SQLite, the lock in memory): no task is held by two owners at
    once. Only the current lease owner may complete, fail or renew a task (a
    compare-and-set on ``lease_owner``), so a worker whose lease ran out and was taken
    over cannot finish it. See :mod:`ordercore.domain.outbox` for the states.
    """

    async def enqueue(self, tasks: Sequence[OutboxTask]) -> builtins.list[str]:
        """Store new tasks (ids and seq assigned as given / by the storage).

        Idempotent on ``key``: a task whose key is already stored (in any state) is
        skipped. Returns the keys that were stored, in input order.
        """
        ...

    async def claim(
        self,
        owner: str,
        *,
        limit: int,
        lease_until: datetime,
        now: datetime,
        kinds: Sequence[str] | None = None,
    ) -> builtins.list[OutboxTask]:
        """Claim up to ``limit`` claimable tasks (of ``kinds``, if given), oldest due first.

        Claimable: pending or running with ``available_at <= now`` (a running task's
        ``available_at`` is its lease expiry), and no task with the same ordering key
        and a lower ``seq`` is pending or running (whatever its kind). Each claim sets
        state running, ``lease_owner``, ``lease_until`` (= ``available_at``) and adds one
        attempt. Returns the claimed tasks.
        """
        ...

    async def renew(
        self, ids: Sequence[str], owner: str, *, lease_until: datetime, now: datetime
    ) -> set[str]:
        """Extend the leases ``owner`` still holds; return the ids it still holds."""
        ...

    async def complete(self, task_id: str, owner: str, now: datetime) -> bool:
        """Mark a running task done if ``owner`` holds it; False otherwise (nothing written)."""
        ...

    async def fail(
        self,
        task_id: str,
        owner: str,
        now: datetime,
        *,
        error: str,
        retry_at: datetime | None,
    ) -> bool:
        """End an attempt that failed, if ``owner`` holds the task; False otherwise.

        With ``retry_at`` the task is pending again, due then; without, it is dead.
        ``error`` is stored as ``last_error`` (callers scrub it first).
        """
        ...

    async def get(self, task_id: str) -> OutboxTask | None:
        """The task with this id."""
        ...

    async def list(
        self,
        *,
        states: Sequence[OutboxState] = (),
        kind: str | None = None,
        ordering_key: str | None = None,
        limit: int = 100,
    ) -> builtins.list[OutboxTask]:
        """Tasks in insertion order (``seq``), optionally of some states, a kind, a key."""
        ...

    async def counts(self) -> dict[OutboxState, int]:
        """How many tasks are in each state (every state present, zero included)."""
        ...

    async def redrive(self, ids: Sequence[str] | None, now: datetime) -> builtins.list[str]:
        """Make dead tasks pending again, due now, attempts reset; ``None``: every dead task.

        Returns the ids redriven (tasks that are not dead are left alone).
        """
        ...

    async def purge(self, finished_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` done tasks finished before then; returns how many."""
        ...


class WaybillRepository(Protocol):
    """The waybill of each order package, unique per (order id, package id).

    ``begin`` and ``complete`` are each one conditional write, so two workers running the
    same task, a retry and a crash all end with one record holding one waybill.
    """

    async def begin(self, order_id: str, package_id: str, now: datetime) -> WaybillRecord:
        """Record that a waybill is being asked for; return the record as it now stands.

        A new record is ``requested`` with ``attempts`` 1; an existing ``requested`` one
        has ``attempts`` increased; a ``created`` one is returned unchanged (nothing to do).
        """
        ...

    async def complete(
        self, order_id: str, package_id: str, waybill: Waybill, now: datetime
    ) -> bool:
        """Fill in the courier's waybill if the record is still ``requested``.

        False when another run completed it first (its waybill stays) or it does not exist.
        """
        ...

    async def get(self, order_id: str, package_id: str) -> WaybillRecord | None:
        """One package's record."""
        ...

    async def for_order(self, order_id: str) -> builtins.list[WaybillRecord]:
        """Every package record of one order, by package id."""
        ...

    async def counts(self) -> dict[WaybillState, int]:
        """Records per state (every state present, zero included)."""
        ...


class ShipmentRepository(Protocol):
    """Parcels (shipments) and the push-back record of each order part in them.

    State changes are compare-and-set on the stored state, so two workers, a retry and
    an interception racing a ship all leave one consistent outcome.
    """

    async def add(self, shipment: Shipment, pushes: Sequence[ShipmentPush]) -> bool:
        """Store a new shipment and its push records; False (nothing written) if the id exists."""
        ...

    async def get(self, shipment_id: str) -> Shipment | None:
        """One shipment."""
        ...

    async def for_order(self, order_id: str) -> builtins.list[Shipment]:
        """The shipments holding a part of the order, oldest first."""
        ...

    async def move(
        self,
        shipment_id: str,
        target: ShipmentState,
        from_states: Sequence[ShipmentState],
        now: datetime,
    ) -> bool:
        """Set the state to ``target`` if it is one of ``from_states`` (``shipped_at`` set on
        shipping); False when it was not (or there is no such shipment)."""
        ...

    async def move_pushes(
        self,
        shipment_id: str,
        target: PushState,
        from_states: Sequence[PushState],
        now: datetime,
        *,
        order_id: str | None = None,
    ) -> int:
        """Set the pushes of a shipment (or of one order in it) in ``from_states`` to
        ``target``; returns how many moved."""
        ...

    async def save_push(self, push: ShipmentPush, from_states: Sequence[PushState]) -> bool:
        """Write ``push`` (state, attempts, error, times) if the stored one is in
        ``from_states``; False otherwise."""
        ...

    async def get_push(self, shipment_id: str, order_id: str) -> ShipmentPush | None:
        """The push record of one order's part of one shipment."""
        ...

    async def pushes(
        self,
        *,
        order_id: str | None = None,
        shipment_id: str | None = None,
        states: Sequence[PushState] = (),
        limit: int = 1000,
    ) -> builtins.list[ShipmentPush]:
        """Push records, oldest first (created_at, shipment id, order id), filtered."""
        ...

    async def push_counts(self) -> dict[PushState, int]:
        """Push records per state (every state present, zero included)."""
        ...


class StockPushRepository(Protocol):
    """The last push of each SKU to each shop (what the platform shows, as far as we know)."""

    async def save_pushes(self, records: Sequence[PushRecord]) -> int:
        """Upsert by (shop, sku); a record older (``attempted_at``) than the stored one is
        skipped. Returns how many were kept."""
        ...

    async def pushes(
        self,
        *,
        shop: str | None = None,
        skus: Sequence[str] | None = None,
        for_update: bool = False,
    ) -> builtins.list[PushRecord]:
        """The records of one shop and/or some SKUs (both None: all), by (shop, sku).

        ``for_update``: lock them until the unit ends (SELECT ... FOR UPDATE where the
        engine has row locks; SQLite and memory units are serialised anyway), so a
        push's headroom check and its intent are one step.
        """
        ...


class RoutingRepository(Protocol):
    """Warehouses, fulfilment plans with their transfer requests, and WMS feed bookkeeping.

    ``relocate`` is an inventory primitive that lives here because routing is its only
    user: it moves an order's active reservation to other warehouses in one atomic step.
    """

    async def save_warehouse(self, warehouse: Warehouse) -> None:
        """Insert or replace a warehouse (keyed by code)."""
        ...

    async def warehouse(self, code: str) -> Warehouse | None:
        """The warehouse with this code."""
        ...

    async def warehouses(self, *, active_only: bool = False) -> builtins.list[Warehouse]:
        """Every warehouse (or only active ones), by code."""
        ...

    async def save_plan(self, plan: FulfilmentPlan) -> None:
        """Store an order's plan, replacing its previous one and that one's transfers."""
        ...

    async def plan(self, order_id: str) -> FulfilmentPlan | None:
        """The order's current plan, with its transfers."""
        ...

    async def transfers(
        self, *, status: TransferStatus | None = None, warehouse: str | None = None
    ) -> builtins.list[TransferRequest]:
        """Transfer requests, optionally of one status and into or out of one warehouse,
        oldest first (then id)."""
        ...

    async def set_transfer_status(
        self, transfer_id: str, status: TransferStatus, now: datetime
    ) -> TransferRequest | None:
        """Move a *requested* transfer to ``status`` (a conditional write: once only).

        Returns the transfer as it now stands when this call changed it, None when it is
        unknown or no longer requested.
        """
        ...

    async def relocate(
        self, order_id: str, lines: Sequence[ReservationLine], now: datetime
    ) -> Reservation:
        """Move an order's *active* reservation onto ``lines`` (merged, sorted), atomically.

        The per-SKU totals must stay the same (InvalidReservation otherwise). Counters
        change by the net difference per (sku, warehouse), in sorted order (the lock
        order); each increase is the same conditional update as ``reserve``, so nothing
        oversells. Raises ReservationNotFound, ReservationStateConflict (not active),
        UnknownSku or InsufficientStock having changed nothing. Flash-sale and per-buyer
        counts do not change (same SKUs, same units).
        """
        ...

    async def record_feed_batch(
        self, source: str, batch_id: str, cursor: str, digest: str, entries: int, now: datetime
    ) -> str | None:
        """Remember a WMS feed batch as applied and move the source's cursor to ``cursor``.

        None when the batch is new. When this batch id of this source was recorded before,
        write nothing and return the digest recorded then (applying a feed is idempotent
        per batch; a different digest means the WMS changed the batch between reads).
        """
        ...

    async def feed_cursor(self, source: str) -> str | None:
        """Where the source's feed was read up to."""
        ...


class AfterSaleRepository(Protocol):
    """After-sale requests (refunds, returns, exchanges, resends) and their inspections."""

    async def get(self, after_sale_id: str) -> AfterSale | None:
        """The after-sale with this id."""
        ...

    async def get_many_by_external(
        self, channel: str, external_ids: Sequence[str]
    ) -> dict[str, AfterSale]:
        """The stored after-sales of one channel among ``external_ids``, by external id."""
        ...

    async def upsert_many(self, after_sales: Sequence[AfterSale]) -> builtins.list[UpsertOutcome]:
        """Store after-sales exactly once per (channel, external_id), newest version winning.

        Aligned with the input: CREATED when the key is new; UPDATED when its
        ``source_modified_at`` is later than the stored one's (replaced, ``version``
        bumped, the stored id, ``order_id`` link and ``created_at`` kept); UNCHANGED when
        the same; STALE when older (nothing written). The comparison is part of the write.
        """
        ...

    async def list(
        self,
        *,
        channel: str | None = None,
        order_id: str | None = None,
        status: AfterSaleStatus | None = None,
        unlinked_only: bool = False,
        limit: int = 100,
    ) -> builtins.list[AfterSale]:
        """After-sales, most recently changed on the platform first, then by id."""
        ...

    async def link(self, channel: str, order_external_id: str, order_id: str) -> int:
        """Set ``order_id`` on the channel's unlinked after-sales of that platform order.

        A conditional write (only rows still unlinked); returns how many it linked.
        """
        ...

    async def claim_handover(self, after_sale_id: str, now: datetime) -> bool:
        """Mark the after-sale handed over to interception; False when it already was."""
        ...

    async def add_inspection(self, inspection: Inspection) -> tuple[Inspection, bool]:
        """Keep the after-sale's inspection unless it has one: (stored inspection, created)."""
        ...

    async def inspection(self, after_sale_id: str) -> Inspection | None:
        """The after-sale's inspection, if it was inspected."""
        ...


@runtime_checkable
class UnitOfWork(Protocol):
    """One transaction over the repositories; rolled back unless committed."""

    inventory: InventoryRepository
    orders: OrderRepository
    intake: IntakeRepository
    tickets: TicketRepository
    outbox: OutboxRepository
    waybills: WaybillRepository
    shipments: ShipmentRepository
    stock_push: StockPushRepository
    routing: RoutingRepository
    after_sales: AfterSaleRepository

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None:
        """Make the unit's changes durable and visible."""
        ...

    async def rollback(self) -> None:
        """Discard the unit's changes."""
        ...


@runtime_checkable
class Storage(Protocol):
    """A storage adapter. Open it once, make many units of work, close it."""

    name: str

    async def open(self) -> None:
        """Connect, and bring the schema to the current migration when settings ask for it."""
        ...

    async def close(self) -> None:
        """Release every connection."""
        ...

    def unit_of_work(self) -> UnitOfWork:
        """A new unit of work (not yet begun)."""
        ...

    async def ping(self) -> None:
        """Raise StorageUnavailable when the storage cannot be reached."""
        ...

    async def server_time(self) -> datetime | None:
        """The storage server's current UTC time, or None when it has no clock of its own.

        The core aligns its clock to this so that every process judges expiry alike.
        """
        ...


class StorageFactory(Protocol):
    """What the ``ordercore.storage`` entry point names: builds a Storage from a URL."""

    def __call__(self, url: str, settings: Settings) -> Storage: ...
