"""The reservation hot path through the public API, on every built-in storage.

``nox -s bench`` (or ``pytest benchmarks --benchmark-only``); results in docs/performance.md.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import anyio
import pytest

if TYPE_CHECKING:
    from pytest_benchmark.fixture import BenchmarkFixture

    from conftest import Bench
    from ordercore import SyncOrderCore

SKU = "BENCH-SKU"
CONCURRENT = 1_000
CONCURRENT_ROUNDS = 5


@pytest.mark.benchmark(group="reserve+release of 1 order (1 SKU, 1 unit), async API")
def test_reserve_and_release_one_order(benchmark: BenchmarkFixture, bench: Bench) -> None:
    """Reserving one unit for an order and releasing it leaves stock as it was."""
    inventory = bench.core.inventory
    bench.run(inventory.receive, SKU, 10)
    ids = (f"order-{n}" for n in itertools.count())

    async def one_order() -> None:
        order_id = next(ids)
        await inventory.reserve(order_id, {SKU: 1})
        await inventory.release(order_id)

    benchmark(bench.run, one_order)

    assert bench.run(inventory.sellable, SKU) == 10
    assert bench.run(inventory.verify) == []


@pytest.mark.benchmark(group="reserve+release of 1 order (1 SKU, 1 unit), SyncOrderCore")
def test_reserve_and_release_through_the_sync_facade(
    benchmark: BenchmarkFixture, sync_core: SyncOrderCore
) -> None:
    """Reserving and releasing through SyncOrderCore leaves stock as it was."""
    inventory = sync_core.inventory
    inventory.receive(SKU, 10)
    ids = (f"order-{n}" for n in itertools.count())

    def one_order() -> None:
        order_id = next(ids)
        inventory.reserve(order_id, {SKU: 1})
        inventory.release(order_id)

    benchmark(one_order)

    assert inventory.sellable(SKU) == 10
    assert inventory.verify() == []


@pytest.mark.benchmark(group=f"{CONCURRENT} concurrent reserves of one hot SKU")
def test_concurrent_reserves_of_a_hot_sku(benchmark: BenchmarkFixture, bench: Bench) -> None:
    """1,000 concurrent reserves of one SKU each get their unit and none oversells."""
    inventory = bench.core.inventory
    stocked = 0

    async def reserve_all(order_ids: list[str]) -> None:
        async with anyio.create_task_group() as group:
            for order_id in order_ids:
                group.start_soon(inventory.reserve, order_id, {SKU: 1})

    def fresh_round() -> tuple[tuple[object, ...], dict[str, object]]:
        nonlocal stocked
        bench.run(inventory.receive, SKU, CONCURRENT)
        order_ids = [f"{stocked}-order-{n}" for n in range(CONCURRENT)]
        stocked += CONCURRENT
        return (reserve_all, order_ids), {}

    benchmark.pedantic(bench.run, setup=fresh_round, rounds=CONCURRENT_ROUNDS)

    stats = benchmark.stats
    if stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["reservations_per_s"] = round(CONCURRENT / stats.stats.median)
    level = bench.run(inventory.stock, SKU)
    assert level.reserved == level.on_hand == stocked
    assert bench.run(inventory.verify) == []
