"""Contract tests that race writers against each other; each ends with verify()."""

from __future__ import annotations

from collections import Counter

import anyio
import pytest

from ordercore.core import OrderCore
from ordercore.domain.inventory import ReservationLine, ReservationStatus
from ordercore.errors import (
    BuyerLimitExceeded,
    InsufficientStock,
    OrderCoreError,
    ReservationStateConflict,
)
from ordercore.ports.clock import ManualClock
from ordercore.testing.storage_base import (
    RESERVING,
    TTL,
    StorageContractBase,
    assert_no_drift,
    stock_of,
)

__all__ = ["ConcurrencyContract", "flash_sale_race"]


async def flash_sale_race(
    core: OrderCore, *, buyers: int, stock: int, sku: str = "FLASH"
) -> Counter[str]:
    """``buyers`` concurrent tasks each reserve one unit of ``stock``; count the outcomes."""
    await core.inventory.receive(sku, stock)
    outcomes: Counter[str] = Counter()

    async def buy(index: int) -> None:
        try:
            await core.inventory.reserve(f"buyer-{index}", {sku: 1}, buyer_id=f"b{index}")
        except InsufficientStock:
            outcomes["rejected"] += 1
        else:
            outcomes["reserved"] += 1

    async with anyio.create_task_group() as group:
        for index in range(buyers):
            group.start_soon(buy, index)
    return outcomes


class ConcurrencyContract(StorageContractBase):
    """Concurrent writers never oversell, never double-count, never deadlock."""

    reservation_modes = RESERVING

    @pytest.mark.anyio
    async def test_ten_thousand_buyers_one_thousand_units(self, core: OrderCore) -> None:
        """10,000 concurrent buyers on 1,000 units: exactly 1,000 succeed, no drift."""
        outcomes = await flash_sale_race(core, buyers=10_000, stock=1_000)
        assert outcomes == Counter(reserved=1_000, rejected=9_000)
        assert await stock_of(core, "FLASH") == (1_000, 1_000)
        assert await core.inventory.sellable("FLASH") == 0
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_concurrent_retries_of_one_order_take_stock_once(self, core: OrderCore) -> None:
        """50 concurrent reserves of the same order make one reservation."""
        await core.inventory.receive("A", 100)
        ids: set[str] = set()

        async def reserve() -> None:
            ids.add((await core.inventory.reserve("o1", {"A": 3})).id)

        async with anyio.create_task_group() as group:
            for _ in range(50):
                group.start_soon(reserve)
        assert len(ids) == 1
        assert await stock_of(core, "A") == (100, 3)
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_release_and_commit_race_has_one_winner(self, core: OrderCore) -> None:
        """Racing release against commit on each order: exactly one of them happens."""
        orders = 60
        await core.inventory.receive("A", orders * 2)
        for index in range(orders):
            await core.inventory.reserve(f"o{index}", {"A": 2})
        losers: Counter[str] = Counter()

        async def attempt(verb: str, order_id: str) -> None:
            try:
                await getattr(core.inventory, verb)(order_id)
            except ReservationStateConflict:
                losers[verb] += 1

        async with anyio.create_task_group() as group:
            for index in range(orders):
                group.start_soon(attempt, "commit", f"o{index}")
                group.start_soon(attempt, "release", f"o{index}")
        assert losers.total() == orders
        statuses = Counter(
            [(await core.inventory.reservation(f"o{i}")).status for i in range(orders)]
        )
        committed = statuses[ReservationStatus.COMMITTED]
        assert committed + statuses[ReservationStatus.RELEASED] == orders
        assert await stock_of(core, "A") == (orders * 2 - committed * 2, 0)
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_concurrent_sweepers_expire_each_reservation_once(
        self, core: OrderCore, clock: ManualClock
    ) -> None:
        """Four sweeps at once expire every due reservation exactly once."""
        await core.inventory.receive("A", 300)
        for index in range(300):
            await core.inventory.reserve(f"o{index}", {"A": 1})
        clock.advance(TTL)
        counts: list[int] = []

        async def sweep() -> None:
            counts.append((await core.inventory.expire()).count)

        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(sweep)
        assert sum(counts) == 300
        assert await stock_of(core, "A") == (300, 0)
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_multi_sku_orders_in_any_line_order_never_deadlock(self, core: OrderCore) -> None:
        """Orders naming A,B and B,A race without deadlock; exactly the stock is sold."""
        await core.inventory.receive("A", 100)
        await core.inventory.receive("B", 100)
        successes: list[str] = []

        async def buy(index: int) -> None:
            lines = [ReservationLine("A", "main", 1), ReservationLine("B", "main", 1)]
            if index % 2:
                lines.reverse()
            try:
                await core.inventory.reserve(f"o{index}", lines)
            except InsufficientStock:
                return
            successes.append(f"o{index}")

        with anyio.fail_after(120):
            async with anyio.create_task_group() as group:
                for index in range(300):
                    group.start_soon(buy, index)
        assert len(successes) == 100
        assert await stock_of(core, "A") == (100, 100)
        assert await stock_of(core, "B") == (100, 100)
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_flash_sale_limits_hold_under_concurrency(self, core: OrderCore) -> None:
        """Concurrent orders respect both the sale cap and every buyer's limit."""
        await core.inventory.receive("A", 1_000)
        await core.inventory.start_flash_sale("A", cap=30, per_buyer_limit=2)
        per_buyer: Counter[str] = Counter()
        refused: Counter[str] = Counter()

        async def buy(buyer: int, attempt: int) -> None:
            try:
                await core.inventory.reserve(f"o{buyer}-{attempt}", {"A": 1}, buyer_id=f"b{buyer}")
            except (InsufficientStock, BuyerLimitExceeded) as exc:
                refused[type(exc).__name__] += 1
            except OrderCoreError:  # pragma: no cover - reported by the assertion below
                refused["other"] += 1
            else:
                per_buyer[f"b{buyer}"] += 1

        async with anyio.create_task_group() as group:
            for buyer in range(20):
                for attempt in range(5):
                    group.start_soon(buy, buyer, attempt)
        assert per_buyer.total() == 30
        assert max(per_buyer.values()) <= 2
        assert refused["other"] == 0
        sale = await core.inventory.flash_sale("A")
        assert sale is not None
        assert sale.sold == 30
        await assert_no_drift(core)
