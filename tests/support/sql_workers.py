"""Process entry points for multi-process SQL storage tests (importable under ``spawn``)."""

from __future__ import annotations

import time

import anyio

from ordercore.config import Settings
from ordercore.core import OrderCore
from ordercore.errors import InsufficientStock
from ordercore.ports.clock import SystemClock
from ordercore_adapters.storage.sql import SqlStorage

__all__ = ["open_and_close", "reserve_one_each"]


def open_and_close(url: str, start_at: float) -> str:
    """Open (and so migrate) a storage at ``start_at`` (time.time()), close it; return its name."""

    async def run() -> str:
        await anyio.sleep(max(0.0, start_at - time.time()))
        storage = SqlStorage(url, Settings(sql_pool_size=2))
        await storage.open()
        await storage.close()
        return storage.name

    return anyio.run(run)


def reserve_one_each(url: str, sku: str, order_ids: list[str], start_at: float) -> int:
    """Reserve 1 unit of ``sku`` per order id, all concurrently; return how many succeeded."""

    async def run() -> int:
        storage = SqlStorage(url, Settings(sql_pool_size=8))
        await storage.open()
        core = OrderCore(storage, SystemClock(), Settings())
        successes = 0

        async def buy(order_id: str) -> None:
            nonlocal successes
            try:
                await core.inventory.reserve(order_id, {sku: 1}, buyer_id=order_id)
            except InsufficientStock:
                return
            successes += 1

        try:
            await anyio.sleep(max(0.0, start_at - time.time()))
            async with anyio.create_task_group() as group:
                for order_id in order_ids:
                    group.start_soon(buy, order_id)
        finally:
            await storage.close()
        return successes

    return anyio.run(run)
