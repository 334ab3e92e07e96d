"""What an active reservation costs the memory storage, measured with tracemalloc.

Stock is received, then ``count`` reservations are made through the storage's unit of
work in bulk (``per_unit`` per unit), and the traced memory that is still held after a
full collection is divided by ``count``. Tracing starts before the core opens, so a
container that grows (the reservation dict, the expiry heap) is charged in full.
"""

from __future__ import annotations

import gc
import tracemalloc
from dataclasses import dataclass

from ordercore import OrderCore

__all__ = ["Footprint", "measure_footprint"]


@dataclass(frozen=True, slots=True)
class Footprint:
    """Bytes held per active reservation of the memory storage."""

    count: int
    held_bytes: int
    bytes_per_reservation: float
    seconds: float


async def measure_footprint(count: int, per_unit: int = 2_000) -> Footprint:
    """Make ``count`` active reservations on a fresh memory core; what each one holds."""
    import time

    tracemalloc.start()
    try:
        async with OrderCore.open("memory://") as core:
            await core.inventory.receive("A", count)
            draft = core.inventory.draft
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            started = time.perf_counter()
            for first in range(0, count, per_unit):
                async with core.storage.unit_of_work() as uow:
                    for i in range(first, min(first + per_unit, count)):
                        await uow.inventory.reserve(draft(f"o{i}", {"A": 1}))
                    await uow.commit()
            seconds = time.perf_counter() - started
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
            level = await core.inventory.stock("A")
            if level.reserved != count:
                raise AssertionError(f"{level.reserved} units reserved, expected {count}")
    finally:
        tracemalloc.stop()
    return Footprint(count, held, held / count, seconds)
