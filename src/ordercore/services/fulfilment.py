"""The fulfilment pipeline: ingest -> checks -> reserve -> route -> pay -> waybill -> ship.

Reached as ``core.fulfilment``. Each step is a method over a window of orders (a list
of ids, or the channel's orders for :meth:`FulfilmentService.accept`) and works in few
units of work, so a sale's burst costs transactions per window, not per order::

    accepted = await core.fulfilment.accept("taobao", orders)    # store, reserve, screen
    await core.fulfilment.confirm_payment(unpaid_ids)            # payment callbacks
    await core.fulfilment.request_waybill(accepted.ready)        # allocate + waybill task
    ...                                                          # a worker makes waybills
    await core.fulfilment.ship(scanned_out_ids)                  # commit the reservation
    await core.fulfilment.complete(delivered_ids)
    await core.fulfilment.cancel(ids, reason="buyer cancelled")  # at any step before ship

The critical path (ingest, reserve, payment, hold) never calls an outside service: the
waybill step only *writes* a ``waybill.create`` task into the outbox in the same unit of
work that allocates the order, and an outbox worker runs it later through the courier
failover chain (:class:`~ordercore.services.waybills.WaybillService`). While every
courier's breaker is open the worker defers the task; orders keep flowing meanwhile.

Every state change writes its domain events (:mod:`ordercore.domain.events`) through
:func:`~ordercore.services.outbox.enqueue_event` in the unit of work that makes the
change. Where another service owns that unit (the reservation in ``reserve_many``, a
routing plan, a hold written by screening), the events follow in the step's next unit.
Event ids are derived from what happened (order id, reservation id, order version), so
a step re-run after a crash writes the same events again and the outbox drops the
repeats by key: no event is lost, none is duplicated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from opentelemetry import trace

from ordercore.config import Settings
from ordercore.domain.events import (
    DomainEvent,
    EventLine,
    OrderCancelled,
    OrderCompleted,
    OrderHeld,
    OrderIngested,
    OrderPaid,
    OrderRouted,
    OrderShipped,
    ReservationCommitted,
    ReservationReleased,
    StockReserved,
    WaybillRequested,
)
from ordercore.domain.intake import UpsertOutcome
from ordercore.domain.inventory import (
    PaymentOutcome,
    Reservation,
    ReservationLine,
    ReservationStatus,
)
from ordercore.domain.orders import Order, OrderStatus
from ordercore.domain.outbox import OutboxTask
from ordercore.domain.privacy import mask_text
from ordercore.errors import ConcurrencyConflict, OrderCoreError
from ordercore.ports.clock import Clock
from ordercore.ports.storage import Storage, UnitOfWork
from ordercore.services.exceptions import ExceptionService
from ordercore.services.intake import IntakeService, StoreReport
from ordercore.services.outbox import EVENT_KIND, event_ordering_key, new_task
from ordercore.services.reservations import InventoryService, ReserveRequest
from ordercore.services.routing import RoutingService
from ordercore.services.waybills import CREATE_KIND

__all__ = ["AcceptReport", "FulfilmentService", "StepReport", "event_id"]

tracer = trace.get_tracer("ordercore")

_WINDOW_ATTEMPTS = 3
"""A window whose unit lost a race (ConcurrencyConflict) is re-read and tried again."""
_ACTIVE = ReservationStatus.ACTIVE
_RESERVABLE = frozenset({OrderStatus.PENDING_PAYMENT, OrderStatus.PAID})
_PAID_OR_LATER = frozenset(
    {OrderStatus.PAID, OrderStatus.ALLOCATED, OrderStatus.SHIPPED, OrderStatus.COMPLETED}
)


def event_id(kind: str, *parts: str) -> str:
    """A stable event id: the same fact gives the same id, so a re-run is deduplicated."""
    return hashlib.sha256(":".join((kind, *parts)).encode()).hexdigest()[:32]


@dataclass(slots=True)
class StepReport:
    """What one step did to a window of orders, by order id."""

    step: str
    done: list[str] = field(default_factory=list)
    """Orders this call moved through the step."""
    unchanged: list[str] = field(default_factory=list)
    """Orders already past the step (a repeated call, a retried callback): nothing done."""
    held: list[str] = field(default_factory=list)
    """Orders on hold: they stop until an operator releases them."""
    failed: dict[str, str] = field(default_factory=dict)
    """Orders the step could not take, with the reason (masked)."""

    def merge(self, other: StepReport) -> None:
        """Add another report's ids to this one."""
        self.done.extend(other.done)
        self.unchanged.extend(other.unchanged)
        self.held.extend(other.held)
        self.failed.update(other.failed)


@dataclass(slots=True)
class AcceptReport(StepReport):
    """What :meth:`FulfilmentService.accept` did: stored, reserved, screened."""

    stored: StoreReport = field(default_factory=StoreReport)
    """The intake's counts (created, updated, unchanged, stale, queued for review)."""
    reserved: list[str] = field(default_factory=list)
    """New orders holding stock now."""
    cancelled: list[str] = field(default_factory=list)
    """Stored orders the channel now reports cancelled (their stock was released)."""
    orders: dict[str, Order] = field(default_factory=dict)
    """The ready orders as stored: pass ``orders.values()`` to the next step (no re-read)."""

    @property
    def ready(self) -> list[str]:
        """New orders that passed the checks and hold stock: the next steps may take them."""
        return self.done


class _Writes:
    """Tasks and events of one unit of work, written with one ``outbox.enqueue`` call.

    Each event becomes the same ``ordercore.event`` task :func:`~ordercore.services.
    outbox.enqueue_event` writes; batching them saves a storage round trip per event.
    """

    __slots__ = ("now", "tasks")

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.tasks: list[OutboxTask] = []

    def event(self, event: DomainEvent) -> None:
        envelope = event.envelope()
        self.tasks.append(
            new_task(
                EVENT_KIND,
                envelope.model_dump(mode="json"),
                key=f"event:{envelope.id}",
                now=self.now,
                ordering_key=event_ordering_key(envelope.order_id),
            )
        )

    def waybill_task(self, order_id: str) -> None:
        self.tasks.append(
            new_task(
                CREATE_KIND,
                {"order_id": order_id},
                key=_waybill_key(order_id),
                now=self.now,
                ordering_key=order_id,
            )
        )

    async def flush(self, uow: UnitOfWork) -> None:
        if self.tasks:
            await uow.outbox.enqueue(self.tasks)  # a key stored before is skipped
            self.tasks = []


@dataclass(slots=True)
class _Window:
    """What a step's work sees for one order: the unit, the time, the window's reads."""

    uow: UnitOfWork
    now: datetime
    part: StepReport
    writes: _Writes
    reservations: dict[str, Reservation]


_Work = Callable[[_Window, Order], Awaitable[None]]
OrderRef = str | Order
"""An order id, or the order as the previous step returned it (saves a read; a stale
copy is detected by the version check and read again)."""


class FulfilmentService:
    """The pipeline's steps over the core services (module docstring)."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        settings: Settings,
        *,
        intake: IntakeService,
        inventory: InventoryService,
        exceptions: ExceptionService,
        routing: RoutingService,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._settings = settings
        self._intake = intake
        self._inventory = inventory
        self._exceptions = exceptions
        self._routing = routing
        self.window = settings.intake_batch_size
        """Orders per unit of work in the id-based steps."""

    # -- ingest and checks -----------------------------------------------------------------

    async def accept(
        self,
        channel: str,
        orders: Sequence[Order],
        *,
        screen: bool = True,
        warnings: Mapping[str, tuple[str, ...]] | None = None,
        devices: Mapping[str, str] | None = None,
    ) -> AcceptReport:
        """Ingest a channel's orders and run the checks; held orders stop here.

        Stores each order exactly once (the intake's dedup, health score and review
        queue, ``order.ingested`` in the same unit), reserves stock for the new ones,
        screens them with the exception rules (``screen``; high-severity findings hold
        the order and open a ticket) and writes ``stock.reserved`` / ``order.held``.
        A channel's cancellation of a stored order releases its stock. ``ready`` lists
        the new orders that hold stock and are not on hold; ``orders`` has them as
        stored, to hand to the next step.
        """
        report = AcceptReport("accept")
        created: list[Order] = []
        cancelled: list[str] = []

        async def on_stored(
            uow: UnitOfWork, batch: Sequence[Order], outcomes: Sequence[UpsertOutcome]
        ) -> None:
            writes = _Writes(self._clock.now())
            for order, outcome in zip(batch, outcomes, strict=True):
                if outcome is UpsertOutcome.CREATED:
                    created.append(order)
                    writes.event(_ingested(order, writes.now))
                elif outcome is UpsertOutcome.UPDATED and order.status is OrderStatus.CANCELLED:
                    cancelled.append(order.id)
                    writes.event(
                        OrderCancelled(
                            id=event_id(OrderCancelled.TYPE, order.id),
                            order_id=order.id,
                            occurred_at=writes.now,
                            reason="cancelled on the channel",
                        )
                    )
            await writes.flush(uow)

        with tracer.start_as_current_span(
            "ordercore.fulfilment.accept",
            attributes={"ordercore.channel": channel, "ordercore.orders": len(orders)},
        ) as span:
            stored = await self._intake.store_orders(
                channel, orders, warnings=warnings, on_stored=on_stored
            )
            assert stored is not None  # no guard: a store is never rolled back on purpose
            report.stored = stored
            held: set[str] = set()
            if screen and created:
                results = await self._exceptions.screen_many(created, devices=devices)
                held = {result.order_id for result in results if result.held}
            for start in range(0, max(len(created), len(cancelled)), self.window):
                await self._after_accept(
                    created[start : start + self.window],
                    cancelled[start : start + self.window],
                    held,
                    report,
                )
            span.set_attribute("ordercore.fulfilment.ready", len(report.done))
            span.set_attribute("ordercore.fulfilment.held", len(report.held))
        return report

    async def _after_accept(
        self,
        created: Sequence[Order],
        cancelled: Sequence[str],
        held: set[str],
        report: AcceptReport,
    ) -> None:
        writes = _Writes(self._clock.now())
        async with self._storage.unit_of_work() as uow:
            reservations = await uow.inventory.reservations(
                [order.id for order in created] + list(cancelled)
            )
            for order in created:
                reservation = reservations.get(order.id)
                active = reservation is not None and reservation.status is _ACTIVE
                if active:
                    assert reservation is not None
                    report.reserved.append(order.id)
                    writes.event(_reserved(reservation, writes.now))
                if order.id in held:
                    report.held.append(order.id)
                    writes.event(_held(order.id, "screening", writes.now))
                elif not active:
                    report.failed[order.id] = "no stock reserved (see the intake's errors)"
                else:
                    report.done.append(order.id)
                    report.orders[order.id] = order
            for order_id in cancelled:
                report.cancelled.append(order_id)
                reservation = reservations.get(order_id)
                if reservation is not None and reservation.status is ReservationStatus.RELEASED:
                    writes.event(_released(reservation, "released", writes.now))
            await writes.flush(uow)
            await uow.commit()

    async def reserve(self, orders: Iterable[OrderRef]) -> StepReport:
        """Hold stock for orders that hold none yet (added directly, or re-reserving).

        Idempotent: an order that holds stock is ``unchanged``. Orders are reserved
        together (``reserve_many``: one transaction per SKU group), then
        ``stock.reserved`` is written for each new reservation.
        """
        report = StepReport("reserve")
        requests: list[ReserveRequest] = []

        async def pick(window: _Window, order: Order) -> None:
            reservation = window.reservations.get(order.id)
            if reservation is not None and reservation.status in (
                _ACTIVE,
                ReservationStatus.COMMITTED,
            ):
                window.part.unchanged.append(order.id)
            elif order.status is OrderStatus.ON_HOLD:
                window.part.held.append(order.id)
            elif order.status not in _RESERVABLE:
                window.part.failed[order.id] = f"status {order.status.value} takes no stock"
            else:
                requests.append(self._request(order))

        await self._each(orders, pick, report, reservations=True)
        for start in range(0, len(requests), self.window):
            chunk = requests[start : start + self.window]
            outcomes = await self._inventory.reserve_many(chunk)
            writes = _Writes(self._clock.now())
            for request, outcome in zip(chunk, outcomes, strict=True):
                if isinstance(outcome, OrderCoreError):
                    report.failed[request.order_id] = mask_text(str(outcome))
                else:
                    report.done.append(request.order_id)
                    writes.event(_reserved(outcome, writes.now))
            await self._write(writes)
        return report

    async def route(self, orders: Iterable[OrderRef], *, policy: str | None = None) -> StepReport:
        """Choose each order's warehouses and move its stock there (``core.routing``).

        One routing unit per order (the plan, the stock move and the lines' warehouses
        commit together), then ``order.routed`` for the window. Routing is idempotent:
        an order that has a plan keeps it and the same event is written again (and
        dropped by its key).
        """
        report = StepReport("route")
        ids = _ids(orders)
        for start in range(0, len(ids), self.window):
            writes = _Writes(self._clock.now())
            for order_id in ids[start : start + self.window]:
                try:
                    plan = await self._routing.route(order_id, policy=policy)
                except OrderCoreError as exc:
                    report.failed[order_id] = mask_text(str(exc))
                    continue
                report.done.append(order_id)
                writes.event(
                    OrderRouted(
                        id=event_id(OrderRouted.TYPE, order_id, plan.created_at.isoformat()),
                        order_id=order_id,
                        occurred_at=plan.created_at,
                        policy=plan.policy,
                        warehouses=tuple(package.warehouse for package in plan.packages),
                    )
                )
            await self._write(writes)
        return report

    # -- payment, waybill, ship, complete, cancel ------------------------------------------

    async def confirm_payment(self, orders: Iterable[OrderRef]) -> StepReport:
        """The payment callback: the order is paid and its reservation stops expiring.

        Idempotent: an order already paid (or further along) is ``unchanged``, so a
        platform's repeated callback does nothing. The order's move to PAID, the
        reservation's paid mark and ``order.paid`` commit in one unit. A reservation
        that expired meanwhile is reserved again when stock allows; when it cannot be
        (or the order was cancelled) the order goes on hold for a person to decide.
        """
        report = StepReport("confirm_payment")
        late: list[str] = []

        async def pay(window: _Window, order: Order) -> None:
            part = window.part
            if order.status in _PAID_OR_LATER:
                part.unchanged.append(order.id)
                return
            if order.status is OrderStatus.ON_HOLD:
                part.held.append(order.id)
                return
            reservation = window.reservations.get(order.id)
            if (
                order.status is not OrderStatus.PENDING_PAYMENT
                or reservation is None
                or reservation.status is not _ACTIVE
            ):
                late.append(order.id)  # expired, released or cancelled: see _late_payment
                return
            if not reservation.paid:
                await window.uow.inventory.mark_paid(order.id, window.now)
            await self._move(window, order, OrderStatus.PAID, "payment confirmed")
            window.writes.event(_paid(order.id, window.now))
            part.done.append(order.id)

        await self._each(orders, pay, report, reservations=True)
        for order_id in late:
            await self._late_payment(order_id, report)
        return report

    async def _late_payment(self, order_id: str, report: StepReport) -> None:
        try:
            result = await self._inventory.confirm_payment(order_id)
        except OrderCoreError as exc:
            report.failed[order_id] = mask_text(str(exc))
            return
        if result.outcome is PaymentOutcome.NEEDS_ATTENTION:
            report.held.append(order_id)
            writes = _Writes(self._clock.now())
            writes.event(_held(order_id, "payment", writes.now))
            await self._write(writes)
            return

        async def paid(window: _Window, order: Order) -> None:
            if order.status is OrderStatus.PENDING_PAYMENT:
                await self._move(window, order, OrderStatus.PAID, "payment confirmed")
            if result.outcome is PaymentOutcome.RE_RESERVED:
                window.writes.event(_reserved(result.reservation, window.now, "again"))
            window.writes.event(_paid(order.id, window.now))
            window.part.done.append(order.id)

        await self._each([order_id], paid, report)

    async def request_waybill(self, orders: Iterable[OrderRef]) -> StepReport:
        """Allocate paid orders and write their ``waybill.create`` task; never call a courier.

        In one unit per window: the order moves PAID -> ALLOCATED, the task (key
        ``waybill.create:<order id>``, so once per order) and ``waybill.requested`` are
        written. An allocated order is ``unchanged`` (its task is written again only if
        it is missing). Unpaid, cancelled or unreserved orders fail; held ones wait.
        """
        report = StepReport("request_waybill")

        async def allocate(window: _Window, order: Order) -> None:
            part, status = window.part, order.status
            if status is OrderStatus.ON_HOLD:
                part.held.append(order.id)
                return
            if status in (OrderStatus.SHIPPED, OrderStatus.COMPLETED):
                part.unchanged.append(order.id)
                return
            if status is OrderStatus.ALLOCATED:
                window.writes.waybill_task(order.id)
                part.unchanged.append(order.id)
                return
            if status is not OrderStatus.PAID:
                part.failed[order.id] = f"status {status.value}: only paid orders are allocated"
                return
            reservation = window.reservations.get(order.id)
            if reservation is None or reservation.status is not _ACTIVE:
                part.failed[order.id] = "holds no active reservation"
                return
            await self._move(window, order, OrderStatus.ALLOCATED, "waybill requested")
            window.writes.waybill_task(order.id)
            window.writes.event(
                WaybillRequested(
                    id=event_id(WaybillRequested.TYPE, order.id),
                    order_id=order.id,
                    occurred_at=window.now,
                    task_key=_waybill_key(order.id),
                )
            )
            part.done.append(order.id)

        await self._each(orders, allocate, report, reservations=True)
        return report

    async def ship(self, orders: Iterable[OrderRef]) -> StepReport:
        """The parcels left: ALLOCATED -> SHIPPED and the reservation committed, one unit.

        The reservation's flip to committed happens once (a repeat is ``unchanged``);
        ``order.shipped`` carries the courier and tracking number of its waybill when
        one was made, and ``stock.committed`` the lines that left on_hand.
        """
        report = StepReport("ship")

        async def ship_one(window: _Window, order: Order) -> None:
            part, uow, now = window.part, window.uow, window.now
            if order.status in (OrderStatus.SHIPPED, OrderStatus.COMPLETED):
                part.unchanged.append(order.id)
                return
            if order.status is OrderStatus.ON_HOLD:
                part.held.append(order.id)
                return
            if order.status is not OrderStatus.ALLOCATED:
                part.failed[order.id] = f"status {order.status.value}: only allocated orders ship"
                return
            outcome = await uow.inventory.transition(order.id, ReservationStatus.COMMITTED, now)
            if outcome is None or outcome[0].status is not ReservationStatus.COMMITTED:
                part.failed[order.id] = "holds no active reservation to commit"
                return
            reservation, changed = outcome
            records = await uow.waybills.for_order(order.id)
            made = [record for record in records if record.courier and record.tracking_number]
            moved = await self._move(window, order, OrderStatus.SHIPPED, "shipped")
            lines = _lines(reservation.lines)
            window.writes.event(
                OrderShipped(
                    id=event_id(OrderShipped.TYPE, order.id, str(moved.version)),
                    order_id=order.id,
                    occurred_at=now,
                    courier=made[0].courier if made else None,
                    tracking_number=made[0].tracking_number if made else None,
                    lines=lines,
                )
            )
            if changed:
                window.writes.event(
                    ReservationCommitted(
                        id=event_id(ReservationCommitted.TYPE, reservation.id),
                        order_id=order.id,
                        occurred_at=now,
                        reservation_id=reservation.id,
                        lines=lines,
                    )
                )
            part.done.append(order.id)

        await self._each(orders, ship_one, report)
        return report

    async def complete(self, orders: Iterable[OrderRef]) -> StepReport:
        """Delivered: SHIPPED -> COMPLETED with ``order.completed``; repeats are ``unchanged``."""
        report = StepReport("complete")

        async def finish(window: _Window, order: Order) -> None:
            part = window.part
            if order.status is OrderStatus.COMPLETED:
                part.unchanged.append(order.id)
                return
            if order.status is not OrderStatus.SHIPPED:
                part.failed[order.id] = f"status {order.status.value}: only shipped orders complete"
                return
            await self._move(window, order, OrderStatus.COMPLETED, "completed")
            window.writes.event(
                OrderCompleted(
                    id=event_id(OrderCompleted.TYPE, order.id),
                    order_id=order.id,
                    occurred_at=window.now,
                )
            )
            part.done.append(order.id)

        await self._each(orders, finish, report)
        return report

    async def cancel(self, orders: Iterable[OrderRef], *, reason: str = "") -> StepReport:
        """Cancel orders at any step before shipping; their stock goes back exactly once.

        In one unit per window: the order moves to CANCELLED and its reservation flips
        to released (only the call whose flip hit a row gives the units back and writes
        ``stock.released``), with ``order.cancelled``. A pending ``waybill.create`` task
        is left to run: its handler finds the order cancelled and does nothing. A
        cancelled order is ``unchanged``; a shipped or completed one fails (returns go
        through after-sales).
        """
        report = StepReport("cancel")
        note = reason or "cancelled"
        released: set[str] = set()

        async def cancel_one(window: _Window, order: Order) -> None:
            part, now = window.part, window.now
            if order.status is OrderStatus.CANCELLED:
                part.unchanged.append(order.id)
                return
            if OrderStatus.CANCELLED not in order.allowed_next():
                part.failed[order.id] = f"status {order.status.value} cannot be cancelled"
                return
            await self._move(window, order, OrderStatus.CANCELLED, note)
            outcome = await window.uow.inventory.transition(
                order.id, ReservationStatus.RELEASED, now
            )
            window.writes.event(
                OrderCancelled(
                    id=event_id(OrderCancelled.TYPE, order.id),
                    order_id=order.id,
                    occurred_at=now,
                    reason=mask_text(note),
                )
            )
            if outcome is not None and outcome[1]:
                window.writes.event(_released(outcome[0], "released", now))
                released.update(line.sku for line in outcome[0].lines)
            part.done.append(order.id)

        await self._each(orders, cancel_one, report)
        for sku in released:  # units came back: a sold-out mark would refuse them
            self._inventory.sold_out.clear(sku)
        return report

    # -- helpers ---------------------------------------------------------------------------

    def _request(self, order: Order) -> ReserveRequest:
        warehouse = self._settings.default_warehouse
        return ReserveRequest(
            order.id,
            [
                ReservationLine(line.sku, line.warehouse or warehouse, line.quantity)
                for line in order.lines
            ],
            buyer_id=order.buyer_id,
        )

    async def _each(
        self,
        orders: Iterable[OrderRef],
        work: _Work,
        report: StepReport,
        *,
        reservations: bool = False,
    ) -> None:
        """Run ``work`` on each order, one unit of work per window, retrying lost races.

        Orders given as objects are used as they are; if one was stale, its save raises
        ConcurrencyConflict, the unit rolls back and the window runs again on orders
        read from storage.
        """
        refs = _refs(orders)
        with tracer.start_as_current_span(
            f"ordercore.fulfilment.{report.step}", attributes={"ordercore.orders": len(refs)}
        ):
            for start in range(0, len(refs), self.window):
                window = refs[start : start + self.window]
                for attempt in range(1, _WINDOW_ATTEMPTS + 1):
                    part = StepReport(report.step)
                    try:
                        await self._run_window(window, work, part, reservations)
                    except ConcurrencyConflict:
                        if attempt == _WINDOW_ATTEMPTS:
                            raise
                        window = [_id_of(ref) for ref in window]
                        continue
                    report.merge(part)
                    break

    async def _run_window(
        self, window: Sequence[OrderRef], work: _Work, part: StepReport, reservations: bool
    ) -> None:
        async with self._storage.unit_of_work() as uow:
            now = self._clock.now()
            held = (
                await uow.inventory.reservations([_id_of(ref) for ref in window])
                if reservations
                else {}
            )
            context = _Window(uow, now, part, _Writes(now), held)
            for ref in window:
                order = ref if isinstance(ref, Order) else await uow.orders.get(ref)
                if order is None:
                    part.failed[str(ref)] = "no such order"
                    continue
                await work(context, order)
            await context.writes.flush(uow)
            await uow.commit()

    @staticmethod
    async def _move(window: _Window, order: Order, target: OrderStatus, reason: str) -> Order:
        return await window.uow.orders.save(order.transition_to(target, window.now, reason))

    async def _write(self, writes: _Writes) -> None:
        if not writes.tasks:
            return
        async with self._storage.unit_of_work() as uow:
            await writes.flush(uow)
            await uow.commit()


def _refs(orders: Iterable[OrderRef]) -> list[OrderRef]:
    """The orders in order, each once (a plain string is one id)."""
    if isinstance(orders, str | Order):
        return [orders]
    unique: dict[str, OrderRef] = {}
    for ref in orders:
        unique.setdefault(_id_of(ref), ref)
    return list(unique.values())


def _id_of(ref: OrderRef) -> str:
    return ref.id if isinstance(ref, Order) else ref


def _ids(orders: Iterable[OrderRef]) -> list[str]:
    """The ids in order, each once."""
    return [_id_of(ref) for ref in _refs(orders)]


def _waybill_key(order_id: str) -> str:
    return f"{CREATE_KIND}:{order_id}"


def _lines(lines: Sequence[ReservationLine]) -> tuple[EventLine, ...]:
    return tuple(
        EventLine(sku=line.sku, warehouse=line.warehouse, quantity=line.quantity) for line in lines
    )


def _ingested(order: Order, now: datetime) -> OrderIngested:
    total = order.total
    return OrderIngested(
        id=event_id(OrderIngested.TYPE, order.id),
        order_id=order.id,
        occurred_at=now,
        channel=order.channel,
        external_id=order.external_id,
        status=order.status.value,
        buyer_id=order.buyer_id,
        total=str(total.amount),
        currency=total.currency,
    )


def _reserved(reservation: Reservation, now: datetime, *again: str) -> StockReserved:
    return StockReserved(
        id=event_id(StockReserved.TYPE, reservation.id, *again),
        order_id=reservation.order_id,
        occurred_at=now,
        reservation_id=reservation.id,
        lines=_lines(reservation.lines),
        expires_at=reservation.expires_at,
    )


def _released(reservation: Reservation, reason: str, now: datetime) -> ReservationReleased:
    return ReservationReleased(
        id=event_id(ReservationReleased.TYPE, reservation.id),
        order_id=reservation.order_id,
        occurred_at=now,
        reservation_id=reservation.id,
        reason=reason,
        lines=_lines(reservation.lines),
    )


def _held(order_id: str, source: str, now: datetime) -> OrderHeld:
    return OrderHeld(
        id=event_id(OrderHeld.TYPE, order_id, source),
        order_id=order_id,
        occurred_at=now,
        reasons=(source,),
    )


def _paid(order_id: str, now: datetime) -> OrderPaid:
    return OrderPaid(id=event_id(OrderPaid.TYPE, order_id), order_id=order_id, occurred_at=now)
