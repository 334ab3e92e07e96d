"""The outbox: durable tasks written with a state change, run later by workers.

Enqueue inside the unit of work that makes the change, so both commit or neither does::

    async with core.storage.unit_of_work() as uow:
        await uow.orders.save(order.transition(OrderStatus.ALLOCATED, now))
        await core.outbox.enqueue(uow, "waybill.print", {"order_id": order.id},
                                  key=f"waybill:{order.id}", ordering_key=order.id)
        await uow.commit()

Run the tasks with a worker and a registry of handlers, one per task kind::

    registry = HandlerRegistry()

    @registry.handler("waybill.print", max_attempts=8)
    async def print_waybill(task: OutboxTask) -> None:
        await courier.print_waybill(task.payload["order_id"], idempotency_key=task.key)

    await core.outbox.worker(registry).run()

Guarantees (docs/outbox.md): at least once (a handler may run again after a crash, so
it passes ``task.key`` on as its idempotency key); in order per ordering key; a claim
is a lease, renewed while the handler runs and taken over when it runs out; failures
retry with exponential backoff and jitter, and after ``max_attempts`` the task is dead
until an operator redrives it. Errors the caller caused (an OrderCoreError the
resilience classifier calls BUSINESS) are dead at once: retrying will not change them.

Domain events go out through the same machinery: :func:`enqueue_event` writes an
``ordercore.event`` task ordered per order id, and :func:`event_relay` is its handler,
publishing through an :class:`~ordercore.ports.events.EventPublisherPort`.
"""

from __future__ import annotations

import builtins
import logging
import math
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import anyio
from anyio.abc import TaskGroup
from opentelemetry import metrics, trace
from tenacity import AsyncRetrying, RetryCallState, wait_exponential_jitter

from ordercore.config import Settings
from ordercore.domain.events import DomainEvent, EventEnvelope
from ordercore.domain.outbox import OPEN_STATES, OutboxState, OutboxTask, scrub_error
from ordercore.errors import (
    FieldError,
    InvalidOutboxTask,
    OrderCoreError,
    OutboxTaskNotFound,
    UnknownTaskKind,
)
from ordercore.ports.clock import Clock
from ordercore.ports.events import EventPublisherPort
from ordercore.ports.storage import Storage, UnitOfWork
from ordercore.resilience.classify import ErrorKind, default_classifier, retry_after_of

__all__ = [
    "EVENT_KIND",
    "Backoff",
    "Handler",
    "HandlerRegistry",
    "HandlerSpec",
    "OutboxService",
    "OutboxWorker",
    "StopWhen",
    "WorkerStats",
    "enqueue",
    "enqueue_event",
    "event_relay",
    "new_task",
]

EVENT_KIND = "ordercore.event"
"""The task kind that relays one domain event to the broker."""

Handler = Callable[[OutboxTask], Awaitable[None]]
"""Runs one task; returns when its work is done, raises when it failed."""

StopWhen = Literal["never", "idle", "drained"]
"""When :meth:`OutboxWorker.run` returns on its own (besides :meth:`OutboxWorker.stop`)."""

logger = logging.getLogger("ordercore.outbox")
tracer = trace.get_tracer("ordercore")
meter = metrics.get_meter("ordercore")
_outcomes = meter.create_counter(
    "ordercore.outbox.tasks",
    unit="{task}",
    description="Outbox task attempts by kind and outcome (done, retry, dead, lost, released)",
)
_duration = meter.create_histogram(
    "ordercore.outbox.task.duration", unit="s", description="Handler run time per attempt"
)


def new_task(
    kind: str,
    payload: Mapping[str, Any],
    *,
    key: str,
    now: datetime,
    ordering_key: str | None = None,
    available_at: datetime | None = None,
) -> OutboxTask:
    """A new pending task with a fresh id (validated: see OutboxTask.new)."""
    return OutboxTask.new(
        id=uuid.uuid4().hex,
        kind=kind,
        key=key,
        payload=dict(payload),
        now=now,
        ordering_key=ordering_key,
        available_at=available_at,
    )


async def enqueue(
    uow: UnitOfWork,
    kind: str,
    payload: Mapping[str, Any],
    *,
    key: str,
    now: datetime,
    ordering_key: str | None = None,
    available_at: datetime | None = None,
) -> bool:
    """Write a task in ``uow`` (it commits with the unit); False when ``key`` was stored before."""
    task = new_task(
        kind, payload, key=key, now=now, ordering_key=ordering_key, available_at=available_at
    )
    return bool(await uow.outbox.enqueue([task]))


def event_ordering_key(order_id: str) -> str:
    """The ordering key of an order's events (apart from its other tasks: a slow waybill
    retry must not hold back the events)."""
    return f"events:{order_id}"


async def enqueue_event(uow: UnitOfWork, event: DomainEvent, now: datetime) -> bool:
    """Write ``event`` for the relay in ``uow``; events of one order go out in this order."""
    envelope = event.envelope()
    return await enqueue(
        uow,
        EVENT_KIND,
        envelope.model_dump(mode="json"),
        key=f"event:{envelope.id}",
        now=now,
        ordering_key=event_ordering_key(envelope.order_id),
    )


def event_relay(publisher: EventPublisherPort) -> Handler:
    """The handler of ``ordercore.event`` tasks: publish the envelope, return on the ack."""

    async def relay(task: OutboxTask) -> None:
        await publisher.publish([EventEnvelope.model_validate(task.payload)])

    return relay


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    """A registered handler and its policy."""

    kind: str
    handler: Handler
    max_attempts: int | None = None
    """Attempts before the task is dead (None: ``Settings.outbox_max_attempts``)."""
    timeout: timedelta | None = None
    """Longest one attempt may run; past it the attempt fails (and is retried)."""


class HandlerRegistry:
    """Handlers by task kind. A worker claims only the kinds it has handlers for."""

    def __init__(self) -> None:
        self._specs: dict[str, HandlerSpec] = {}

    def register(
        self,
        kind: str,
        handler: Handler,
        *,
        max_attempts: int | None = None,
        timeout: timedelta | None = None,
    ) -> None:
        """Register ``handler`` for ``kind`` (one handler per kind; InvalidOutboxTask if taken)."""
        errors = []
        if kind in self._specs:
            errors.append(FieldError("kind", "already has a handler", kind))
        if max_attempts is not None and max_attempts < 1:
            errors.append(FieldError("max_attempts", "must be >= 1", max_attempts))
        if timeout is not None and timeout <= timedelta(0):
            errors.append(FieldError("timeout", "must be positive", timeout))
        if errors:
            raise InvalidOutboxTask(errors)
        self._specs[kind] = HandlerSpec(kind, handler, max_attempts, timeout)

    def handler(
        self, kind: str, *, max_attempts: int | None = None, timeout: timedelta | None = None
    ) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`register`."""

        def decorate(handler: Handler) -> Handler:
            self.register(kind, handler, max_attempts=max_attempts, timeout=timeout)
            return handler

        return decorate

    def get(self, kind: str) -> HandlerSpec:
        """The spec of ``kind``; UnknownTaskKind when none is registered."""
        try:
            return self._specs[kind]
        except KeyError:
            raise UnknownTaskKind(kind, self._specs) from None

    @property
    def kinds(self) -> tuple[str, ...]:
        """The registered kinds, sorted."""
        return tuple(sorted(self._specs))

    def __contains__(self, kind: object) -> bool:
        return kind in self._specs


class Backoff:
    """Delay before the next attempt: exponential with jitter (tenacity's computation).

    Attempt ``n`` failed: wait ``initial * 2**(n-1)`` plus up to ``initial`` of random
    jitter, at most ``maximum``. A retry-after hint on the error wins when it is longer.
    """

    def __init__(self, initial: timedelta, maximum: timedelta) -> None:
        seconds = initial.total_seconds()
        self._wait = wait_exponential_jitter(
            multiplier=seconds, max=maximum.total_seconds(), jitter=seconds
        )
        self._state = RetryCallState(AsyncRetrying(), None, (), {})

    def delay(self, attempts: int, error: BaseException | None = None) -> timedelta:
        """The delay after the ``attempts``-th failed attempt."""
        self._state.attempt_number = max(1, attempts)
        seconds = self._wait(self._state)
        hint = retry_after_of(error) if error is not None else None
        if hint is not None and math.isfinite(hint):
            seconds = max(seconds, hint)
        return timedelta(seconds=seconds)


@dataclass(slots=True)
class WorkerStats:
    """What one worker did (this process only)."""

    claimed: int = 0
    done: int = 0
    retried: int = 0
    dead: int = 0
    lost: int = 0
    """Attempts whose lease was taken over before they finished (their result dropped)."""
    released: int = 0
    """Attempts cut short by a stop and handed back for another worker."""
    by_kind: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Done:
    task_id: str
    owner: str
    held: bool = False
    settled: bool = False


@dataclass(slots=True)
class _Running:
    owner: str
    scope: anyio.CancelScope
    lost: bool = False


class OutboxWorker:
    """Claims due tasks and runs their handlers, ``concurrency`` at a time.

    One claim loop, one lease-renewal loop, one anyio task per running handler. Safe to
    run in many processes on one PostgreSQL (claims skip each other's rows); on SQLite
    run one worker process. :meth:`stop` stops claiming, lets running handlers finish
    for up to ``Settings.outbox_drain_timeout``, then cancels the rest and hands their
    tasks back (pending, due now).
    """

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        registry: HandlerRegistry,
        settings: Settings | None = None,
        *,
        name: str | None = None,
        concurrency: int | None = None,
        kinds: Iterable[str] | None = None,
    ) -> None:
        settings = settings or Settings()
        self._storage = storage
        self._clock = clock
        self._registry = registry
        self._settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.concurrency = concurrency or settings.outbox_concurrency
        self.kinds = tuple(sorted(kinds)) if kinds is not None else registry.kinds
        for kind in self.kinds:
            registry.get(kind)
        self.lease = settings.outbox_lease
        self.backoff = Backoff(settings.outbox_backoff_initial, settings.outbox_backoff_max)
        self.stats = WorkerStats()
        self._running: dict[str, _Running] = {}
        self._claims = 0
        self._stopping = False
        self._wake = anyio.Event()
        self._finished_one = anyio.Event()
        self._done: list[_Done] = []
        self._done_lock = anyio.Lock()

    def stop(self) -> None:
        """Stop claiming; running handlers get the drain timeout to finish."""
        self._stopping = True
        self._wake.set()

    async def run(self, *, stop_when: StopWhen = "never") -> WorkerStats:
        """Work until :meth:`stop` (``never``), until nothing is due and nothing runs
        (``idle``), or until no task is pending or running at all (``drained``)."""
        if not self.kinds:
            raise UnknownTaskKind("(any)", ())
        try:
            await self._run(stop_when)
        finally:
            self._stopping = False  # a stopped worker can run again
            self._wake = anyio.Event()
        return self.stats

    async def _run(self, stop_when: StopWhen) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(self._renew_loop)
            try:
                await self._claim_loop(group, stop_when)
                with anyio.move_on_after(self._settings.outbox_drain_timeout.total_seconds()):
                    await self._all_finished()
                for running in list(self._running.values()):
                    running.scope.cancel()  # each hands its task back (see _attempt)
                with anyio.move_on_after(10):
                    await self._all_finished()
            finally:
                group.cancel_scope.cancel()

    async def run_once(self) -> int:
        """Claim what is due now and run it to the end; return how many tasks were run."""
        before = self.stats.claimed
        await self.run(stop_when="idle")
        return self.stats.claimed - before

    # -- the loops -------------------------------------------------------------------------

    async def _claim_loop(self, group: TaskGroup, stop_when: StopWhen) -> None:
        poll = self._settings.outbox_poll_interval.total_seconds()
        while not self._stopping:
            free = self.concurrency - len(self._running)
            if free <= 0:
                await self._sleep(poll)
                continue
            tasks, owner = await self._claim(free)
            for task in tasks:
                scope = anyio.CancelScope()
                self._running[task.id] = _Running(owner, scope)
                group.start_soon(self._attempt, task, owner, scope)
            if tasks:
                continue
            if stop_when != "never" and await self._finished(stop_when):
                return
            await self._sleep(poll)

    async def _finished(self, stop_when: StopWhen) -> bool:
        if self._running:
            return False
        if stop_when == "idle":
            return True
        try:
            async with self._storage.unit_of_work() as uow:
                left = await uow.outbox.list(states=OPEN_STATES, limit=1)
        except OrderCoreError as exc:
            logger.warning("outbox check failed: %s", scrub_error(str(exc)))
            return False
        return not left

    async def _claim(self, free: int) -> tuple[list[OutboxTask], str]:
        self._claims += 1
        owner = f"{self.name}#{self._claims}"
        now = self._clock.now()
        try:
            async with self._storage.unit_of_work() as uow:
                tasks = await uow.outbox.claim(
                    owner, limit=free, lease_until=now + self.lease, now=now, kinds=self.kinds
                )
                await uow.commit()
        except OrderCoreError as exc:
            logger.warning("outbox claim failed: %s", scrub_error(str(exc)))
            return [], owner
        self.stats.claimed += len(tasks)
        return tasks, owner

    async def _renew_loop(self) -> None:
        interval = self.lease.total_seconds() / 3
        while True:
            await anyio.sleep(interval)
            by_owner: dict[str, list[str]] = {}
            for task_id, held_task in list(self._running.items()):
                by_owner.setdefault(held_task.owner, []).append(task_id)
            if not by_owner:
                continue
            now = self._clock.now()
            held: dict[str, set[str]] = {}
            try:
                async with self._storage.unit_of_work() as uow:  # one transaction per round
                    for owner, ids in by_owner.items():
                        held[owner] = await uow.outbox.renew(
                            ids, owner, lease_until=now + self.lease, now=now
                        )
                    await uow.commit()
            except OrderCoreError as exc:
                logger.warning("outbox lease renewal failed: %s", scrub_error(str(exc)))
                continue
            for owner, ids in by_owner.items():
                for task_id in set(ids) - held[owner]:
                    running = self._running.get(task_id)
                    if running is not None and running.owner == owner:
                        running.lost = True
                        running.scope.cancel()

    async def _all_finished(self) -> None:
        while self._running:
            self._finished_one = anyio.Event()
            await self._finished_one.wait()

    async def _sleep(self, seconds: float) -> None:
        with anyio.move_on_after(seconds):
            await self._wake.wait()
        if self._wake.is_set() and not self._stopping:
            self._wake = anyio.Event()

    # -- one attempt -----------------------------------------------------------------------

    async def _attempt(self, task: OutboxTask, owner: str, scope: anyio.CancelScope) -> None:
        spec = self._registry.get(task.kind)
        limit = spec.max_attempts or self._settings.outbox_max_attempts
        attrs = {"ordercore.task.kind": task.kind}
        try:
            if task.attempts > limit:
                # Claimed again after its last allowed attempt's lease ran out (a crash).
                await self._fail(task, owner, "the last attempt never finished (lease ran out)")
                return
            with tracer.start_as_current_span(
                "ordercore.outbox.run",
                attributes={
                    "ordercore.task.kind": task.kind,
                    "ordercore.task.id": task.id,
                    "ordercore.task.attempt": task.attempts,
                },
            ) as span:
                started = anyio.current_time()
                error: Exception | None = None
                with scope:
                    try:
                        if spec.timeout is None:
                            await spec.handler(task)
                        else:
                            with anyio.fail_after(spec.timeout.total_seconds()):
                                await spec.handler(task)
                    except Exception as exc:
                        error = exc
                _duration.record(anyio.current_time() - started, attrs)
                running = self._running.get(task.id)
                if scope.cancelled_caught:
                    if running is not None and running.lost:
                        self._count("lost", task)
                        span.set_attribute("ordercore.task.outcome", "lost")
                    else:
                        await self._release(task, owner)
                    return
                if error is None:
                    outcome = await self._complete(task, owner)
                else:
                    span.record_exception(error)
                    outcome = await self._after_failure(task, owner, error, limit)
                span.set_attribute("ordercore.task.outcome", outcome)
        except Exception:  # never let one task's bookkeeping take the worker down
            logger.exception("outbox task %s (%s) bookkeeping failed", task.id, task.kind)
        finally:
            self._running.pop(task.id, None)
            self._wake.set()
            self._finished_one.set()

    async def _complete(self, task: OutboxTask, owner: str) -> str:
        # Group commit: handlers that finish while a completion is being written queue up,
        # and the next one through the (fair) lock writes them all in one transaction.
        done = _Done(task.id, owner)
        self._done.append(done)
        async with self._done_lock:
            if not done.settled:
                batch, self._done = self._done, []
                try:
                    now = self._clock.now()
                    async with self._storage.unit_of_work() as uow:
                        for item in batch:
                            item.held = await uow.outbox.complete(item.task_id, item.owner, now)
                        await uow.commit()
                except BaseException:
                    for item in batch:
                        item.held = False
                    raise
                finally:
                    for item in batch:
                        item.settled = True
        return self._count("done" if done.held else "lost", task)

    async def _after_failure(
        self, task: OutboxTask, owner: str, error: Exception, limit: int
    ) -> str:
        message = scrub_error(f"{type(error).__name__}: {error}")
        kind = default_classifier(error)
        if kind is ErrorKind.BUSINESS or task.attempts >= limit:
            return await self._fail(task, owner, message)
        retry_at = self._clock.now() + self.backoff.delay(task.attempts, error)
        logger.info(
            "outbox task %s (%s) attempt %d failed, retry at %s: %s",
            task.id,
            task.kind,
            task.attempts,
            retry_at.isoformat(),
            message,
        )
        async with self._storage.unit_of_work() as uow:
            held = await uow.outbox.fail(
                task.id, owner, self._clock.now(), error=message, retry_at=retry_at
            )
            await uow.commit()
        return self._count("retry" if held else "lost", task)

    async def _fail(self, task: OutboxTask, owner: str, message: str) -> str:
        logger.warning(
            "outbox task %s (%s) is dead after %d attempts: %s",
            task.id,
            task.kind,
            task.attempts,
            message,
        )
        async with self._storage.unit_of_work() as uow:
            held = await uow.outbox.fail(
                task.id, owner, self._clock.now(), error=message, retry_at=None
            )
            await uow.commit()
        return self._count("dead" if held else "lost", task)

    async def _release(self, task: OutboxTask, owner: str) -> None:
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            now = self._clock.now()
            async with self._storage.unit_of_work() as uow:
                await uow.outbox.fail(
                    task.id, owner, now, error="worker stopped during the attempt", retry_at=now
                )
                await uow.commit()
            self._count("released", task)

    def _count(self, outcome: str, task: OutboxTask) -> str:
        stats = self.stats
        if outcome == "done":
            stats.done += 1
            stats.by_kind[task.kind] = stats.by_kind.get(task.kind, 0) + 1
        elif outcome == "retry":
            stats.retried += 1
        elif outcome == "dead":
            stats.dead += 1
        elif outcome == "lost":
            stats.lost += 1
        else:
            stats.released += 1
        _outcomes.add(1, {"ordercore.task.kind": task.kind, "ordercore.task.outcome": outcome})
        return outcome


class OutboxService:
    """``core.outbox``: enqueue in a unit of work, inspect, redrive, purge, make workers."""

    def __init__(self, storage: Storage, clock: Clock, settings: Settings) -> None:
        self._storage = storage
        self._clock = clock
        self._settings = settings

    async def enqueue(
        self,
        uow: UnitOfWork,
        kind: str,
        payload: Mapping[str, Any],
        *,
        key: str,
        ordering_key: str | None = None,
        delay: timedelta | None = None,
    ) -> bool:
        """Write a task in ``uow`` (due now, or after ``delay``); False when the key exists."""
        now = self._clock.now()
        return await enqueue(
            uow,
            kind,
            payload,
            key=key,
            now=now,
            ordering_key=ordering_key,
            available_at=None if delay is None else now + delay,
        )

    async def enqueue_event(self, uow: UnitOfWork, event: DomainEvent) -> bool:
        """Write a domain event for the relay in ``uow``."""
        return await enqueue_event(uow, event, self._clock.now())

    async def list(
        self,
        *,
        states: Sequence[OutboxState] = (),
        kind: str | None = None,
        ordering_key: str | None = None,
        limit: int = 100,
    ) -> builtins.list[OutboxTask]:
        """Tasks in insertion order, optionally filtered."""
        async with self._storage.unit_of_work() as uow:
            return await uow.outbox.list(
                states=states, kind=kind, ordering_key=ordering_key, limit=limit
            )

    async def get(self, task_id: str) -> OutboxTask:
        """One task; OutboxTaskNotFound when no task has this id."""
        async with self._storage.unit_of_work() as uow:
            task = await uow.outbox.get(task_id)
        if task is None:
            raise OutboxTaskNotFound(task_id)
        return task

    async def counts(self) -> dict[OutboxState, int]:
        """Tasks per state."""
        async with self._storage.unit_of_work() as uow:
            return await uow.outbox.counts()

    async def redrive(self, ids: Sequence[str] | None = None) -> builtins.list[str]:
        """Make dead tasks pending again (``None``: every dead task); returns their ids."""
        async with self._storage.unit_of_work() as uow:
            redriven = await uow.outbox.redrive(ids, self._clock.now())
            await uow.commit()
        return redriven

    async def purge(self, older_than: timedelta, *, batch: int = 1000) -> int:
        """Delete done tasks finished more than ``older_than`` ago; returns how many.

        Their keys can then be enqueued again: the idempotency window is the retention.
        """
        cutoff = self._clock.now() - older_than
        total = 0
        while True:
            async with self._storage.unit_of_work() as uow:
                deleted = await uow.outbox.purge(cutoff, batch)
                await uow.commit()
            total += deleted
            if deleted < batch:
                return total

    def worker(
        self,
        registry: HandlerRegistry,
        *,
        name: str | None = None,
        concurrency: int | None = None,
        kinds: Iterable[str] | None = None,
    ) -> OutboxWorker:
        """A worker over this core's storage and clock."""
        return OutboxWorker(
            self._storage,
            self._clock,
            registry,
            self._settings,
            name=name,
            concurrency=concurrency,
            kinds=kinds,
        )
