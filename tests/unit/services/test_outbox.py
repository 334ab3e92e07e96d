"""The outbox service and worker on the memory storage: runs, retries, dead letters, leases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial

import anyio
import pytest

from ordercore.config import Settings
from ordercore.core import OrderCore
from ordercore.domain.events import EventLine, StockReserved
from ordercore.domain.outbox import OutboxState, OutboxTask
from ordercore.errors import (
    EventPublishFailed,
    InvalidOrder,
    InvalidOutboxTask,
    StorageUnavailable,
    UnknownTaskKind,
)
from ordercore.ports.clock import ManualClock, SystemClock
from ordercore.services.outbox import (
    EVENT_KIND,
    Backoff,
    HandlerRegistry,
    event_relay,
)
from ordercore.sync import SyncOrderCore
from ordercore.testing import InMemoryEventPublisher
from ordercore_adapters.storage.memory import MemoryStorage

pytestmark = pytest.mark.anyio

FAST = Settings(
    outbox_poll_interval=timedelta(milliseconds=10),
    outbox_backoff_initial=timedelta(seconds=10),
    outbox_backoff_max=timedelta(minutes=5),
    outbox_max_attempts=3,
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 11, tzinfo=UTC))


@pytest.fixture
async def core(clock: ManualClock) -> AsyncIterator[OrderCore]:
    storage = MemoryStorage("memory://", FAST)
    await storage.open()
    yield OrderCore(storage, clock, FAST)
    await storage.close()


async def enqueue(
    core: OrderCore, kind: str, key: str, ordering_key: str | None = None, **payload: object
) -> None:
    async with core.storage.unit_of_work() as uow:
        await core.outbox.enqueue(uow, kind, payload, key=key, ordering_key=ordering_key)
        await uow.commit()


async def only_task(core: OrderCore) -> OutboxTask:
    (task,) = await core.outbox.list()
    return task


async def test_a_task_runs_once_and_is_done(core: OrderCore) -> None:
    """The worker hands the task to its kind's handler and marks it done."""
    seen: list[tuple[str, object]] = []
    registry = HandlerRegistry()

    @registry.handler("waybill.print")
    async def handle(task: OutboxTask) -> None:
        seen.append((task.key, task.payload["order_id"]))

    await enqueue(core, "waybill.print", "waybill:o1", order_id="o1")
    stats = await core.outbox.worker(registry).run(stop_when="idle")
    assert seen == [("waybill:o1", "o1")]
    task = await only_task(core)
    assert (task.state, task.attempts, task.finished_at) == (OutboxState.DONE, 1, core.clock.now())
    assert (stats.done, stats.by_kind) == (1, {"waybill.print": 1})


async def test_enqueue_is_kept_only_with_its_unit(core: OrderCore) -> None:
    """A task enqueued in a unit that does not commit never runs."""
    async with core.storage.unit_of_work() as uow:
        assert await core.outbox.enqueue(uow, "mail.send", {"order_id": "o1"}, key="k")
    assert await core.outbox.list() == []


async def test_enqueue_twice_with_one_key_stores_one_task(core: OrderCore) -> None:
    """The idempotency key makes a repeated enqueue a no-op that reports False."""
    async with core.storage.unit_of_work() as uow:
        assert await core.outbox.enqueue(uow, "mail.send", {"order_id": "o1"}, key="k")
        assert not await core.outbox.enqueue(uow, "mail.send", {"order_id": "o1"}, key="k")
        await uow.commit()
    assert len(await core.outbox.list()) == 1


async def test_personal_data_in_a_payload_is_refused(core: OrderCore) -> None:
    """A payload field named like a phone or address raises InvalidOutboxTask naming it."""
    async with core.storage.unit_of_work() as uow:
        with pytest.raises(InvalidOutboxTask, match=r"payload\.receiver\.phone") as caught:
            await core.outbox.enqueue(
                uow, "sms.send", {"receiver": {"phone": "13800138000"}}, key="k"
            )
    assert "13800138000" not in str(caught.value)


async def test_a_failure_is_retried_after_a_backoff(core: OrderCore, clock: ManualClock) -> None:
    """A failed attempt comes back pending 10-20 s later (first backoff plus jitter)."""
    calls: list[int] = []
    registry = HandlerRegistry()

    @registry.handler("invoice.issue")
    async def handle(task: OutboxTask) -> None:
        calls.append(task.attempts)
        if task.attempts == 1:
            raise TimeoutError("e-invoice service timed out")

    await enqueue(core, "invoice.issue", "inv:o1")
    worker = core.outbox.worker(registry)
    await worker.run(stop_when="idle")
    task = await only_task(core)
    assert task.state is OutboxState.PENDING
    assert task.last_error == "TimeoutError: e-invoice service timed out"
    delay = task.available_at - clock.now()
    assert timedelta(seconds=10) <= delay <= timedelta(seconds=20)
    clock.advance(delay)
    await worker.run(stop_when="idle")
    assert calls == [1, 2]
    assert (await only_task(core)).state is OutboxState.DONE


async def test_a_task_is_dead_after_its_last_attempt(core: OrderCore, clock: ManualClock) -> None:
    """After max_attempts failures the task is dead, with the last error kept (masked)."""
    registry = HandlerRegistry()

    @registry.handler("sms.send", max_attempts=2)
    async def handle(task: OutboxTask) -> None:
        raise ConnectionError("gateway refused 13800138000, token=abc123")

    await enqueue(core, "sms.send", "sms:o1")
    worker = core.outbox.worker(registry)
    await worker.run(stop_when="idle")
    clock.advance(timedelta(minutes=5))
    await worker.run(stop_when="idle")
    task = await only_task(core)
    assert (task.state, task.attempts) == (OutboxState.DEAD, 2)
    assert task.last_error == "ConnectionError: gateway refused 138****8000, token=***"
    assert worker.stats.dead == 1


async def test_an_error_the_caller_caused_is_dead_at_once(core: OrderCore) -> None:
    """A business error (an OrderCoreError such as InvalidOrder) is not retried."""
    registry = HandlerRegistry()

    @registry.handler("waybill.print")
    async def handle(task: OutboxTask) -> None:
        raise InvalidOrder([], subject="waybill address")

    await enqueue(core, "waybill.print", "w:o1")
    await core.outbox.worker(registry).run(stop_when="idle")
    task = await only_task(core)
    assert (task.state, task.attempts) == (OutboxState.DEAD, 1)


async def test_dead_tasks_are_redriven_and_run_again(core: OrderCore) -> None:
    """redrive() puts a dead task back; the next run completes it."""
    fail = True
    registry = HandlerRegistry()

    @registry.handler("waybill.print")
    async def handle(task: OutboxTask) -> None:
        if fail:
            raise InvalidOrder([], subject="waybill address")

    await enqueue(core, "waybill.print", "w:o1")
    worker = core.outbox.worker(registry)
    await worker.run(stop_when="idle")
    dead = await core.outbox.list(states=[OutboxState.DEAD])
    fail = False
    assert await core.outbox.redrive([dead[0].id]) == [dead[0].id]
    await worker.run(stop_when="idle")
    assert (await only_task(core)).state is OutboxState.DONE


async def test_steps_of_one_order_run_in_order(core: OrderCore) -> None:
    """Tasks sharing an ordering key run one after another, in enqueue order."""
    order: list[str] = []
    registry = HandlerRegistry()

    @registry.handler("step.run")
    async def handle(task: OutboxTask) -> None:
        await anyio.sleep(0.001 * (3 - int(str(task.payload["n"]))))
        order.append(f"{task.ordering_key}:{task.payload['n']}")

    for n in range(3):
        for order_id in ("o1", "o2"):
            await enqueue(core, "step.run", f"{order_id}-{n}", ordering_key=order_id, n=n)
    await core.outbox.worker(registry, concurrency=8).run(stop_when="drained")
    assert [step for step in order if step.startswith("o1")] == ["o1:0", "o1:1", "o1:2"]
    assert [step for step in order if step.startswith("o2")] == ["o2:0", "o2:1", "o2:2"]


async def test_a_worker_claims_only_the_kinds_it_handles(core: OrderCore) -> None:
    """A task of a kind without a handler here stays pending for another worker."""
    registry = HandlerRegistry()

    @registry.handler("mail.send")
    async def handle(task: OutboxTask) -> None:
        return None

    await enqueue(core, "mail.send", "m")
    await enqueue(core, "erp.push", "e")
    await core.outbox.worker(registry).run(stop_when="idle")
    states = {task.kind: task.state for task in await core.outbox.list()}
    assert states == {"mail.send": OutboxState.DONE, "erp.push": OutboxState.PENDING}


async def test_a_registry_refuses_a_second_handler_for_a_kind() -> None:
    """Registering a kind twice raises InvalidOutboxTask naming the kind."""
    registry = HandlerRegistry()
    registry.register("mail.send", _noop)
    with pytest.raises(InvalidOutboxTask, match=r"'mail\.send'"):
        registry.register("mail.send", _noop)
    with pytest.raises(UnknownTaskKind, match=r"'erp\.push'; registered: mail\.send"):
        registry.get("erp.push")


async def _noop(task: OutboxTask) -> None:
    return None


async def test_a_long_handler_keeps_its_lease(clock: ManualClock) -> None:
    """While a handler outlives the lease, renewals keep other workers from taking it."""
    settings = Settings(
        outbox_lease=timedelta(milliseconds=300), outbox_poll_interval=timedelta(milliseconds=10)
    )
    core = OrderCore(MemoryStorage("memory://", settings), SystemClock(), settings)
    runs: list[str] = []
    registry = HandlerRegistry()

    @registry.handler("slow.job")
    async def handle(task: OutboxTask) -> None:
        runs.append("start")
        await anyio.sleep(1.0)
        runs.append("end")

    await enqueue(core, "slow.job", "s")
    first, second = core.outbox.worker(registry, name="a"), core.outbox.worker(registry, name="b")
    async with anyio.create_task_group() as group:
        group.start_soon(partial(first.run, stop_when="drained"))
        await anyio.sleep(0.1)
        await second.run(stop_when="drained")
    assert runs == ["start", "end"]
    assert (first.stats.done, second.stats.claimed) == (1, 0)


async def test_a_task_taken_over_is_dropped_by_its_old_worker(clock: ManualClock) -> None:
    """When renewal finds the lease taken over, the old handler is cancelled, not completed."""
    settings = Settings(
        outbox_lease=timedelta(seconds=30), outbox_poll_interval=timedelta(milliseconds=10)
    )
    core = OrderCore(MemoryStorage("memory://", settings), clock, settings)
    started = anyio.Event()
    registry = HandlerRegistry()

    @registry.handler("slow.job")
    async def handle(task: OutboxTask) -> None:
        started.set()
        await anyio.sleep_forever()

    await enqueue(core, "slow.job", "s")
    worker = core.outbox.worker(registry, name="old")
    worker.lease = timedelta(milliseconds=60)  # renew every 20 ms of real time
    async with anyio.create_task_group() as group:
        group.start_soon(worker.run)
        await started.wait()
        later = clock.now() + timedelta(days=1)  # past any lease the old worker renews
        async with core.storage.unit_of_work() as uow:
            await uow.outbox.claim("new", limit=1, lease_until=later, now=later)
            await uow.commit()
        for _ in range(500):
            if worker.stats.lost:
                break
            await anyio.sleep(0.01)
        worker.stop()
    task = await only_task(core)
    assert (task.state, task.lease_owner, task.attempts) == (OutboxState.RUNNING, "new", 2)
    assert worker.stats.done == 0


async def test_stop_lets_a_running_handler_finish(core: OrderCore) -> None:
    """stop() stops claiming but the running handler completes its task."""
    release = anyio.Event()
    started = anyio.Event()
    registry = HandlerRegistry()

    @registry.handler("mail.send")
    async def handle(task: OutboxTask) -> None:
        started.set()
        await release.wait()

    await enqueue(core, "mail.send", "a")
    worker = core.outbox.worker(registry)
    async with anyio.create_task_group() as group:
        group.start_soon(worker.run)
        await started.wait()
        await enqueue(core, "mail.send", "b")
        worker.stop()
        release.set()
    states = [task.state for task in await core.outbox.list()]
    assert states == [OutboxState.DONE, OutboxState.PENDING]


async def test_a_handler_past_the_drain_timeout_hands_its_task_back(clock: ManualClock) -> None:
    """A handler still running when the drain timeout ends is cancelled; its task is pending."""
    settings = FAST.model_copy(update={"outbox_drain_timeout": timedelta(milliseconds=50)})
    core = OrderCore(MemoryStorage("memory://", settings), clock, settings)
    started = anyio.Event()
    registry = HandlerRegistry()

    @registry.handler("mail.send")
    async def handle(task: OutboxTask) -> None:
        started.set()
        await anyio.sleep_forever()

    await enqueue(core, "mail.send", "a")
    worker = core.outbox.worker(registry)
    async with anyio.create_task_group() as group:
        group.start_soon(worker.run)
        await started.wait()
        worker.stop()
    task = await only_task(core)
    assert (task.state, task.available_at, task.lease_owner) == (
        OutboxState.PENDING,
        clock.now(),
        None,
    )
    assert worker.stats.released == 1


async def test_a_task_whose_last_lease_ran_out_is_buried(
    core: OrderCore, clock: ManualClock
) -> None:
    """A task claimed again after its final attempt crashed is dead without running."""
    runs: list[int] = []
    registry = HandlerRegistry()

    @registry.handler("mail.send", max_attempts=1)
    async def handle(task: OutboxTask) -> None:
        runs.append(task.attempts)

    await enqueue(core, "mail.send", "a")
    now = clock.now()
    async with core.storage.unit_of_work() as uow:  # a worker that then crashed
        await uow.outbox.claim("crashed", limit=1, lease_until=now + timedelta(seconds=1), now=now)
        await uow.commit()
    clock.advance(timedelta(seconds=1))
    await core.outbox.worker(registry).run(stop_when="idle")
    task = await only_task(core)
    assert (task.state, runs) == (OutboxState.DEAD, [])
    assert task.last_error == "the last attempt never finished (lease ran out)"


async def test_a_storage_outage_while_claiming_does_not_stop_the_worker(
    core: OrderCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed claim is logged and retried at the next poll."""
    registry = HandlerRegistry()
    registry.register("mail.send", _noop)
    await enqueue(core, "mail.send", "a")
    real = core.storage.unit_of_work
    failures = iter([True])

    def flaky() -> object:
        if next(failures, False):
            raise StorageUnavailable("database restarting")
        return real()

    monkeypatch.setattr(core.storage, "unit_of_work", flaky)
    stats = await core.outbox.worker(registry).run(stop_when="drained")
    assert stats.done == 1


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    """Attempt n waits initial * 2**(n-1) plus up to initial of jitter, never past the cap."""
    backoff = Backoff(timedelta(seconds=1), timedelta(seconds=30))
    for attempt, base in ((1, 1), (2, 2), (3, 4), (4, 8)):
        delay = backoff.delay(attempt).total_seconds()
        assert base <= delay <= base + 1
    assert backoff.delay(20).total_seconds() == 30


def test_backoff_honours_a_longer_retry_after_hint() -> None:
    """An error carrying retry_after waits at least that long."""
    error = EventPublishFailed("e1", "throttled")
    error.retry_after = 45  # type: ignore[attr-defined]
    assert Backoff(timedelta(seconds=1), timedelta(seconds=30)).delay(1, error) == timedelta(
        seconds=45
    )


async def test_events_are_relayed_in_order_and_retried(core: OrderCore, clock: ManualClock) -> None:
    """Events enqueued with state changes reach the publisher once each, in order per order."""
    publisher = InMemoryEventPublisher()
    registry = HandlerRegistry()
    registry.register(EVENT_KIND, event_relay(publisher))
    events = [
        StockReserved(
            id=f"e{n}",
            order_id="o1",
            occurred_at=clock.now(),
            reservation_id=f"r{n}",
            lines=(EventLine(sku="A", warehouse="main", quantity=n + 1),),
        )
        for n in range(3)
    ]
    async with core.storage.unit_of_work() as uow:
        for event in events:
            assert await core.outbox.enqueue_event(uow, event)
        await uow.commit()
    publisher.fail_next()
    worker = core.outbox.worker(registry)
    await worker.run(stop_when="idle")
    assert publisher.published == []
    clock.advance(timedelta(minutes=1))
    await worker.run(stop_when="drained")
    assert [envelope.id for envelope in publisher.published] == ["e0", "e1", "e2"]
    assert publisher.published[1] == events[1].envelope()


def test_the_blocking_facade_inspects_the_outbox() -> None:
    """SyncOrderCore.outbox counts and redrives without await."""
    with SyncOrderCore.open("memory://") as core:
        assert core.outbox.counts()[OutboxState.DEAD] == 0
        assert core.outbox.redrive() == []
        assert core.outbox.list() == []
