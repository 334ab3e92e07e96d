"""PostgreSQL under real concurrency: several pools and several OS processes on one database."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from ordercore.config import Settings
from ordercore.domain.inventory import Reservation, ReservationLine, ReservationStatus
from ordercore_adapters.storage.sql import SqlStorage
from support.sql_workers import reserve_one_each

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=30)


@pytest.fixture
async def two_storages(postgres_url: str) -> AsyncIterator[tuple[SqlStorage, SqlStorage]]:
    """Two independently pooled storages on one fresh database, like two processes."""
    first = SqlStorage(postgres_url, Settings(sql_pool_size=4))
    second = SqlStorage(postgres_url, Settings(sql_pool_size=4))
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def stock_and_reserve(storage: SqlStorage, plan: list[tuple[str, str]]) -> None:
    """Receive enough stock and reserve 1 unit per (order_id, sku), order i at T0 + i s."""
    skus = {sku for _, sku in plan}
    async with storage.unit_of_work() as uow:
        for sku in sorted(skus):
            count = sum(1 for _, s in plan if s == sku)
            await uow.inventory.receive(sku, "main", count, T0, reason="receipt", reference="")
        for index, (order_id, sku) in enumerate(plan):
            at = T0 + timedelta(seconds=index)
            await uow.inventory.reserve(
                Reservation(
                    id=f"r-{order_id}",
                    order_id=order_id,
                    lines=(ReservationLine(sku, "main", 1),),
                    status=ReservationStatus.ACTIVE,
                    created_at=at,
                    updated_at=at,
                    expires_at=at + TTL,
                )
            )
        await uow.commit()


async def test_sweepers_skip_each_others_claims(
    two_storages: tuple[SqlStorage, SqlStorage],
) -> None:
    """A second sweeper does not wait for the first's claimed rows: it takes the next batch."""
    first, second = two_storages
    plan = [(f"x{i:03}", "X") for i in range(50)] + [(f"y{i:03}", "Y") for i in range(50)]
    await stock_and_reserve(first, plan)
    now = T0 + TTL + timedelta(hours=1)
    async with first.unit_of_work() as held:
        claimed_first = await held.inventory.expire_due(now, 50)
        async with second.unit_of_work() as other:
            with anyio.fail_after(10):
                claimed_second = await other.inventory.expire_due(now, 50)
            await other.commit()
        await held.commit()
    assert {r.order_id for r in claimed_first} == {f"x{i:03}" for i in range(50)}
    assert {r.order_id for r in claimed_second} == {f"y{i:03}" for i in range(50)}
    async with first.unit_of_work() as uow:
        levels = await uow.inventory.stock_levels()
        assert await uow.inventory.verify() == []
    assert [(level.sku, level.reserved) for level in levels] == [("X", 0), ("Y", 0)]


async def test_concurrent_sweepers_expire_each_reservation_once(
    two_storages: tuple[SqlStorage, SqlStorage],
) -> None:
    """Sweepers in two pools, small batches, racing: 300 expiries, each once, counters exact."""
    plan = [(f"o{i:03}", "A") for i in range(300)]
    await stock_and_reserve(two_storages[0], plan)
    now = T0 + TTL + timedelta(hours=1)
    expired: list[str] = []

    async def sweep(storage: SqlStorage) -> None:
        while True:
            async with storage.unit_of_work() as uow:
                batch = await uow.inventory.expire_due(now, 7)
                await uow.commit()
            expired.extend(r.order_id for r in batch)
            if not batch:
                return

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            for storage in two_storages * 2:
                group.start_soon(sweep, storage)
    assert sorted(expired) == sorted(order_id for order_id, _ in plan)
    async with two_storages[1].unit_of_work() as uow:
        [level] = await uow.inventory.stock_levels("A")
        assert (level.on_hand, level.reserved) == (300, 0)
        assert await uow.inventory.verify() == []


def test_four_processes_never_oversell(postgres_url: str) -> None:
    """4 OS processes, 1,000 one-unit orders on 250 units: exactly 250 succeed, no drift."""

    async def setup() -> None:
        storage = SqlStorage(postgres_url, Settings())
        await storage.open()
        try:
            async with storage.unit_of_work() as uow:
                await uow.inventory.receive("HOT", "main", 250, T0, reason="r", reference="")
                await uow.commit()
        finally:
            await storage.close()

    async def check() -> tuple[tuple[int, int], list[object]]:
        storage = SqlStorage(postgres_url, Settings())
        await storage.open()
        try:
            async with storage.unit_of_work() as uow:
                [level] = await uow.inventory.stock_levels("HOT")
                return (level.on_hand, level.reserved), list(await uow.inventory.verify())
        finally:
            await storage.close()

    anyio.run(setup)
    start_at = time.time() + 4
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=4, mp_context=context) as pool:
        futures = [
            pool.submit(
                reserve_one_each,
                postgres_url,
                "HOT",
                [f"p{worker}-o{i}" for i in range(250)],
                start_at,
            )
            for worker in range(4)
        ]
        successes = [future.result(timeout=300) for future in futures]
    assert sum(successes) == 250
    assert anyio.run(check) == ((250, 250), [])
