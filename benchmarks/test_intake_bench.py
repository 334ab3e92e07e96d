"""Channel intake: map + dedup + store (+ reserve) of a 10,000-order sync, end to end.

One round is a whole ``core.intake.sync`` of a channel whose platform holds 10,000 new
orders over 8 hours: window planning, paging, dedup, mapping every record to the
canonical order, merging, batched upserts (500 per transaction) with the cursor in the
same transaction, reserving stock for every new order, and the ledger entry. The
platform is the in-memory FakeChannel, so the figure is ordercore's own cost. Each round
runs on a fresh storage (the orders must be new), so rounds = 1 per storage; the figure
is orders per second in ``extra_info``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from ordercore import ManualClock, OrderCore
from ordercore.domain.channels import ChannelLimits
from ordercore.testing.channels import FakeChannel, FakePlatform, fake_order_payload

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
        began = time.perf_counter()
        run = await core.intake.sync(channel, first_sync_from=START)
        elapsed = time.perf_counter() - began
        assert (run.created, run.rejected) == (ORDERS, 0)
        assert sum(level.reserved for level in await core.inventory.levels()) == ORDERS
    benchmark.extra_info["orders_per_s"] = round(ORDERS / elapsed)  # type: ignore[attr-defined]
    benchmark.pedantic(lambda: None, rounds=1)  # type: ignore[attr-defined]
    print(f"\n{storage_url.split(':', 1)[0]}: {ORDERS / elapsed:,.0f} orders/s ({elapsed:.2f} s)")
