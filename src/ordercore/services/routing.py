"""Warehouse routing of orders. Reached as ``core.routing``.

``route(order_id)`` is one unit of work: read the order, place its address offline,
read what each candidate warehouse can sell, let the policy allocate, then hold the
stock the plan needs through the storage's atomic primitives: ``reserve`` for an
order without a reservation, ``relocate`` for one already reserved elsewhere (the
pipeline reserves in the default warehouse before it routes). The plan is saved and
the order's lines get their warehouse in the same unit. If another order took the
stock between the read and the conditional update (InsufficientStock) or the order
changed (ConcurrencyConflict), nothing is kept and routing runs again on fresh figures;
so two orders racing for the last units never oversell, and the loser is routed to
the next warehouse.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterable
from datetime import timedelta

from opentelemetry import trace

from ordercore.domain.geo import Region, resolve_address
from ordercore.domain.inventory import Reservation, ReservationLine, ReservationStatus, merge_lines
from ordercore.domain.orders import Order, OrderStatus
from ordercore.domain.routing import (
    FulfilmentPlan,
    RouteLine,
    RoutingPolicy,
    RoutingRequest,
    TransferRequest,
    TransferStatus,
    build_plan,
    policy_named,
)
from ordercore.errors import (
    ConcurrencyConflict,
    FieldError,
    InsufficientStock,
    InvalidInput,
    OrderNotFound,
    ReservationStateConflict,
    UnresolvedAddress,
    Unroutable,
)
from ordercore.ports.clock import Clock
from ordercore.ports.storage import Storage, UnitOfWork
from ordercore.services.reservations import InventoryService

__all__ = ["RoutingService"]

_ROUTABLE = frozenset(
    {OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.ALLOCATED, OrderStatus.ON_HOLD}
)
tracer = trace.get_tracer("ordercore")

_ATTEMPTS = 8
"""Plans tried before a lost race is reported (each loss means stock moved meanwhile)."""


def _new_id() -> str:
    return os.urandom(16).hex()


class RoutingService:
    """Choose warehouses for orders, hold their stock there, keep the fulfilment plan."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        inventory: InventoryService,
        *,
        default_policy: str = "nearest",
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._inventory = inventory
        self.default_policy = default_policy
        """The policy name ``route()`` uses when none is given."""

    async def route(
        self,
        order_id: str,
        *,
        policy: str | None = None,
        requires: Iterable[str] = (),
        reroute: bool = False,
        ttl: timedelta | None = None,
    ) -> FulfilmentPlan:
        """Route an order and hold its stock where the plan ships it from.

        ``policy``: a registered policy name (default ``default_policy``). ``requires``:
        capabilities every chosen warehouse must have. An order that already has a plan
        keeps it unless ``reroute``. ``ttl`` is the expiry of a new reservation.
        Raises OrderNotFound, Unroutable (the active warehouses together lack a SKU),
        ReservationStateConflict (its reservation is released, expired or shipped).
        """
        chosen = policy_named(policy or self.default_policy)
        needs = frozenset(requires)
        last: Exception | None = None
        with tracer.start_as_current_span(
            "ordercore.routing.route",
            attributes={"ordercore.order_id": order_id, "ordercore.routing.policy": chosen.name},
        ) as span:
            for attempt in range(1, _ATTEMPTS + 1):
                try:
                    plan = await self._route_once(order_id, chosen, needs, reroute, ttl)
                except (InsufficientStock, ConcurrencyConflict) as exc:
                    last = exc
                    continue
                span.set_attribute("ordercore.routing.attempts", attempt)
                span.set_attribute("ordercore.routing.packages", len(plan.packages))
                span.set_attribute("ordercore.routing.transfers", len(plan.transfers))
                return plan
        assert last is not None
        raise last

    async def _route_once(
        self,
        order_id: str,
        policy: RoutingPolicy,
        needs: frozenset[str],
        reroute: bool,
        ttl: timedelta | None,
    ) -> FulfilmentPlan:
        async with self._storage.unit_of_work() as uow:
            order = await uow.orders.get(order_id)
            if order is None:
                raise OrderNotFound(order_id)
            if not reroute:
                existing = await uow.routing.plan(order_id)
                if existing is not None:
                    return existing
            if order.status not in _ROUTABLE:
                raise InvalidInput(
                    "routing",
                    [
                        FieldError(
                            "status",
                            "shipped, completed or cancelled orders stay put",
                            order.status,
                        )
                    ],
                )
            held = await uow.inventory.reservation(order_id)
            if held is not None and held.status != ReservationStatus.ACTIVE:
                raise ReservationStateConflict(order_id, held.status, "route")
            request = await self._request(uow, order, needs, held)
            allocation = policy.allocate(request)
            now = self._clock.now()
            plan = build_plan(request, allocation, policy=policy.name, now=now, new_id=_new_id)
            await self._hold(uow, order, plan, held, ttl)
            await uow.routing.save_plan(plan)
            lines = tuple(
                line.model_copy(update={"warehouse": plan.warehouse_of(index)})
                for index, line in enumerate(order.lines)
            )
            await uow.orders.save(order.model_copy(update={"lines": lines, "updated_at": now}))
            await uow.commit()
            return plan

    async def _request(
        self,
        uow: UnitOfWork,
        order: Order,
        needs: frozenset[str],
        held: Reservation | None,
    ) -> RoutingRequest:
        warehouses = tuple(
            w for w in await uow.routing.warehouses(active_only=True) if needs <= w.capabilities
        )
        codes = {w.code for w in warehouses}
        sellable: dict[tuple[str, str], int] = {}
        for sku in sorted({line.sku for line in order.lines}):
            for level in await uow.inventory.stock_levels(sku):
                if level.warehouse in codes:
                    sellable[sku, level.warehouse] = level.sellable
        if held is not None:  # what the order holds now is free for its own new plan
            for line in held.lines:
                if line.warehouse in codes:
                    key = (line.sku, line.warehouse)
                    sellable[key] = sellable.get(key, 0) + line.quantity
        if not warehouses:
            first = order.lines[0]
            raise Unroutable(order.id, first.sku, first.quantity, 0)
        return RoutingRequest(
            order_id=order.id,
            lines=tuple(
                RouteLine(index, line.sku, line.quantity) for index, line in enumerate(order.lines)
            ),
            region=_place(order),
            warehouses=warehouses,
            sellable=sellable,
        )

    async def _hold(
        self,
        uow: UnitOfWork,
        order: Order,
        plan: FulfilmentPlan,
        held: Reservation | None,
        ttl: timedelta | None,
    ) -> None:
        wanted = merge_lines(_reservation_lines(order, plan))
        if held is None:
            draft = self._inventory.draft(order.id, wanted, buyer_id=order.buyer_id, ttl=ttl)
            _reservation, created = await uow.inventory.reserve(draft)
            if not created:  # another caller reserved this order meanwhile: plan again
                raise ConcurrencyConflict(f"reservation of order {order.id!r}", 0)
        elif held.lines != wanted:
            await uow.routing.relocate(order.id, wanted, self._clock.now())

    async def plan(self, order_id: str) -> FulfilmentPlan | None:
        """The order's current fulfilment plan, if it was routed."""
        async with self._storage.unit_of_work() as uow:
            return await uow.routing.plan(order_id)

    async def transfers(
        self, *, status: TransferStatus | None = None, warehouse: str | None = None
    ) -> builtins.list[TransferRequest]:
        """Transfer requests, oldest first, optionally of one status and one warehouse."""
        async with self._storage.unit_of_work() as uow:
            return await uow.routing.transfers(status=status, warehouse=warehouse)

    async def complete_transfer(self, transfer_id: str) -> TransferRequest:
        """The units arrived: hold them in the target warehouse instead of the source.

        The WMS feed must already show them in the target (its sellable stock); the
        order's reservation moves from source to target in the same unit of work as the
        status change, or nothing changes (InsufficientStock). Exactly once.
        """
        return await self._finish_transfer(transfer_id, TransferStatus.COMPLETED)

    async def cancel_transfer(self, transfer_id: str) -> TransferRequest:
        """Drop a requested transfer (the order is re-routed or cancelled). Exactly once."""
        return await self._finish_transfer(transfer_id, TransferStatus.CANCELLED)

    async def _finish_transfer(self, transfer_id: str, status: TransferStatus) -> TransferRequest:
        async with self._storage.unit_of_work() as uow:
            now = self._clock.now()
            done = await uow.routing.set_transfer_status(transfer_id, status, now)
            if done is None:
                known = [t for t in await uow.routing.transfers() if t.id == transfer_id]
                current = known[0].status if known else "unknown"
                raise InvalidInput(
                    "transfer",
                    [FieldError("status", f"must be requested to become {status}", current)],
                )
            if status is TransferStatus.COMPLETED:
                held = await uow.inventory.reservation(done.order_id)
                if held is not None and held.status == ReservationStatus.ACTIVE:
                    moved = _move_units(held.lines, done)
                    await uow.routing.relocate(done.order_id, moved, now)
            await uow.commit()
            return done


def _place(order: Order) -> Region | None:
    """The receiver's region, or None when the address cannot be placed offline."""
    try:
        return resolve_address(order.address)
    except UnresolvedAddress:
        return None


def _reservation_lines(order: Order, plan: FulfilmentPlan) -> list[ReservationLine]:
    """What the plan holds: each line in its warehouse, less units it gets by transfer,
    plus those units in their source warehouses."""
    incoming: dict[tuple[str, str], int] = {}
    lines: list[ReservationLine] = []
    for transfer in plan.transfers:
        key = (transfer.sku, transfer.to_warehouse)
        incoming[key] = incoming.get(key, 0) + transfer.quantity
        lines.append(ReservationLine(transfer.sku, transfer.from_warehouse, transfer.quantity))
    for index, line in enumerate(order.lines):
        warehouse = plan.warehouse_of(index)
        key = (line.sku, warehouse)
        covered = min(incoming.get(key, 0), line.quantity)
        incoming[key] = incoming.get(key, 0) - covered
        if line.quantity - covered:
            lines.append(ReservationLine(line.sku, warehouse, line.quantity - covered))
    return lines


def _move_units(
    lines: tuple[ReservationLine, ...], transfer: TransferRequest
) -> list[ReservationLine]:
    """The reservation lines with a transfer's units held at its target, not its source."""
    moved = []
    for line in lines:
        if line.sku == transfer.sku and line.warehouse == transfer.from_warehouse:
            left = line.quantity - transfer.quantity
            if left > 0:
                moved.append(ReservationLine(line.sku, line.warehouse, left))
            continue
        moved.append(line)
    moved.append(ReservationLine(transfer.sku, transfer.to_warehouse, transfer.quantity))
    return moved
