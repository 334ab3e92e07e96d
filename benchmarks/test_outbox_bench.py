"""The outbox: one worker (8 handlers at once) drains 2,000 no-op tasks, per storage.

One round enqueues 2,000 tasks in one unit of work, then runs one in-process worker
until nothing is pending or running: a claim, a lease and a completion per task, the
completions of handlers that finish together written in one transaction (group commit).
Rounds = 1 per storage (the tasks must be new); tasks per second are in ``extra_info``,
with the enqueue rate beside them. Compare the storages within one run only.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from ordercore import OrderCore, Settings
from ordercore.domain.outbox import OutboxState, OutboxTask
from ordercore.services.outbox import HandlerRegistry, new_task

TASKS = 2_000


async def _noop(task: OutboxTask) -> None:
    return None


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_one_worker_drains_two_thousand_tasks(
    storage_url: str, benchmark: pytest.FixtureRequest
) -> None:
    """2,000 tasks through one worker: all done, figures in extra_info."""
    settings = Settings(outbox_poll_interval=timedelta(milliseconds=20))
    registry = HandlerRegistry()
    registry.register("bench.noop", _noop)
    async with OrderCore.open(storage_url, settings=settings) as core:
        now = core.clock.now()
        tasks = [
            new_task("bench.noop", {"n": n}, key=f"k{n}", now=now, ordering_key=f"o{n % 500}")
            for n in range(TASKS)
        ]
        started = time.perf_counter()
        async with core.storage.unit_of_work() as uow:
            await uow.outbox.enqueue(tasks)
            await uow.commit()
        enqueued = time.perf_counter()
        stats = await core.outbox.worker(registry, concurrency=8).run(stop_when="drained")
        drained = time.perf_counter()
        counts = await core.outbox.counts()
    assert stats.done == TASKS
    assert counts[OutboxState.DONE] == TASKS
    benchmark.extra_info["enqueued_per_s"] = round(TASKS / (enqueued - started))  # type: ignore[attr-defined]
    benchmark.extra_info["tasks_per_s"] = round(TASKS / (drained - enqueued))  # type: ignore[attr-defined]
    benchmark.pedantic(lambda: None, rounds=1)  # type: ignore[attr-defined]
