"""The fulfilment pipeline from ingest to the waybill task, one process (issue 6).

One round is a sale of 5,000 new paid orders over four channels through the pipeline's
critical path, as the incident replay drives it: ``core.fulfilment.accept`` per channel
window of 500 (store exactly once with the health score and review queue,
``order.ingested`` in the same unit; reserve stock; screen with the exception rules;
``stock.reserved``), then ``core.fulfilment.request_waybill`` on the ready orders
(PAID -> ALLOCATED, the ``waybill.create`` task and ``waybill.requested`` in one unit).
No courier is called: that is the point of the outbox. Each round needs a fresh
storage (the orders must be new), so rounds = 1 per storage; the figure, orders/s and
its ratio to the 2,000 orders/s target, is in ``extra_info``, with the seconds spent
in each step. ``screening=off`` rows show the same path without the rules engine.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from ordercore import ManualClock, OrderCore
from ordercore.domain.outbox import OutboxState
from ordercore.incident import CHANNELS, sale_orders
from ordercore.services.waybills import CREATE_KIND

ORDERS = 5_000
WINDOW = 500
TARGET = 2_000
START = datetime(2026, 12, 31, 20, tzinfo=UTC)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("screening", [True, False], ids=["screening=on", "screening=off"])
async def test_pipeline_ingest_to_waybill_task(
    storage_url: str, screening: bool, benchmark: Any
) -> None:
    """5,000 orders from ingest to their waybill task: orders/s and the share of 2,000/s."""
    orders = sale_orders(ORDERS, at=START, channels=CHANNELS)
    by_channel = {channel: [o for o in orders if o.channel == channel] for channel in CHANNELS}
    async with OrderCore.open(storage_url, clock=ManualClock(START)) as core:
        for sku in range(50):
            await core.inventory.receive(f"SKU-{sku}", ORDERS)
        spent = {"accept": 0.0, "request_waybill": 0.0}
        tasks = 0
        began = time.perf_counter()
        for start in range(0, ORDERS // len(CHANNELS), WINDOW):
            for batch in by_channel.values():
                window = batch[start : start + WINDOW]
                if not window:
                    continue
                step = time.perf_counter()
                accepted = await core.fulfilment.accept(window[0].channel, window, screen=screening)
                middle = time.perf_counter()
                requested = await core.fulfilment.request_waybill(accepted.orders.values())
                spent["accept"] += middle - step
                spent["request_waybill"] += time.perf_counter() - middle
                tasks += len(requested.done)
        elapsed = time.perf_counter() - began
        assert tasks == ORDERS
        pending = await core.outbox.list(
            kind=CREATE_KIND, states=[OutboxState.PENDING], limit=ORDERS + 1
        )
        assert len(pending) == ORDERS
    rate = ORDERS / elapsed
    info = benchmark.extra_info
    info["orders_per_s"] = round(rate)
    info["ratio_to_target"] = round(rate / TARGET, 3)
    info.update({f"{name}_s": round(seconds, 2) for name, seconds in spent.items()})
    benchmark.pedantic(lambda: None, rounds=1)
    kind = storage_url.split(":", 1)[0]
    print(
        f"\n{kind} screening={'on' if screening else 'off'}: {rate:,.0f} orders/s "
        f"({rate / TARGET:.0%} of {TARGET:,}/s; accept {spent['accept']:.2f} s, "
        f"request_waybill {spent['request_waybill']:.2f} s, wall {elapsed:.2f} s)"
    )
