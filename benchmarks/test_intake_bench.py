"""Channel intake: map + dedup + store (+ reserve) of a 10,000-order sync, end to end.

One round is a whole ``core.intake.sync`` of a channel whose platform holds 10,000 new
orders over 8 hours: window planning, paging, dedup, mapping every record to the
canonical order, merging, batched upserts (500 per transaction) with the cursor in the
same transaction, reserving stock for every new order (together, when the run ends), and
the ledger entry. The platform is the in-memory FakeChannel, so the figure is
ordercore's own cost. Each round runs on a fresh storage (the orders must be new), so
rounds = 1 per storage; the figures are orders per second and the process CPU seconds
(all threads; steadier than wall time on a shared machine) in ``extra_info``.

The per-order steps that run on the event loop have their own benchmarks (many rounds,
so pytest-benchmark's statistics apply): mapping one platform record to the canonical
order, and scoring its health.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from ordercore import ManualClock, OrderCore
from ordercore.domain.channels import ChannelLimits, RawRecord
from ordercore.domain.health import HealthPolicy, score_order
from ordercore.testing.channels import (
    FAKE_MAPPING,
    FakeChannel,
    FakePlatform,
    fake_order_payload,
)

if TYPE_CHECKING:
    from pytest_benchmark.fixture import BenchmarkFixture

ORDERS = 10_000
START = datetime(2026, 11, 11, tzinfo=UTC)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_sync_of_ten_thousand_orders(
    storage_url: str, benchmark: pytest.FixtureRequest
) -> None:
    """10,000 new orders through one sync run: stored once each, reserved, figure in extra_info."""
    clock = ManualClock(START)
    platform = FakePlatform(clock)
    for index in range(ORDERS):
        payload = fake_order_payload(f"N{index}", sku=f"SKU-{index % 50}")
        payload["phone"] = f"139{index:08d}"  # every order its own phone, as in real data
        platform.put(payload, at=START + timedelta(hours=8) * index / ORDERS)
    channel = FakeChannel(
        "bench-shop",
        platform,
        limits=ChannelLimits(max_window=timedelta(hours=1), page_size=100),
    )
    clock.set(START + timedelta(hours=9))
    async with OrderCore.open(storage_url, clock=clock) as core:
        for sku in range(50):
            await core.inventory.receive(f"SKU-{sku}", ORDERS)
        began, cpu_began = time.perf_counter(), time.process_time()
        run = await core.intake.sync(channel, first_sync_from=START)
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu_began
        assert (run.created, run.rejected) == (ORDERS, 0)
        assert sum(level.reserved for level in await core.inventory.levels()) == ORDERS
    benchmark.extra_info["orders_per_s"] = round(ORDERS / elapsed)  # type: ignore[attr-defined]
    benchmark.extra_info["cpu_s"] = round(cpu, 2)  # type: ignore[attr-defined]
    benchmark.pedantic(lambda: None, rounds=1)  # type: ignore[attr-defined]
    name = storage_url.split(":", 1)[0]
    print(f"\n{name}: {ORDERS / elapsed:,.0f} orders/s ({elapsed:.2f} s, CPU {cpu:.2f} s)")


def _record(index: int) -> RawRecord:
    payload = fake_order_payload(f"N{index}", sku=f"SKU-{index % 50}")
    payload["phone"] = f"139{index:08d}"
    return RawRecord(
        channel="bench-shop", external_id=f"N{index}", modified_at=START, payload=payload
    )


@pytest.mark.benchmark(group="intake: one order's Python steps")
def test_map_one_order(benchmark: BenchmarkFixture) -> None:
    """Mapping one fake-platform record (8 fields, 1 line) to a validated Order."""
    record = _record(7)
    mapped = benchmark(FAKE_MAPPING.map, record)
    assert mapped.order.receiver.phone == "13900000007"


@pytest.mark.benchmark(group="intake: one order's Python steps")
def test_score_one_order(benchmark: BenchmarkFixture) -> None:
    """Scoring one mapped order's health (phone, address, timeliness) as the intake does."""
    order = FAKE_MAPPING.map(_record(7)).order
    policy = HealthPolicy()
    ingested = START + timedelta(hours=9)
    health = benchmark(lambda: score_order(order, ingested_at=ingested, policy=policy))
    assert not any("phone" in reason for reason in health.reasons)
