"""The waybill step: one waybill per order package, through the courier failover chain.

Off the critical path: order creation, payment and reservation never call a courier.
They enqueue a ``waybill.create`` task in their own unit of work (:meth:`WaybillService.
enqueue`), and an outbox worker runs :meth:`WaybillService.create_handler` later::

    registry = HandlerRegistry()
    waybills.register(registry)                 # waybill.create + waybill.cancel
    await core.outbox.worker(registry).run()

Exactly one waybill per package, across retries, crashes and duplicate runs:

1. *record, then call*: ``uow.waybills.begin`` writes (or re-reads) the package's
   record before any courier is asked; a ``created`` record means the work is done and
   the run is a no-op;
2. the courier is asked with the idempotency key (order id + package id) as its client
   order number, so asking the same courier again returns the first waybill;
3. ``uow.waybills.complete`` fills the record in only while it is still ``requested``:
   of two runs racing, one wins and the other keeps nothing.

Failover can still leave a waybill *at another courier*: a primary that timed out may
have made one before the backup did. Such orphans are cancelled by ``waybill.cancel``
tasks written in the same unit as the completion: one for every courier this run
called without success, for every other courier when the record had earlier attempts
(a crashed run may have asked any of them), and for the loser of a race whose waybill
came from another courier than the kept one. Cancelling is by idempotency key, so a
courier that has no such order just answers "not found".

Degradation: while every courier's breaker is open the chain has nothing left to try;
the step is non-critical (:class:`~ordercore.resilience.Step`, ``on_open=DEFER``), so
the handler raises :class:`~ordercore.errors.WaybillDeferred` carrying the time until
the first breaker lets a trial call through, and the outbox retries it then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from opentelemetry import trace
from pydantic import ValidationError

from ordercore.config import Settings
from ordercore.domain.couriers import (
    Package,
    PackageItem,
    Party,
    Waybill,
    WaybillRecord,
    WaybillRequest,
    WaybillState,
    waybill_key,
)
from ordercore.domain.orders import Order, OrderStatus
from ordercore.domain.outbox import OutboxTask, scrub_error
from ordercore.errors import (
    FieldError,
    InvalidInput,
    OrderNotFound,
    OrderOnHold,
    UnknownAdapter,
    WaybillDeferred,
)
from ordercore.ports.clock import Clock
from ordercore.ports.couriers import CourierPort
from ordercore.ports.storage import Storage, UnitOfWork
from ordercore.resilience.clock import SystemTime, TimeSource
from ordercore.resilience.degrade import Deferred, Degrader, OnOpen, Skipped, Step
from ordercore.resilience.fallback import Failover
from ordercore.services.outbox import HandlerRegistry, enqueue

__all__ = ["CANCEL_KIND", "CREATE_KIND", "WaybillService", "packages_of"]

CREATE_KIND = "waybill.create"
CANCEL_KIND = "waybill.cancel"
STEP = Step(CREATE_KIND, critical=False, on_open=OnOpen.DEFER)
"""The waybill step is not on the critical path: with no courier left it is deferred."""

logger = logging.getLogger("ordercore.waybills")
tracer = trace.get_tracer("ordercore")


def packages_of(order: Order) -> list[Package]:
    """The default parcels of an order: one per warehouse its lines ship from.

    Ids are ``"1"``, ``"2"``, ... in warehouse order, so every run derives the same ones.
    """
    by_warehouse: dict[str, list[PackageItem]] = {}
    for line in order.lines:
        by_warehouse.setdefault(line.warehouse, []).append(
            PackageItem(sku=line.sku, quantity=line.quantity, title=line.title)
        )
    return [
        Package(id=str(number), items=tuple(items), warehouse=warehouse)
        for number, (warehouse, items) in enumerate(sorted(by_warehouse.items()), start=1)
    ]


def _courier_code(impl: Any) -> str:
    return str(getattr(impl, "code", ""))


class WaybillService:
    """Creates and records waybills through a courier failover chain (module docstring).

    ``chain`` is a :class:`~ordercore.resilience.Failover` over courier ports, each
    normally wrapped in its own resilience pipeline (``ordercore_adapters.couriers.
    courier_chain`` builds one). ``senders`` maps a warehouse to the sender printed on
    its waybills (``""``: the default sender). ``time`` is the breakers' time source
    (the system's by default), used to say when a deferred step is worth retrying.
    """

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        chain: Failover[CourierPort],
        senders: Mapping[str, Party],
        *,
        settings: Settings | None = None,
        packages: Callable[[Order], Sequence[Package]] = packages_of,
        time: TimeSource | None = None,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._chain = chain
        self._senders = dict(senders)
        self._settings = settings or Settings()
        self._packages = packages
        self._time = time or SystemTime()
        self._degrader = Degrader({}, [STEP])
        self.couriers: dict[str, CourierPort] = {}
        for target in chain.targets:
            code = _courier_code(target.impl) or target.name
            self.couriers[code] = target.impl

    # -- writing the task ----------------------------------------------------------------

    async def enqueue(
        self, uow: UnitOfWork, order_id: str, packages: Sequence[Package] | None = None
    ) -> bool:
        """Write the order's ``waybill.create`` task in ``uow`` (once per order).

        ``packages`` fixes the parcels (default: :func:`packages_of` when the task runs).
        """
        payload: dict[str, Any] = {"order_id": order_id}
        if packages is not None:
            payload["packages"] = [package.model_dump(mode="json") for package in packages]
        return await enqueue(
            uow,
            CREATE_KIND,
            payload,
            key=f"{CREATE_KIND}:{order_id}",
            now=self._clock.now(),
            ordering_key=order_id,
        )

    def register(
        self,
        registry: HandlerRegistry,
        *,
        max_attempts: int | None = 50,
        timeout: timedelta | None = None,
    ) -> None:
        """Register the ``waybill.create`` and ``waybill.cancel`` handlers.

        ``max_attempts`` is generous: a courier outage defers the task many times.
        """
        registry.register(
            CREATE_KIND, self.create_handler, max_attempts=max_attempts, timeout=timeout
        )
        registry.register(
            CANCEL_KIND, self.cancel_handler, max_attempts=max_attempts, timeout=timeout
        )

    # -- the handlers --------------------------------------------------------------------

    async def create_handler(self, task: OutboxTask) -> None:
        """Handle ``waybill.create``: payload ``{"order_id": ..., "packages": [...]?}``."""
        order_id = task.payload.get("order_id")
        if not isinstance(order_id, str) or not order_id:
            raise InvalidInput(
                f"{CREATE_KIND} task", [FieldError("payload.order_id", "is required", order_id)]
            )
        raw = task.payload.get("packages")
        packages: list[Package] | None = None
        if raw is not None:
            if not isinstance(raw, list):
                raise InvalidInput(
                    f"{CREATE_KIND} task", [FieldError("payload.packages", "must be a list", raw)]
                )
            packages = []
            errors: list[FieldError] = []
            for index, item in enumerate(raw):
                try:
                    packages.append(Package.model_validate(item))
                except ValidationError as exc:
                    errors.extend(
                        FieldError(
                            ".".join(
                                [f"payload.packages[{index}]", *(str(p) for p in error["loc"])]
                            ),
                            error["msg"],
                            error.get("input"),
                        )
                        for error in exc.errors()
                    )
            if errors:
                raise InvalidInput(f"{CREATE_KIND} task", errors)
        await self.create(order_id, packages)

    async def cancel_handler(self, task: OutboxTask) -> None:
        """Handle ``waybill.cancel``: cancel an orphan at one courier (never the kept one)."""
        payload = task.payload
        order_id, package_id, courier = (
            str(payload.get("order_id", "")),
            str(payload.get("package_id", "")),
            str(payload.get("courier", "")),
        )
        async with self._storage.unit_of_work() as uow:
            record = await uow.waybills.get(order_id, package_id)
        if record is not None and record.courier == courier:
            return  # that waybill is the one we keep
        port = self.couriers.get(courier)
        if port is None:
            raise UnknownAdapter("courier", courier, self.couriers)
        cancelled = await port.cancel_waybill(waybill_key(order_id, package_id))
        logger.info(
            "orphan waybill %s at %s: %s",
            waybill_key(order_id, package_id),
            courier,
            "cancelled" if cancelled else "none found",
        )

    # -- the work ------------------------------------------------------------------------

    async def create(
        self, order_id: str, packages: Sequence[Package] | None = None
    ) -> list[WaybillRecord]:
        """Make sure every package of the order has its one waybill; return the records."""
        with tracer.start_as_current_span(
            "ordercore.waybills.create", attributes={"ordercore.order.id": order_id}
        ) as span:
            async with self._storage.unit_of_work() as uow:
                order = await uow.orders.get(order_id)
            if order is None:
                raise OrderNotFound(order_id)
            if order.status is OrderStatus.CANCELLED:
                span.set_attribute("ordercore.waybills.skipped", "cancelled")
                return []
            if order.status is OrderStatus.ON_HOLD:
                raise OrderOnHold(order_id, "no waybill while the order is held")
            chosen = list(packages) if packages is not None else list(self._packages(order))
            ids = [package.id for package in chosen]
            if not chosen or len(set(ids)) != len(ids):
                raise InvalidInput(
                    f"packages of order {order_id!r}",
                    [FieldError("packages", "need at least one, with unique ids", ids)],
                )
            span.set_attribute("ordercore.waybills.packages", len(chosen))
            return [await self._one(order, package) for package in chosen]

    async def _one(self, order: Order, package: Package) -> WaybillRecord:
        async with self._storage.unit_of_work() as uow:
            record = await uow.waybills.begin(order.id, package.id, self._clock.now())
            await uow.commit()
        if record.state is WaybillState.CREATED:
            return record
        request = WaybillRequest(
            order_id=order.id,
            package=package,
            sender=self._sender(package),
            receiver=Party(contact=order.receiver, address=order.address),
            remark=order.remark,
        )
        called: list[str] = []

        async def ask(impl: CourierPort) -> Waybill:
            called.append(_courier_code(impl))
            return await impl.create_waybill(request)

        outcome = await self._degrader.run(STEP, self._chain.invoke, ask)
        if isinstance(outcome, Deferred | Skipped):
            raise WaybillDeferred(order.id, scrub_error(outcome.reason), self._retry_after())
        waybill = outcome
        async with self._storage.unit_of_work() as uow:
            won = await uow.waybills.complete(order.id, package.id, waybill, self._clock.now())
            stored = await uow.waybills.get(order.id, package.id)
            assert stored is not None  # begun above; records are never deleted
            if won:
                suspects = set(called)
                if record.attempts > 1:
                    suspects |= set(self.couriers)
            else:
                suspects = {waybill.courier}
            for courier in sorted(suspects - {stored.courier or ""}):
                await enqueue(
                    uow,
                    CANCEL_KIND,
                    {"order_id": order.id, "package_id": package.id, "courier": courier},
                    key=f"{CANCEL_KIND}:{record.key}:{courier}",
                    now=self._clock.now(),
                )
            await uow.commit()
        return stored

    def _sender(self, package: Package) -> Party:
        sender = self._senders.get(package.warehouse) or self._senders.get("")
        if sender is None:
            known = ", ".join(sorted(self._senders)) or "none"
            raise InvalidInput(
                "waybill sender",
                [
                    FieldError(
                        "warehouse",
                        f"no sender for it, nor a default (''); known: {known}",
                        package.warehouse,
                    )
                ],
            )
        return sender

    def _retry_after(self) -> float | None:
        now = self._time.now()
        waits = [
            (target.breaker.retry_at - now).total_seconds()
            for target in self._chain.targets
            if target.breaker is not None and target.breaker.retry_at is not None
        ]
        return max(min(waits), 0.0) if waits else None
