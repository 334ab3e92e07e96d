"""The incident replay: a New Year sale's first day with a courier that hangs.

What happened once: 12,847 orders came in, the courier's waybill API timed out, it was
called synchronously with no breaker, the database connection pool filled, and 40 % of
the orders never shipped that day. :func:`run_incident` plays that day through the
fulfilment pipeline twice on one storage, side by side in one process: one run with
healthy couriers, one whose primary courier hangs for a stretch in the middle (running
them together makes the machine's other load hit both alike). It reports what a
demanding operator checks:

* order creation and reservation keep their throughput (the faulted run's orders/s is
  at least ``min_ratio`` of the healthy run's): nothing on the critical path waits for
  a courier;
* waybills fail over to the backup courier while the primary's breaker is open, and the
  breaker's history shows it opening, letting trial calls through, and closing again;
* every order ends with exactly one waybill, checked in storage, and no courier holds a
  second live waybill for any order: none lost, none duplicated; no task is dead.

The core side only: the couriers come from a :class:`CourierRig` (``ordercore_adapters.
couriers.simulator`` starts two fake courier APIs on 127.0.0.1 with the real HTTP
adapter and breakers; ``ordercore replay-incident`` uses it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import anyio

from ordercore.core import OrderCore
from ordercore.domain.couriers import Party
from ordercore.domain.orders import Address, Contact, Money, Order, OrderLine, OrderStatus
from ordercore.domain.outbox import OPEN_STATES, OutboxState, OutboxTask
from ordercore.errors import OrderNotFound, WaybillDeferred
from ordercore.ports.couriers import CourierPort
from ordercore.resilience import Failover, StateChange
from ordercore.services.outbox import HandlerRegistry
from ordercore.services.waybills import CANCEL_KIND, CREATE_KIND, WaybillService

__all__ = [
    "CHANNELS",
    "INCIDENT_ORDERS",
    "CourierRig",
    "IncidentConfig",
    "IncidentReport",
    "RigFactory",
    "RunReport",
    "run_incident",
    "sale_orders",
]

INCIDENT_ORDERS = 12_847
"""The orders of the day the incident happened."""
CHANNELS = ("taobao", "jd", "pinduoduo", "douyin")

_PROVINCES = (
    ("上海市", "上海市", "浦东新区"),
    ("浙江省", "杭州市", "西湖区"),
    ("广东省", "深圳市", "南山区"),
    ("北京市", "北京市", "朝阳区"),
    ("四川省", "成都市", "武侯区"),
    ("江苏省", "南京市", "鼓楼区"),
)
_STREETS = ("人民", "解放", "中山", "建设", "和平", "长江", "黄河")
_MOBILE_PREFIXES = ("138", "139", "186", "135", "150", "177")
_SURNAMES = "王李张刘陈杨黄赵吴周"
_GIVEN = ("伟", "芳", "娜", "敏", "静", "磊", "洋", "艳")
SENDERS = {
    "": Party(
        contact=Contact(name="发货仓", phone="02158880000"),
        address=Address(
            province="上海市", city="上海市", district="青浦区", detail="华新镇 1 号库"
        ),
    )
}
"""The sender printed on every waybill of the replay."""


class CourierRig(Protocol):
    """The couriers a replay runs against: a failover chain and the fault's switch."""

    @property
    def chain(self) -> Failover[CourierPort]:
        """Primary first, then the backup; each courier behind its own breaker."""
        ...

    def hang(self) -> None:
        """The primary courier starts hanging (every call waits until it times out)."""
        ...

    def recover(self) -> None:
        """The primary answers again."""
        ...

    def history(self) -> list[StateChange]:
        """Every breaker's state changes so far, oldest first."""
        ...

    def live_waybills(self) -> dict[str, dict[str, int]]:
        """Courier code -> idempotency key -> live (not cancelled) waybills it holds."""
        ...


RigFactory = Callable[[], AbstractAsyncContextManager[CourierRig]]
"""Makes a fresh rig per run (an async context manager that stops it afterwards)."""


@dataclass(frozen=True, slots=True)
class IncidentConfig:
    """The shape of the day: how many orders, when the primary hangs and for how long."""

    orders: int = INCIDENT_ORDERS
    channels: tuple[str, ...] = CHANNELS
    skus: int = 50
    window: int = 250
    """Orders per channel per accept call (one intake window)."""
    hang_from: float = 0.3
    """The share of the faulted run's orders through the critical path (their waybill
    tasks written) when the primary starts hanging: 0.3 means after 30 % of the day."""
    hang_for: float = 20.0
    """Seconds the primary hangs at least (longer, up to 30 s, until a breaker opened)."""
    workers: int = 32
    """Waybill tasks run at once."""
    min_ratio: float = 0.90
    """The faulted run's orders/s must be at least this share of the healthy run's."""
    drain_timeout: float = 300.0
    """Longest wait for the waybill tasks after the last order (then the run fails)."""
    warmup: int = 500
    """Orders run through the whole path first, unmeasured, so that the first measured
    run does not pay for imports, caches and connections the second one finds ready."""


@dataclass(slots=True)
class RunReport:
    """One run of the day: throughput, waybills, integrity, breaker history."""

    label: str
    orders: int
    faulted: bool
    ingest_seconds: float = 0.0
    """Wall time from the first order to the last order's waybill task (the critical path)."""
    reserved: int = 0
    waybill_tasks: int = 0
    held: int = 0
    failed: int = 0
    drain_seconds: float = 0.0
    """Wall time from the first order until every waybill task was done."""
    waybills_by_courier: dict[str, int] = field(default_factory=dict)
    orders_with_one_waybill: int = 0
    orders_without_waybill: int = 0
    orders_with_several: int = 0
    """Orders whose packages hold more than one stored waybill (must be 0)."""
    duplicate_live_waybills: int = 0
    """Keys for which more than one courier holds a live waybill after clean-up (must be 0)."""
    dead_tasks: int = 0
    open_tasks: int = 0
    deferred: int = 0
    """Waybill attempts deferred because no courier could take them."""
    breaker_history: list[dict[str, str]] = field(default_factory=list)
    hang_started: float | None = None
    hang_ended: float | None = None
    """Seconds after the first order."""

    @property
    def orders_per_s(self) -> float:
        """Orders created and reserved (through to the waybill task) per second."""
        return self.orders / self.ingest_seconds if self.ingest_seconds else 0.0

    @property
    def intact(self) -> bool:
        """Every order has exactly one waybill, no duplicates, no dead or stuck task."""
        return (
            self.orders_with_one_waybill == self.orders
            and self.orders_without_waybill == 0
            and self.orders_with_several == 0
            and self.duplicate_live_waybills == 0
            and self.dead_tasks == 0
            and self.open_tasks == 0
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "label": self.label,
            "orders": self.orders,
            "faulted": self.faulted,
            "ingest_seconds": round(self.ingest_seconds, 3),
            "orders_per_s": round(self.orders_per_s, 1),
            "reserved": self.reserved,
            "waybill_tasks": self.waybill_tasks,
            "held": self.held,
            "failed": self.failed,
            "drain_seconds": round(self.drain_seconds, 3),
            "waybills_by_courier": dict(sorted(self.waybills_by_courier.items())),
            "orders_with_one_waybill": self.orders_with_one_waybill,
            "orders_without_waybill": self.orders_without_waybill,
            "orders_with_several": self.orders_with_several,
            "duplicate_live_waybills": self.duplicate_live_waybills,
            "dead_tasks": self.dead_tasks,
            "open_tasks": self.open_tasks,
            "deferred": self.deferred,
            "hang_started_s": _round(self.hang_started),
            "hang_ended_s": _round(self.hang_ended),
            "breaker_history": self.breaker_history,
            "intact": self.intact,
        }


@dataclass(slots=True)
class IncidentReport:
    """Both runs and the verdict."""

    config: IncidentConfig
    healthy: RunReport
    faulted: RunReport

    @property
    def ratio(self) -> float:
        """Faulted orders/s over healthy orders/s."""
        base = self.healthy.orders_per_s
        return self.faulted.orders_per_s / base if base else 0.0

    @property
    def breaker_opened_and_closed(self) -> bool:
        """A breaker opened during the fault, and every breaker was closed at the end."""
        last: dict[str, str] = {}
        for change in self.faulted.breaker_history:
            last[change["service"]] = change["new"]
        opened = any(change["new"] == "open" for change in self.faulted.breaker_history)
        return opened and all(state == "closed" for state in last.values())

    @property
    def failed_over(self) -> bool:
        """The backup courier made waybills during the fault."""
        return len([n for n in self.faulted.waybills_by_courier.values() if n]) > 1

    @property
    def ok(self) -> bool:
        """Every check of the replay passed."""
        return (
            self.ratio >= self.config.min_ratio
            and self.healthy.intact
            and self.faulted.intact
            and self.breaker_opened_and_closed
            and self.failed_over
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "orders": self.config.orders,
            "channels": list(self.config.channels),
            "hang_from_share": self.config.hang_from,
            "hang_for_s": self.config.hang_for,
            "healthy": self.healthy.as_dict(),
            "faulted": self.faulted.as_dict(),
            "throughput_ratio": round(self.ratio, 3),
            "min_ratio": self.config.min_ratio,
            "breaker_opened_and_closed": self.breaker_opened_and_closed,
            "failed_over": self.failed_over,
            "ok": self.ok,
        }


def sale_orders(
    count: int,
    *,
    at: datetime,
    prefix: str = "",
    channels: Sequence[str] = CHANNELS,
    skus: int = 50,
    start: int = 0,
) -> list[Order]:
    """``count`` paid orders of a sale, spread over ``channels``; deterministic.

    One line each (SKU ``SKU-<n>``, ``skus`` of them), a plausible receiver and address
    in one of six provinces, a distinct mobile number and address per order (numbered
    from ``start``, so two calls with disjoint ranges share no buyer).
    """
    orders = []
    for index in range(start, start + count):
        channel = channels[index % len(channels)]
        province, city, district = _PROVINCES[index % len(_PROVINCES)]
        tail = (index * 7_919 + 24_681_357) % 100_000_000
        phone = f"{_MOBILE_PREFIXES[index % len(_MOBILE_PREFIXES)]}{tail:08d}"
        name = _SURNAMES[index % len(_SURNAMES)] + _GIVEN[index % len(_GIVEN)]
        created = at + timedelta(milliseconds=index - start)
        orders.append(
            Order(
                id=f"{prefix}{channel}-{index}",
                channel=channel,
                external_id=f"{prefix}NY{index:06d}",
                buyer_id=f"buyer-{index}",
                status=OrderStatus.PAID,
                lines=(
                    OrderLine(
                        sku=f"SKU-{index % skus}",
                        quantity=1,
                        unit_price=Money(amount=Decimal("59.00")),
                        title="新年礼盒",
                    ),
                ),
                receiver=Contact(name=name, phone=phone),
                address=Address(
                    province=province,
                    city=city,
                    district=district,
                    street=f"{_STREETS[index % len(_STREETS)]}路",
                    detail=f"{index // 7 + 1}号{index % 7 + 1}单元{index % 30 + 101}室",
                ),
                created_at=created,
                updated_at=created,
            )
        )
    return orders


async def run_incident(
    core: OrderCore,
    rigs: RigFactory,
    config: IncidentConfig | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> IncidentReport:
    """Play the day twice on ``core``, side by side: healthy couriers, and a hanging primary.

    Both runs go at once in this process, each with its own orders (``hy-`` and
    ``nf-`` ids, disjoint buyers) and its own couriers (a fresh rig each), through one
    storage and one outbox worker whose handler sends each task to its run's couriers.
    Side by side, whatever else loads the machine slows both runs alike, so the
    throughput ratio measures the fault, not the noise. A warm-up day goes first.
    """
    config = config or IncidentConfig()
    say = progress or (lambda _message: None)
    total = 2 * config.orders + config.warmup
    for sku in range(config.skus):  # every run's orders fit: the day is about couriers
        await core.inventory.receive(f"SKU-{sku}", total // config.skus + 2)
    if config.warmup:
        say(f"warm-up: {config.warmup} orders")
        async with rigs() as rig:
            warm = _Run(RunReport("warm-up", config.warmup, faulted=False), "wu-", rig)
            warm_day = replace(config, orders=config.warmup)
            await _play(core, warm_day, [warm], first=2 * config.orders)
    say(f"two runs side by side, {config.orders} orders each; the faulted one's primary hangs")
    async with rigs() as healthy_rig, rigs() as faulted_rig:
        healthy = _Run(RunReport("healthy", config.orders, faulted=False), "hy-", healthy_rig)
        faulted = _Run(
            RunReport("primary courier hangs", config.orders, faulted=True), "nf-", faulted_rig
        )
        await _play(core, config, [healthy, faulted])
    report = IncidentReport(config, healthy.report, faulted.report)
    say(
        f"healthy {healthy.report.orders_per_s:,.0f} orders/s, "
        f"faulted {faulted.report.orders_per_s:,.0f} orders/s (ratio {report.ratio:.3f})"
    )
    return report


@dataclass(slots=True)
class _Run:
    report: RunReport
    prefix: str
    rig: CourierRig
    deferred: int = 0
    service: WaybillService | None = None


async def _play(
    core: OrderCore, config: IncidentConfig, runs: Sequence[_Run], *, first: int = 0
) -> None:
    """Ingest every run's orders at once, drain their waybill tasks, check the outcome.

    Orders are numbered from ``first`` on, each run its own range (no shared buyers).
    """
    orders: dict[str, list[Order]] = {}
    for number, run in enumerate(runs):
        run.service = WaybillService(
            core.storage, core.clock, run.rig.chain, SENDERS, settings=core.settings
        )
        orders[run.prefix] = sale_orders(
            config.orders,
            at=core.clock.now(),
            prefix=run.prefix,
            channels=config.channels,
            skus=config.skus,
            start=first + number * config.orders,
        )

    def run_of(task: OutboxTask) -> _Run:
        order_id = str(task.payload.get("order_id", ""))
        for run in runs:
            if order_id.startswith(run.prefix):
                return run
        raise OrderNotFound(order_id)

    async def create(task: OutboxTask) -> None:
        run = run_of(task)
        assert run.service is not None
        try:
            await run.service.create_handler(task)
        except WaybillDeferred:
            run.deferred += 1
            raise

    async def cancel(task: OutboxTask) -> None:
        service = run_of(task).service
        assert service is not None
        await service.cancel_handler(task)

    registry = HandlerRegistry()
    registry.register(CREATE_KIND, create, max_attempts=200)
    registry.register(CANCEL_KIND, cancel, max_attempts=200)
    worker = core.outbox.worker(registry, name="incident", concurrency=config.workers * len(runs))
    began = time.perf_counter()

    due = anyio.Event()
    threshold = math.ceil(config.hang_from * config.orders)

    async def fault(run: _Run) -> None:
        await due.wait()
        run.rig.hang()
        run.report.hang_started = time.perf_counter() - began
        await anyio.sleep(config.hang_for)
        # On a slow or busy machine the waybill workers may not have reached the primary
        # within hang_for: the outage lasts until a breaker has opened (bounded), so the
        # replay always shows the failover it is about.
        with anyio.move_on_after(max(config.hang_for, 30.0)):
            while not any(change.new.value == "open" for change in run.rig.history()):  # noqa: ASYNC110  the rig offers no event
                await anyio.sleep(0.05)
        run.rig.recover()
        run.report.hang_ended = time.perf_counter() - began

    async def ingest(run: _Run) -> None:
        halfway = (threshold, due) if run.report.faulted else None
        await _ingest(core, orders[run.prefix], config, run.report, halfway)
        run.report.ingest_seconds = time.perf_counter() - began
        if halfway is not None:
            due.set()  # a day that never got that far still sees the fault, at its end

    async with anyio.create_task_group() as group:
        group.start_soon(worker.run)
        async with anyio.create_task_group() as feeding:
            for run in runs:
                feeding.start_soon(ingest, run)
                if run.report.faulted:
                    feeding.start_soon(fault, run)
        with anyio.fail_after(config.drain_timeout):
            await _drained(core)
        drained = time.perf_counter() - began
        worker.stop()
    for run in runs:
        run.report.drain_seconds = drained
        run.report.deferred = run.deferred
        await _check(core, run.rig, [order.id for order in orders[run.prefix]], run.report)
        run.report.breaker_history = [change.as_dict() for change in run.rig.history()]


async def _ingest(
    core: OrderCore,
    orders: Sequence[Order],
    config: IncidentConfig,
    report: RunReport,
    halfway: tuple[int, anyio.Event] | None = None,
) -> None:
    """The critical path: accept (store, reserve, screen) and request the waybill.

    Each channel's orders go in windows of ``config.window``; ``halfway`` is set once
    that many waybill tasks are written.
    """
    by_channel: dict[str, list[Order]] = {}
    step = config.window * len(config.channels)
    for start in range(0, len(orders), step):
        by_channel.clear()
        for order in orders[start : start + step]:
            by_channel.setdefault(order.channel, []).append(order)
        for channel, batch in by_channel.items():
            accepted = await core.fulfilment.accept(channel, batch)
            requested = await core.fulfilment.request_waybill(accepted.orders.values())
            report.reserved += len(accepted.reserved)
            report.held += len(accepted.held)
            report.failed += len(accepted.failed) + len(requested.failed)
            report.waybill_tasks += len(requested.done)
            if halfway is not None and report.waybill_tasks >= halfway[0]:
                halfway[1].set()


async def _drained(core: OrderCore, poll: float = 0.1) -> None:
    while True:
        async with core.storage.unit_of_work() as uow:
            creates = await uow.outbox.list(states=OPEN_STATES, kind=CREATE_KIND, limit=1)
            cancels = await uow.outbox.list(states=OPEN_STATES, kind=CANCEL_KIND, limit=1)
            dead = await uow.outbox.list(states=(OutboxState.DEAD,), kind=CREATE_KIND, limit=1)
        if dead:
            return  # nothing will finish it; _check reports it
        if not creates and not cancels:
            return
        await anyio.sleep(poll)


async def _check(core: OrderCore, rig: CourierRig, ids: Sequence[str], report: RunReport) -> None:
    """Count waybills per order in storage and live waybills at the couriers."""
    wanted = set(ids)
    by_courier: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        async with core.storage.unit_of_work() as uow:
            for order_id in ids[start : start + 500]:
                records = [
                    record
                    for record in await uow.waybills.for_order(order_id)
                    if record.waybill is not None
                ]
                if not records:
                    report.orders_without_waybill += 1
                elif len(records) > 1:
                    report.orders_with_several += 1
                else:
                    report.orders_with_one_waybill += 1
                    courier = records[0].courier or "?"
                    by_courier[courier] = by_courier.get(courier, 0) + 1
    report.waybills_by_courier = by_courier
    live = rig.live_waybills()
    keys: dict[str, int] = {}
    for held in live.values():
        for key, count in held.items():
            if key.rsplit(":", 1)[0] in wanted:
                keys[key] = keys.get(key, 0) + count
    report.duplicate_live_waybills = sum(1 for count in keys.values() if count > 1)
    async with core.storage.unit_of_work() as uow:
        for kind in (CREATE_KIND, CANCEL_KIND):
            dead = await uow.outbox.list(states=(OutboxState.DEAD,), kind=kind, limit=100_000)
            still = await uow.outbox.list(states=OPEN_STATES, kind=kind, limit=100_000)
            report.dead_tasks += sum(1 for task in dead if _of(task.payload, wanted))
            report.open_tasks += sum(1 for task in still if _of(task.payload, wanted))


def _of(payload: dict[str, Any], wanted: set[str]) -> bool:
    return str(payload.get("order_id", "")) in wanted


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
