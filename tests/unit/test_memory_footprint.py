"""The memory storage's footprint: an active reservation holds under 1 KB (issue 3).

Measured with tracemalloc as ``benchmarks/flash_sale_compare.py --footprint`` does at
1,000,000 reservations: tracing starts before the core opens, reservations are made in
bulk through the storage's unit of work, and what is still held after a full collection
is divided by their number.
"""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from ordercore import OrderCore

pytestmark = pytest.mark.anyio

COUNT = 20_000
PER_UNIT = 2_000
LIMIT = 1_024


async def test_an_active_reservation_holds_under_one_kilobyte() -> None:
    """20,000 active one-line reservations in the memory storage hold < 1,024 bytes each."""
    tracemalloc.start()
    try:
        async with OrderCore.open("memory://") as core:
            await core.inventory.receive("A", COUNT)
            draft = core.inventory.draft
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            for first in range(0, COUNT, PER_UNIT):
                async with core.storage.unit_of_work() as uow:
                    for i in range(first, first + PER_UNIT):
                        await uow.inventory.reserve(draft(f"o{i}", {"A": 1}))
                    await uow.commit()
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
            level = await core.inventory.stock("A")
    finally:
        tracemalloc.stop()

    per_reservation = held / COUNT
    assert level.reserved == COUNT
    assert per_reservation > 64, "tracemalloc saw no records: the measurement is broken"
    assert per_reservation < LIMIT, f"{per_reservation:,.0f} bytes per active reservation"
