"""The storage contract for the outbox: enqueue, claim under a lease, finish, redrive.

Part of :class:`ordercore.testing.StorageContract`; every storage adapter passes it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import anyio
import pytest

from ordercore.config import Settings
from ordercore.core import OrderCore
from ordercore.domain.outbox import OutboxState, OutboxTask
from ordercore.ports.clock import ManualClock
from ordercore.services.outbox import new_task
from ordercore.testing.storage_base import StorageContractBase, StorageFactory, stock_of

__all__ = ["OutboxContract"]

LEASE = timedelta(seconds=30)


def _task(
    core: OrderCore, key: str, *, kind: str = "test.step", ordering_key: str | None = None
) -> OutboxTask:
    return new_task(
        kind,
        {"order_id": ordering_key or key},
        key=key,
        now=core.clock.now(),
        ordering_key=ordering_key,
    )


async def _enqueue(core: OrderCore, *tasks: OutboxTask) -> list[str]:
    async with core.storage.unit_of_work() as uow:
        stored = await uow.outbox.enqueue(tasks)
        await uow.commit()
    return stored


async def _claim(
    core: OrderCore, owner: str, limit: int = 10, kinds: Sequence[str] | None = None
) -> list[OutboxTask]:
    now = core.clock.now()
    async with core.storage.unit_of_work() as uow:
        claimed = await uow.outbox.claim(
            owner, limit=limit, lease_until=now + LEASE, now=now, kinds=kinds
        )
        await uow.commit()
    return claimed


async def _call(core: OrderCore, method: str, *args: Any, **kwargs: Any) -> Any:
    async with core.storage.unit_of_work() as uow:
        result = await getattr(uow.outbox, method)(*args, **kwargs)
        await uow.commit()
    return result


async def _state(core: OrderCore, task_id: str) -> OutboxTask:
    async with core.storage.unit_of_work() as uow:
        task = await uow.outbox.get(task_id)
    assert task is not None
    return task


class OutboxContract(StorageContractBase):
    """Durable tasks: idempotent enqueue, leased claims, ordering per key, dead letters."""

    @pytest.fixture
    async def outbox_core(
        self, make_storage: StorageFactory, clock: ManualClock
    ) -> AsyncIterator[OrderCore]:
        """A core on a fresh storage (one setting: the outbox does not depend on coalescing)."""
        settings = Settings()
        storage = make_storage(settings)
        await storage.open()
        try:
            yield OrderCore(storage, clock, settings)
        finally:
            await storage.close()

    @pytest.mark.anyio
    async def test_enqueue_is_idempotent_on_key(self, outbox_core: OrderCore) -> None:
        """A second task with a stored key is skipped; one task is kept."""
        core = outbox_core
        assert await _enqueue(core, _task(core, "k1"), _task(core, "k2")) == ["k1", "k2"]
        assert await _enqueue(core, _task(core, "k1"), _task(core, "k3")) == ["k3"]
        tasks = await core.outbox.list()
        assert [task.key for task in tasks] == ["k1", "k2", "k3"]
        assert tasks[0].seq < tasks[1].seq < tasks[2].seq

    @pytest.mark.anyio
    async def test_a_task_commits_or_rolls_back_with_its_unit(self, outbox_core: OrderCore) -> None:
        """A task enqueued with a state change is kept only when the unit commits."""
        core = outbox_core
        now = core.clock.now()
        async with core.storage.unit_of_work() as uow:
            await uow.inventory.receive("A", "main", 5, now, reason="r", reference="")
            await uow.outbox.enqueue([_task(core, "lost")])
        async with core.storage.unit_of_work() as uow:
            await uow.inventory.receive("A", "main", 5, now, reason="r", reference="")
            await uow.outbox.enqueue([_task(core, "kept")])
            await uow.commit()
        assert [task.key for task in await core.outbox.list()] == ["kept"]
        assert await stock_of(core, "A") == (5, 0)

    @pytest.mark.anyio
    async def test_claim_takes_due_tasks_under_a_lease(self, outbox_core: OrderCore) -> None:
        """Claimed tasks are running, owned, leased, one attempt in; later ones wait."""
        core = outbox_core
        clock = core.clock
        assert isinstance(clock, ManualClock)
        later = new_task(
            "test.step", {}, key="later", now=clock.now(), available_at=clock.now() + LEASE / 2
        )
        await _enqueue(core, _task(core, "a"), later, _task(core, "b"))
        claimed = await _claim(core, "w1")
        assert [task.key for task in claimed] == ["a", "b"]
        for task in claimed:
            assert task.state is OutboxState.RUNNING
            assert (task.lease_owner, task.attempts) == ("w1", 1)
            assert task.lease_until == task.available_at == clock.now() + LEASE
        assert await _claim(core, "w2") == []
        clock.advance(LEASE / 2)
        assert [task.key for task in await _claim(core, "w2", kinds=["test.step"])] == ["later"]

    @pytest.mark.anyio
    async def test_claim_respects_limit_and_kinds(self, outbox_core: OrderCore) -> None:
        """A claim takes at most ``limit`` tasks, only of the kinds asked for."""
        core = outbox_core
        await _enqueue(
            core,
            _task(core, "a", kind="mail.send"),
            _task(core, "b", kind="waybill.print"),
            _task(core, "c", kind="waybill.print"),
        )
        first = await _claim(core, "w1", limit=1, kinds=["waybill.print"])
        assert [task.key for task in first] == ["b"]
        assert await _claim(core, "w1", kinds=[]) == []
        assert [task.key for task in await _claim(core, "w1", kinds=["waybill.print"])] == ["c"]
        assert [task.key for task in await _claim(core, "w1")] == ["a"]

    @pytest.mark.anyio
    async def test_tasks_with_one_ordering_key_run_one_after_another(
        self, outbox_core: OrderCore
    ) -> None:
        """A task waits while an earlier task with its ordering key is pending or running."""
        core = outbox_core
        await _enqueue(
            core,
            _task(core, "o1-1", ordering_key="o1"),
            _task(core, "o1-2", ordering_key="o1"),
            _task(core, "o2-1", ordering_key="o2"),
            _task(core, "free"),
        )
        first = await _claim(core, "w1")
        assert [task.key for task in first] == ["o1-1", "o2-1", "free"]
        assert await _claim(core, "w2") == []
        assert await _call(core, "complete", first[0].id, "w1", core.clock.now())
        assert [task.key for task in await _claim(core, "w2")] == ["o1-2"]

    @pytest.mark.anyio
    async def test_a_dead_task_no_longer_holds_back_its_successors(
        self, outbox_core: OrderCore
    ) -> None:
        """Only pending and running tasks block their ordering key; a dead one does not."""
        core = outbox_core
        await _enqueue(
            core, _task(core, "s1", ordering_key="o1"), _task(core, "s2", ordering_key="o1")
        )
        (first,) = await _claim(core, "w1")
        now = core.clock.now()
        assert await _call(core, "fail", first.id, "w1", now, error="boom", retry_at=None)
        assert [task.key for task in await _claim(core, "w1")] == ["s2"]

    @pytest.mark.anyio
    async def test_an_expired_lease_is_taken_over_and_fences_the_old_owner(
        self, outbox_core: OrderCore
    ) -> None:
        """After the lease runs out another owner claims the task; the old one cannot finish it."""
        core = outbox_core
        clock = core.clock
        assert isinstance(clock, ManualClock)
        await _enqueue(
            core, _task(core, "k", ordering_key="o1"), _task(core, "k2", ordering_key="o1")
        )
        (task,) = await _claim(core, "crashed")
        clock.advance(LEASE - timedelta(seconds=1))
        assert await _claim(core, "w2") == []
        clock.advance(timedelta(seconds=1))
        (again,) = await _claim(core, "w2")
        assert (again.id, again.attempts, again.lease_owner) == (task.id, 2, "w2")
        now = clock.now()
        assert not await _call(core, "complete", task.id, "crashed", now)
        assert not await _call(core, "fail", task.id, "crashed", now, error="x", retry_at=now)
        assert await _call(core, "complete", task.id, "w2", now)
        finished = await _state(core, task.id)
        assert (finished.state, finished.finished_at, finished.lease_owner) == (
            OutboxState.DONE,
            now,
            None,
        )

    @pytest.mark.anyio
    async def test_renew_extends_only_the_owners_leases(self, outbox_core: OrderCore) -> None:
        """renew() pushes the lease of tasks the owner holds and reports only those."""
        core = outbox_core
        clock = core.clock
        assert isinstance(clock, ManualClock)
        await _enqueue(core, _task(core, "a"), _task(core, "b"))
        a, b = await _claim(core, "w1")
        clock.advance(LEASE / 2)
        until = clock.now() + LEASE
        held = await _call(core, "renew", [a.id, b.id], "w1", lease_until=until, now=clock.now())
        assert held == {a.id, b.id}
        assert await _call(core, "renew", [a.id], "w2", lease_until=until, now=clock.now()) == set()
        clock.advance(LEASE / 2 + timedelta(seconds=1))
        assert await _claim(core, "w2") == []
        assert (await _state(core, a.id)).lease_until == until

    @pytest.mark.anyio
    async def test_a_failed_attempt_is_retried_when_due(self, outbox_core: OrderCore) -> None:
        """fail(retry_at) makes the task pending again at retry_at, with the error kept."""
        core = outbox_core
        clock = core.clock
        assert isinstance(clock, ManualClock)
        await _enqueue(core, _task(core, "k"))
        (task,) = await _claim(core, "w1")
        retry_at = clock.now() + timedelta(seconds=8)
        now = clock.now()
        assert await _call(core, "fail", task.id, "w1", now, error="Timeout", retry_at=retry_at)
        pending = await _state(core, task.id)
        assert (pending.state, pending.available_at, pending.last_error, pending.lease_owner) == (
            OutboxState.PENDING,
            retry_at,
            "Timeout",
            None,
        )
        assert await _claim(core, "w1") == []
        clock.set(retry_at)
        (again,) = await _claim(core, "w1")
        assert again.attempts == 2

    @pytest.mark.anyio
    async def test_dead_tasks_are_listed_and_redriven(self, outbox_core: OrderCore) -> None:
        """A dead task shows in counts and lists; redrive makes it pending with attempts reset."""
        core = outbox_core
        await _enqueue(core, _task(core, "a"), _task(core, "b"), _task(core, "c"))
        a, b, c = await _claim(core, "w1")
        now = core.clock.now()
        for task in (a, b):
            assert await _call(core, "fail", task.id, "w1", now, error="gave up", retry_at=None)
        assert await _call(core, "complete", c.id, "w1", now)
        counts = await core.outbox.counts()
        assert counts == {
            OutboxState.PENDING: 0,
            OutboxState.RUNNING: 0,
            OutboxState.DONE: 1,
            OutboxState.DEAD: 2,
        }
        dead = await core.outbox.list(states=[OutboxState.DEAD])
        assert [task.key for task in dead] == ["a", "b"]
        assert dead[0].last_error == "gave up"
        assert await core.outbox.redrive([a.id, c.id, "missing"]) == [a.id]
        assert await core.outbox.redrive() == [b.id]
        redriven = await _state(core, a.id)
        assert (redriven.state, redriven.attempts, redriven.finished_at) == (
            OutboxState.PENDING,
            0,
            None,
        )
        assert sorted(task.key for task in await _claim(core, "w2")) == ["a", "b"]

    @pytest.mark.anyio
    async def test_list_filters_by_kind_and_ordering_key(self, outbox_core: OrderCore) -> None:
        """list() narrows by kind and by ordering key, in insertion order, up to limit."""
        core = outbox_core
        await _enqueue(
            core,
            _task(core, "a", kind="mail.send", ordering_key="o1"),
            _task(core, "b", kind="waybill.print", ordering_key="o1"),
            _task(core, "c", kind="waybill.print", ordering_key="o2"),
        )
        by_kind = await core.outbox.list(kind="waybill.print")
        assert [task.key for task in by_kind] == ["b", "c"]
        by_key = await core.outbox.list(ordering_key="o1", limit=1)
        assert [task.key for task in by_key] == ["a"]

    @pytest.mark.anyio
    async def test_purge_deletes_only_old_done_tasks(self, outbox_core: OrderCore) -> None:
        """purge() removes done tasks finished before the cutoff and frees their keys."""
        core = outbox_core
        clock = core.clock
        assert isinstance(clock, ManualClock)
        await _enqueue(core, _task(core, "old"), _task(core, "open"))
        (old, _open) = await _claim(core, "w1")
        assert await _call(core, "complete", old.id, "w1", clock.now())
        clock.advance(timedelta(days=8))
        assert await core.outbox.purge(timedelta(days=7)) == 1
        assert [task.key for task in await core.outbox.list()] == ["open"]
        assert await _enqueue(core, _task(core, "old")) == ["old"]

    @pytest.mark.anyio
    async def test_racing_claimers_never_share_a_task(self, outbox_core: OrderCore) -> None:
        """Eight claimers racing over 300 tasks claim each exactly once, none left."""
        core = outbox_core
        tasks = [_task(core, f"k{index}", ordering_key=f"o{index % 50}") for index in range(300)]
        await _enqueue(core, *tasks)
        claims: Counter[str] = Counter()

        async def claimer(owner: str) -> None:
            while True:
                claimed = await _claim(core, owner, limit=7)
                if not claimed:
                    if not await core.outbox.list(states=[OutboxState.PENDING], limit=1):
                        return
                    await anyio.sleep(0.001)
                    continue
                now = core.clock.now()
                for task in claimed:
                    claims[task.id] += 1
                    assert await _call(core, "complete", task.id, owner, now)

        async with anyio.create_task_group() as group:
            for index in range(8):
                group.start_soon(claimer, f"w{index}")
        assert set(claims.values()) == {1}
        assert len(claims) == 300
        assert (await core.outbox.counts())[OutboxState.DONE] == 300
