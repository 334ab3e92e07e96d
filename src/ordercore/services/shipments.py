"""Shipments: parcels, their push-back to the platform (发货回传), and interception.

Reached as ``core.shipments``. A parcel is recorded when the warehouse gets it
(:meth:`ShipmentService.prepare`, or :meth:`~ShipmentService.from_waybill` for a
waybill's package), may be picked, and ships (:meth:`~ShipmentService.ship`); or it is
recorded as shipped in one step (:meth:`~ShipmentService.record`). Shipping is one unit
of work that moves each order in the parcel to SHIPPED (its reservation committed, once)
and enqueues one ``shipment.push`` task per order part, keyed by (shipment, order) and
ordered by the order id: the packages of one order reach the platform in the order they
shipped, and a retry never pushes a package twice.

Workers run the tasks (:meth:`~ShipmentService.register` adds the handlers)::

    registry = HandlerRegistry()
    core.shipments.register(registry)          # shipment.push + shipment.recall
    await core.outbox.worker(registry).run()

The push handler calls the channel adapter's
:meth:`~ordercore.ports.channels.ShipmentPushPort.push_shipment`. A transient failure
(ChannelUnavailable, a timeout) marks the push ``retry`` and the outbox retries it with
backoff; a refusal (ShipmentPushRefused, any business error) or the last allowed attempt
marks it ``failed`` and opens a ``shipment_push`` ticket. Redriving the dead task tries
again.

Interception (:meth:`~ShipmentService.intercept`): the platform reports a refund or
cancellation before the parcel left. In one unit of work the order is cancelled, its
reservation released (exactly once: the storage's compare-and-set), every parcel still at
the warehouse moves to ``recall_requested`` with its pushes ``cancelled``, and a
``shipment.recall`` task is written per parcel (or per waybill not yet handed over).
Pending ``waybill.create`` tasks then find the order cancelled and do nothing, and a
later :meth:`~ShipmentService.ship` raises OrderIntercepted. The intake calls it for
every order a platform cancels (``IntakeService.on_cancelled``).
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from opentelemetry import metrics, trace
from pydantic import ValidationError

from ordercore.config import Settings
from ordercore.domain.couriers import WaybillState, waybill_key
from ordercore.domain.inventory import ReservationStatus
from ordercore.domain.orders import Order, OrderStatus
from ordercore.domain.outbox import OutboxState, OutboxTask, scrub_error
from ordercore.domain.severity import Severity
from ordercore.domain.shipments import (
    PUSH_KIND,
    RECALL_KIND,
    PushState,
    RecallRequest,
    Shipment,
    ShipmentPart,
    ShipmentPush,
    ShipmentState,
    push_key,
    pushes_for,
)
from ordercore.errors import (
    FieldError,
    InvalidInput,
    OrderCoreError,
    OrderIntercepted,
    OrderNotFound,
    OrderOnHold,
    ReservationNotFound,
    ReservationStateConflict,
    ShipmentNotFound,
    ShipmentStateConflict,
    TooLateToIntercept,
    UnknownAdapter,
)
from ordercore.ports.channels import ShipmentPushPort
from ordercore.ports.clock import Clock
from ordercore.ports.couriers import CourierPort
from ordercore.ports.shipments import RecallPort
from ordercore.ports.storage import Storage, UnitOfWork
from ordercore.resilience.classify import ErrorKind, default_classifier
from ordercore.services.outbox import HandlerRegistry, enqueue
from ordercore.services.reservations import InventoryService
from ordercore.services.tickets import TicketService
from ordercore.services.waybills import packages_of

__all__ = ["TICKET_TYPE", "Interception", "ShipmentService"]

TICKET_TYPE = "shipment_push"
"""The ticket type a failed push-back opens."""

logger = logging.getLogger("ordercore.shipments")
tracer = trace.get_tracer("ordercore")
meter = metrics.get_meter("ordercore")
_push_outcomes = meter.create_counter(
    "ordercore.shipments.pushes",
    unit="{push}",
    description="Shipment push-back attempts by channel and outcome (ok, retry, failed)",
)
_interceptions = meter.create_counter(
    "ordercore.shipments.interceptions",
    unit="{order}",
    description="Interceptions that released an order's stock (once per order)",
)

_SHIPPABLE = (ShipmentState.PREPARING, ShipmentState.PICKED)
_DONE_ORDERS = (OrderStatus.SHIPPED, OrderStatus.COMPLETED)
_PUSHABLE = (PushState.PENDING, PushState.RETRY, PushState.FAILED)


@dataclass(frozen=True, slots=True)
class Interception:
    """What :meth:`ShipmentService.intercept` did."""

    order: Order
    released: bool
    """This call released the reservation (False: none, or released before)."""
    recalls: tuple[str, ...] = field(default=())
    """The recall requests written (their keys)."""


def _required(task: OutboxTask, name: str) -> str:
    value = task.payload.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidInput(
            f"{task.kind} task", [FieldError(f"payload.{name}", "is required", value)]
        )
    return value


class ShipmentService:
    """Parcels, push-back and interception (see the module docstring)."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        inventory: InventoryService,
        tickets: TicketService,
        settings: Settings | None = None,
        *,
        channels: Mapping[str, object] | None = None,
        couriers: Mapping[str, CourierPort] | None = None,
        recall: RecallPort | None = None,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._inventory = inventory
        self._tickets = tickets
        self._settings = settings or Settings()
        self.channels: dict[str, object] = dict(channels or {})
        """Channel adapters by channel name (those implementing ShipmentPushPort push)."""
        self.couriers: dict[str, CourierPort] = dict(couriers or {})
        """Courier adapters by our courier code: a recall cancels the waybill there."""
        self.recall_port: RecallPort | None = recall
        """The warehouse that stops intercepted parcels (None: the recall task waits)."""
        self._max_attempts = self._settings.outbox_max_attempts

    # -- recording parcels -------------------------------------------------------------------

    async def record(
        self,
        parts: Sequence[ShipmentPart | str],
        *,
        courier: str,
        tracking_number: str,
        warehouse: str = "",
        shipment_id: str | None = None,
        shipped: bool = True,
    ) -> Shipment:
        """Record a parcel (one order, a package of a split order, or merged orders).

        ``parts`` are ShipmentParts or plain order ids (the whole order). With ``shipped``
        (the default) it ships at once (see :meth:`ship`); otherwise it waits at the
        warehouse (``preparing``). The id defaults to ``courier:tracking_number``;
        recording the same id again returns the stored parcel and changes nothing.
        Raises OrderNotFound, OrderIntercepted (cancelled), OrderOnHold.
        """
        chosen = [ShipmentPart(order_id=part) if isinstance(part, str) else part for part in parts]
        now = self._clock.now()
        try:
            shipment = Shipment(
                id=shipment_id or f"{courier}:{tracking_number}",
                courier=courier,
                tracking_number=tracking_number,
                parts=tuple(chosen),
                warehouse=warehouse,
                state=ShipmentState.PREPARING,
                created_at=now,
                updated_at=now,
            )
        except ValidationError as exc:
            raise InvalidInput(
                "shipment",
                [
                    FieldError(
                        ".".join(str(part) for part in error["loc"]) or "shipment",
                        error["msg"],
                        error.get("input"),
                    )
                    for error in exc.errors()
                ],
            ) from None
        with tracer.start_as_current_span(
            "ordercore.shipments.record",
            attributes={
                "ordercore.shipment.id": shipment.id,
                "ordercore.shipment.parts": len(chosen),
            },
        ):
            async with self._storage.unit_of_work() as uow:
                stored = await uow.shipments.get(shipment.id)
                if stored is not None:
                    return stored
                orders = await self._orders(uow, shipment)
                pushes = pushes_for(
                    shipment, [(o.id, o.channel, o.external_id) for o in orders], now
                )
                await uow.shipments.add(shipment, pushes)
                if shipped:
                    shipment = await self._ship(uow, shipment, orders)
                await uow.commit()
        return shipment

    async def prepare(
        self,
        parts: Sequence[ShipmentPart | str],
        *,
        courier: str,
        tracking_number: str,
        warehouse: str = "",
        shipment_id: str | None = None,
    ) -> Shipment:
        """Record a parcel handed to the warehouse, not yet shipped (``preparing``)."""
        return await self.record(
            parts,
            courier=courier,
            tracking_number=tracking_number,
            warehouse=warehouse,
            shipment_id=shipment_id,
            shipped=False,
        )

    async def from_waybill(
        self,
        order_id: str,
        package_id: str = "1",
        *,
        sub_orders: Sequence[str] | None = None,
        shipped: bool = False,
    ) -> Shipment:
        """Record the parcel of a waybill's package (its courier and tracking number).

        ``sub_orders`` defaults to the platform line ids of the package's SKUs (the
        default packaging, one package per warehouse); the whole order when it has one
        package. Raises ShipmentNotFound when the package has no created waybill.
        """
        async with self._storage.unit_of_work() as uow:
            record = await uow.waybills.get(order_id, package_id)
            order = await uow.orders.get(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        waybill = record.waybill if record is not None else None
        if waybill is None:
            raise ShipmentNotFound(waybill_key(order_id, package_id))
        warehouse = ""
        if sub_orders is None:
            packages = packages_of(order)
            chosen = next((p for p in packages if p.id == package_id), None)
            sub_orders = ()
            if chosen is not None:
                warehouse = chosen.warehouse
                if len(packages) > 1:
                    skus = {item.sku for item in chosen.items}
                    sub_orders = tuple(
                        line.external_line_id
                        for line in order.lines
                        if line.sku in skus and line.external_line_id
                    )
        return await self.record(
            [ShipmentPart(order_id=order_id, package_id=package_id, sub_orders=tuple(sub_orders))],
            courier=waybill.courier,
            tracking_number=waybill.tracking_number,
            warehouse=warehouse,
            shipment_id=waybill_key(order_id, package_id),
            shipped=shipped,
        )

    async def pick(self, shipment_id: str) -> Shipment:
        """The warehouse picked and packed the parcel (``preparing`` -> ``picked``)."""
        async with self._storage.unit_of_work() as uow:
            shipment = await self._require(uow, shipment_id)
            if shipment.state is ShipmentState.PICKED:
                return shipment
            moved = await uow.shipments.move(
                shipment_id, ShipmentState.PICKED, (ShipmentState.PREPARING,), self._clock.now()
            )
            if not moved:
                raise ShipmentStateConflict(shipment_id, shipment.state, "pick")
            picked = await self._require(uow, shipment_id)
            await uow.commit()
        return picked

    async def ship(self, shipment_id: str) -> Shipment:
        """The parcel left with the courier: ship its orders and queue the push-backs.

        One unit of work: each order not yet shipped moves to SHIPPED with its
        reservation committed (a paid order is allocated on the way); the parcel moves to
        ``shipped``; its pushes become ``pending`` and one task per order part is queued.
        Shipping a shipped parcel again returns it unchanged. Raises OrderIntercepted
        when an order in it was intercepted, OrderOnHold for a held order,
        ShipmentStateConflict when the parcel was recalled.
        """
        async with self._storage.unit_of_work() as uow:
            shipment = await self._require(uow, shipment_id)
            if shipment.state is ShipmentState.SHIPPED:
                return shipment
            orders = await self._orders(uow, shipment)
            shipped = await self._ship(uow, shipment, orders)
            await uow.commit()
        return shipped

    async def _orders(self, uow: UnitOfWork, shipment: Shipment) -> list[Order]:
        orders = []
        for order_id in shipment.order_ids:
            order = await uow.orders.get(order_id)
            if order is None:
                raise OrderNotFound(order_id)
            if order.status is OrderStatus.CANCELLED:
                raise OrderIntercepted(order_id, _cancel_reason(order))
            if order.status is OrderStatus.ON_HOLD:
                raise OrderOnHold(order_id, "a held order does not ship")
            orders.append(order)
        return orders

    async def _ship(self, uow: UnitOfWork, shipment: Shipment, orders: Sequence[Order]) -> Shipment:
        now = self._clock.now()
        if shipment.state not in _SHIPPABLE:
            raise ShipmentStateConflict(shipment.id, shipment.state, "ship")
        for order in orders:
            if order.status in _DONE_ORDERS:
                continue  # shipped with an earlier parcel of a split order
            moved = order
            if order.status is OrderStatus.PAID:
                moved = moved.transition_to(OrderStatus.ALLOCATED, now, "stock reserved")
            moved = moved.transition_to(
                OrderStatus.SHIPPED,
                now,
                f"shipped by {shipment.courier} {shipment.tracking_number}",
            )
            outcome = await uow.inventory.transition(order.id, ReservationStatus.COMMITTED, now)
            if outcome is None:
                raise ReservationNotFound(order.id)
            reservation, changed = outcome
            if not changed and reservation.status is not ReservationStatus.COMMITTED:
                raise ReservationStateConflict(order.id, reservation.status, "commit")
            await uow.orders.save(moved)
        if not await uow.shipments.move(shipment.id, ShipmentState.SHIPPED, _SHIPPABLE, now):
            current = await self._require(uow, shipment.id)
            raise ShipmentStateConflict(shipment.id, current.state, "ship")
        await uow.shipments.move_pushes(shipment.id, PushState.PENDING, (PushState.WAITING,), now)
        for part in shipment.parts:
            await enqueue(
                uow,
                PUSH_KIND,
                {"shipment_id": shipment.id, "order_id": part.order_id},
                key=push_key(shipment.id, part.order_id),
                now=now,
                ordering_key=part.order_id,
            )
        return await self._require(uow, shipment.id)

    # -- interception ------------------------------------------------------------------------

    async def intercept(self, order_id: str, reason: str = "") -> Interception:
        """Stop an order the platform refunded or cancelled before it shipped.

        One unit of work: the order moves to CANCELLED (unless it is already), its
        reservation is released (exactly once, whoever else releases it), each parcel
        still at the warehouse moves to ``recall_requested`` (its pushes ``cancelled``)
        and gets a ``shipment.recall`` task; so does each created waybill not yet in a
        parcel. Calling it again does nothing more. Raises OrderNotFound, and
        TooLateToIntercept when the order already shipped (a return, not an interception).
        """
        reason = scrub_error(reason or "cancelled on the platform")
        with tracer.start_as_current_span(
            "ordercore.shipments.intercept", attributes={"ordercore.order.id": order_id}
        ) as span:
            async with self._storage.unit_of_work() as uow:
                order = await uow.orders.get(order_id)
                if order is None:
                    raise OrderNotFound(order_id)
                if order.status in _DONE_ORDERS:
                    raise TooLateToIntercept(order_id, order.status)
                now = self._clock.now()
                if order.status is not OrderStatus.CANCELLED:
                    order = await uow.orders.save(
                        order.transition_to(OrderStatus.CANCELLED, now, f"intercepted: {reason}")
                    )
                outcome = await uow.inventory.transition(order_id, ReservationStatus.RELEASED, now)
                released = outcome is not None and outcome[1]
                recalls = await self._recall_all(uow, order_id, reason)
                await uow.commit()
            span.set_attribute("ordercore.shipments.recalls", len(recalls))
        if released:
            _interceptions.add(1)
        if outcome is not None:
            # No-op in storage now; clears the sold-out marks of the SKUs given back.
            await self._inventory.release(order_id)
        logger.info(
            "order %s intercepted (%s): released=%s, %d recall(s)",
            order_id,
            reason,
            released,
            len(recalls),
        )
        return Interception(order=order, released=released, recalls=tuple(recalls))

    async def _recall_all(self, uow: UnitOfWork, order_id: str, reason: str) -> list[str]:
        now = self._clock.now()
        requests: list[RecallRequest] = []
        in_parcels: set[str] = set()
        for shipment in await uow.shipments.for_order(order_id):
            part = shipment.part_of(order_id)
            if part is not None:
                in_parcels.add(part.package_id)
            if shipment.state not in _SHIPPABLE:
                continue
            if not await uow.shipments.move(
                shipment.id, ShipmentState.RECALL_REQUESTED, _SHIPPABLE, now
            ):
                continue
            await uow.shipments.move_pushes(
                shipment.id, PushState.CANCELLED, (PushState.WAITING,), now
            )
            requests.append(
                RecallRequest(
                    order_id=order_id,
                    package_id=part.package_id if part is not None else "",
                    shipment_id=shipment.id,
                    warehouse=shipment.warehouse,
                    courier=shipment.courier,
                    tracking_number=shipment.tracking_number,
                    reason=reason,
                )
            )
        for record in await uow.waybills.for_order(order_id):
            if record.package_id in in_parcels or record.state is not WaybillState.CREATED:
                continue
            requests.append(
                RecallRequest(
                    order_id=order_id,
                    package_id=record.package_id,
                    courier=record.courier or "",
                    tracking_number=record.tracking_number or "",
                    reason=reason,
                )
            )
        for request in requests:
            await enqueue(
                uow,
                RECALL_KIND,
                request.model_dump(mode="json"),
                key=request.key,
                now=now,
                ordering_key=order_id,
            )
        return [request.key for request in requests]

    # -- queries -----------------------------------------------------------------------------

    async def get(self, shipment_id: str) -> Shipment:
        """One parcel; ShipmentNotFound when none has this id."""
        async with self._storage.unit_of_work() as uow:
            return await self._require(uow, shipment_id)

    async def for_order(self, order_id: str) -> builtins.list[Shipment]:
        """The parcels holding a part of the order, oldest first."""
        async with self._storage.unit_of_work() as uow:
            return await uow.shipments.for_order(order_id)

    async def pushes(
        self,
        *,
        order_id: str | None = None,
        shipment_id: str | None = None,
        states: Sequence[PushState] = (),
        limit: int = 1000,
    ) -> builtins.list[ShipmentPush]:
        """Push-back records, oldest first, optionally filtered."""
        async with self._storage.unit_of_work() as uow:
            return await uow.shipments.pushes(
                order_id=order_id, shipment_id=shipment_id, states=states, limit=limit
            )

    async def push_counts(self) -> dict[PushState, int]:
        """Push-back records per state."""
        async with self._storage.unit_of_work() as uow:
            return await uow.shipments.push_counts()

    async def redrive_failed(self, *, order_id: str | None = None) -> builtins.list[str]:
        """Push the ``failed`` push-backs again (of one order, or all); returns their keys.

        One unit of work: each failed push goes back to ``pending`` and its dead task is
        redriven with a fresh attempt budget. Fix the cause first (the ticket says it):
        a courier code, the shop's authorisation.
        """
        async with self._storage.unit_of_work() as uow:
            failed = await uow.shipments.pushes(order_id=order_id, states=(PushState.FAILED,))
            keys = {push.key: push for push in failed}
            dead = await uow.outbox.list(states=(OutboxState.DEAD,), kind=PUSH_KIND, limit=100_000)
            chosen = [task for task in dead if task.key in keys]
            now = self._clock.now()
            redriven = await uow.outbox.redrive([task.id for task in chosen], now)
            done = {task.key for task in chosen if task.id in set(redriven)}
            for key in sorted(done):
                push = keys[key]
                await uow.shipments.move_pushes(
                    push.shipment_id,
                    PushState.PENDING,
                    (PushState.FAILED,),
                    now,
                    order_id=push.order_id,
                )
            await uow.commit()
        return sorted(done)

    @staticmethod
    async def _require(uow: UnitOfWork, shipment_id: str) -> Shipment:
        shipment = await uow.shipments.get(shipment_id)
        if shipment is None:
            raise ShipmentNotFound(shipment_id)
        return shipment

    # -- the task handlers -------------------------------------------------------------------

    def register(
        self,
        registry: HandlerRegistry,
        *,
        max_attempts: int | None = None,
        timeout: timedelta | None = None,
    ) -> None:
        """Register the ``shipment.push`` and ``shipment.recall`` handlers.

        ``max_attempts`` (default ``Settings.outbox_max_attempts``) also decides when a
        push counts as ``failed`` and opens its ticket.
        """
        self._max_attempts = max_attempts or self._settings.outbox_max_attempts
        registry.register(
            PUSH_KIND, self.push_handler, max_attempts=self._max_attempts, timeout=timeout
        )
        registry.register(
            RECALL_KIND, self.recall_handler, max_attempts=self._max_attempts, timeout=timeout
        )

    async def push_handler(self, task: OutboxTask) -> None:
        """Handle ``shipment.push``: payload ``{"shipment_id": ..., "order_id": ...}``."""
        shipment_id, order_id = _required(task, "shipment_id"), _required(task, "order_id")
        async with self._storage.unit_of_work() as uow:
            push = await uow.shipments.get_push(shipment_id, order_id)
            shipment = await uow.shipments.get(shipment_id)
        if push is None or shipment is None:
            raise ShipmentNotFound(f"{shipment_id} (order {order_id})")
        if push.state not in _PUSHABLE:
            return  # ok already, or intercepted (cancelled)
        with tracer.start_as_current_span(
            "ordercore.shipments.push",
            attributes={
                "ordercore.shipment.id": shipment_id,
                "ordercore.order.id": order_id,
                "ordercore.channel": push.channel,
                "ordercore.task.attempt": task.attempts,
            },
        ):
            try:
                port = self._push_port(push.channel)
                await port.push_shipment(
                    push.external_order_id,
                    shipment.courier,
                    shipment.tracking_number,
                    list(push.sub_orders),
                )
            except Exception as exc:
                final = (
                    default_classifier(exc) is ErrorKind.BUSINESS
                    or task.attempts >= self._max_attempts
                )
                await self._failed(push, shipment, exc, final=final)
                raise
        async with self._storage.unit_of_work() as uow:
            await uow.shipments.save_push(push.succeeded(self._clock.now()), _PUSHABLE)
            await uow.commit()
        _push_outcomes.add(1, {"ordercore.channel": push.channel, "ordercore.outcome": "ok"})

    def _push_port(self, channel: str) -> ShipmentPushPort:
        adapter = self.channels.get(channel)
        if adapter is None or not isinstance(adapter, ShipmentPushPort):
            known = [name for name, a in self.channels.items() if isinstance(a, ShipmentPushPort)]
            raise UnknownAdapter("shipment push channel", channel, known)
        return adapter

    async def _failed(
        self, push: ShipmentPush, shipment: Shipment, error: Exception, *, final: bool
    ) -> None:
        message = f"{type(error).__name__}: {error}"
        failed = push.failed_attempt(message, self._clock.now(), final=final)
        async with self._storage.unit_of_work() as uow:
            saved = await uow.shipments.save_push(failed, _PUSHABLE)
            await uow.commit()
        outcome = "failed" if final else "retry"
        _push_outcomes.add(1, {"ordercore.channel": push.channel, "ordercore.outcome": outcome})
        if not (final and saved):
            return
        try:
            await self._tickets.open(
                TICKET_TYPE,
                Severity.HIGH,
                order_id=push.order_id,
                channel=push.channel,
                reasons=[
                    f"shipment push-back of parcel {shipment.id} ({shipment.courier} "
                    f"{shipment.tracking_number}) failed after {failed.attempts} attempt(s): "
                    f"{failed.last_error}; the platform counts the order as shipped late "
                    f"until it has the tracking number"
                ],
                dedup_key=f"{TICKET_TYPE}:{push.key}",
            )
        except OrderCoreError as exc:  # the push state is kept; the ticket is a courtesy
            logger.warning("could not open a ticket for %s: %s", push.key, scrub_error(str(exc)))

    async def recall_handler(self, task: OutboxTask) -> None:
        """Handle ``shipment.recall``: stop the parcel at the warehouse and the courier."""
        request = RecallRequest.model_validate(task.payload)
        stopped = False
        if request.shipment_id:
            if self.recall_port is None:
                raise UnknownAdapter("recall (warehouse)", "(none configured)", [])
            stopped = await self.recall_port.recall(request)
        courier = self.couriers.get(request.courier)
        if courier is not None and request.package_id:
            await courier.cancel_waybill(waybill_key(request.order_id, request.package_id))
        if request.shipment_id:
            async with self._storage.unit_of_work() as uow:
                await uow.shipments.move(
                    request.shipment_id,
                    ShipmentState.RECALLED,
                    (ShipmentState.RECALL_REQUESTED,),
                    self._clock.now(),
                )
                await uow.commit()
        logger.info(
            "recall %s: warehouse %s", request.key, "stopped it" if stopped else "had no parcel"
        )


def _cancel_reason(order: Order) -> str:
    for change in reversed(order.status_history):
        if change.to_status is OrderStatus.CANCELLED:
            return change.reason
    return ""
