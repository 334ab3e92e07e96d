"""Contract tests for the hot-SKU batch primitive and bulk reservation lookups."""

from __future__ import annotations

from collections import Counter

import anyio
import pytest

from ordercore.core import OrderCore
from ordercore.domain.inventory import BatchResult, Reservation
from ordercore.errors import (
    BuyerLimitExceeded,
    InsufficientStock,
    InvalidReservation,
    SaleCapReached,
    UnknownSku,
)
from ordercore.testing.storage_base import RESERVING, StorageContractBase, assert_no_drift, stock_of

__all__ = ["BatchContract"]


async def run_batch(
    core: OrderCore, requests: list[tuple[str, int, str]], sku: str = "A"
) -> BatchResult:
    """Reserve (order_id, quantity, buyer_id) requests for ``sku`` as one batch and commit."""
    drafts = [
        core.inventory.draft(order_id, {sku: quantity}, buyer_id=buyer)
        for order_id, quantity, buyer in requests
    ]
    async with core.storage.unit_of_work() as uow:
        result = await uow.inventory.reserve_batch(drafts)
        await uow.commit()
    return result


def kinds(result: BatchResult) -> list[str]:
    """Each outcome's kind: 'ok' for a reservation, else the error's class name."""
    return [
        "ok" if isinstance(outcome, Reservation) else type(outcome).__name__
        for outcome in result.outcomes
    ]


class BatchContract(StorageContractBase):
    """reserve_batch grants in arrival order, each request all or nothing."""

    reservation_modes = RESERVING

    @pytest.mark.anyio
    async def test_batch_grants_in_order_while_stock_lasts(self, core: OrderCore) -> None:
        """Requests are granted first come first served; a big one that does not fit fails alone."""
        await core.inventory.receive("A", 5)
        result = await run_batch(core, [("o1", 2, ""), ("o2", 4, ""), ("o3", 3, ""), ("o4", 1, "")])
        assert kinds(result) == ["ok", "InsufficientStock", "ok", "InsufficientStock"]
        refused = result.outcomes[1]
        assert isinstance(refused, InsufficientStock)
        assert (refused.requested, refused.available) == (4, 3)
        assert result.sellable == 0
        assert await stock_of(core, "A") == (5, 5)
        assert (await core.inventory.reservation("o3")).quantity == 3
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_batch_is_idempotent_per_order(self, core: OrderCore) -> None:
        """An order reserved before, or twice in one batch, is held once."""
        await core.inventory.receive("A", 10)
        first = await core.inventory.reserve("o1", {"A": 2})
        result = await run_batch(core, [("o1", 2, ""), ("o2", 3, ""), ("o2", 3, "")])
        assert kinds(result) == ["ok", "ok", "ok"]
        assert isinstance(result.outcomes[0], Reservation)
        assert result.outcomes[0].id == first.id
        assert result.outcomes[1] == result.outcomes[2]
        assert await stock_of(core, "A") == (10, 5)
        assert result.sellable == 5
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_batch_on_unknown_sku_takes_nothing(self, core: OrderCore) -> None:
        """Every request of a batch on a SKU without a level gets UnknownSku."""
        result = await run_batch(core, [("o1", 1, ""), ("o2", 1, "")], sku="NOPE")
        assert kinds(result) == ["UnknownSku", "UnknownSku"]
        assert isinstance(result.outcomes[0], UnknownSku)

    @pytest.mark.anyio
    async def test_batch_needs_one_location(self, core: OrderCore) -> None:
        """Drafts of different SKUs, or with several lines, are not one batch."""
        await core.inventory.receive("A", 5)
        await core.inventory.receive("B", 5)
        drafts = [core.inventory.draft("o1", {"A": 1}), core.inventory.draft("o2", {"B": 1})]
        async with core.storage.unit_of_work() as uow:
            with pytest.raises(InvalidReservation, match="drafts"):
                await uow.inventory.reserve_batch(drafts)
            with pytest.raises(InvalidReservation, match="drafts"):
                await uow.inventory.reserve_batch([core.inventory.draft("o3", {"A": 1, "B": 1})])

    @pytest.mark.anyio
    async def test_batch_respects_flash_sale_limits(self, core: OrderCore) -> None:
        """The sale cap and each buyer's limit hold inside one batch."""
        await core.inventory.receive("A", 100)
        await core.inventory.start_flash_sale("A", cap=3, per_buyer_limit=1)
        await core.inventory.reserve("early", {"A": 1}, buyer_id="carol")
        requests = [
            ("o1", 1, "alice"),
            ("o2", 1, "alice"),
            ("o3", 1, "carol"),
            ("o4", 1, ""),
            ("o5", 1, "bob"),
            ("o6", 1, "dave"),
        ]
        result = await run_batch(core, requests)
        assert kinds(result) == [
            "ok",
            "BuyerLimitExceeded",
            "BuyerLimitExceeded",
            "InvalidReservation",
            "ok",
            "SaleCapReached",
        ]
        assert isinstance(result.outcomes[1], BuyerLimitExceeded)
        assert isinstance(result.outcomes[5], SaleCapReached)
        assert result.sellable == 0
        sale = await core.inventory.flash_sale("A")
        assert sale is not None
        assert sale.sold == 3
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_a_rolled_back_batch_leaves_nothing(self, core: OrderCore) -> None:
        """A batch whose unit is not committed holds no stock and no reservation."""
        await core.inventory.receive("A", 5)
        async with core.storage.unit_of_work() as uow:
            await uow.inventory.reserve_batch([core.inventory.draft("o1", {"A": 2})])
        assert await stock_of(core, "A") == (5, 0)
        async with core.storage.unit_of_work() as uow:
            assert await uow.inventory.reservations(["o1"]) == {}

    @pytest.mark.anyio
    async def test_bulk_lookup_returns_only_existing_reservations(self, core: OrderCore) -> None:
        """reservations() finds several orders in one call and skips unknown ones."""
        await core.inventory.receive("A", 5)
        await core.inventory.reserve("o1", {"A": 1})
        await core.inventory.reserve("o2", {"A": 2})
        async with core.storage.unit_of_work() as uow:
            found = await uow.inventory.reservations(["o2", "ghost", "o1"])
        assert sorted(found) == ["o1", "o2"]
        assert found["o2"].quantity == 2

    @pytest.mark.anyio
    async def test_batches_and_single_requests_race_exactly(self, core: OrderCore) -> None:
        """Concurrent batches and per-request reserves on one SKU never oversell."""
        await core.inventory.receive("A", 150)
        outcomes: Counter[str] = Counter()

        async def batch(index: int) -> None:
            requests = [(f"b{index}-{n}", 1, "") for n in range(20)]
            outcomes.update(kinds(await run_batch(core, requests)))

        async def single(index: int) -> None:
            try:
                await core.inventory.reserve(f"s{index}", {"A": 1})
            except InsufficientStock:
                outcomes["InsufficientStock"] += 1
            else:
                outcomes["ok"] += 1

        async with anyio.create_task_group() as group:
            for index in range(10):
                group.start_soon(batch, index)
                group.start_soon(single, index)
                group.start_soon(single, index + 100)
        assert outcomes == Counter(ok=150, InsufficientStock=70)
        assert await stock_of(core, "A") == (150, 150)
        await assert_no_drift(core)
