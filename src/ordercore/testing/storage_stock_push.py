"""The storage contract for stock-push records: the last push per (shop, SKU).

Part of :class:`ordercore.testing.StorageContract`; every storage adapter passes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest

from ordercore.config import Settings
from ordercore.core import OrderCore
from ordercore.domain.stock_push import PushRecord
from ordercore.ports.clock import ManualClock
from ordercore.testing.storage_base import StorageContractBase, StorageFactory

__all__ = ["StockPushContract"]


def _record(
    core: OrderCore, shop: str, sku: str, quantity: int | None, **extra: object
) -> PushRecord:
    now = core.clock.now()
    values: dict[str, object] = {
        "shop": shop,
        "sku": sku,
        "listing": f"{shop}-{sku}",
        "quantity": quantity,
        "pushed_at": now if quantity is not None else None,
        "attempted_at": now,
    }
    values.update(extra)
    return PushRecord.model_validate(values)


async def _save(core: OrderCore, records: Sequence[PushRecord], *, commit: bool = True) -> int:
    async with core.storage.unit_of_work() as uow:
        kept = await uow.stock_push.save_pushes(records)
        if commit:
            await uow.commit()
    return kept


async def _pushes(
    core: OrderCore, shop: str | None = None, skus: Sequence[str] | None = None
) -> list[PushRecord]:
    async with core.storage.unit_of_work() as uow:
        return await uow.stock_push.pushes(shop=shop, skus=skus)


class StockPushContract(StorageContractBase):
    """Stock-push records: upsert per (shop, SKU), newest attempt wins, atomic with the unit."""

    @pytest.fixture
    async def push_core(
        self, make_storage: StorageFactory, clock: ManualClock
    ) -> AsyncIterator[OrderCore]:
        """A core on a fresh storage (the records do not depend on coalescing)."""
        settings = Settings()
        storage = make_storage(settings)
        await storage.open()
        try:
            yield OrderCore(storage, clock, settings)
        finally:
            await storage.close()

    @pytest.mark.anyio
    async def test_records_round_trip_and_filter(self, push_core: OrderCore) -> None:
        """Saved records come back whole, by (shop, sku), filtered by shop and SKUs."""
        core = push_core
        records = [
            _record(core, "tb", "B", 3, listed=False),
            _record(core, "tb", "A", 0, error=None),
            _record(core, "h5", "A", None, error="HTTP 502", pending=4),
        ]
        assert await _save(core, records) == 3
        every = await _pushes(core)
        assert [(r.shop, r.sku) for r in every] == [("h5", "A"), ("tb", "A"), ("tb", "B")]
        assert every[0] == records[2]
        assert every[2] == records[0]
        assert [r.sku for r in await _pushes(core, shop="tb")] == ["A", "B"]
        assert [(r.shop, r.sku) for r in await _pushes(core, skus=["A"])] == [
            ("h5", "A"),
            ("tb", "A"),
        ]
        assert await _pushes(core, shop="tb", skus=[]) == []
        async with core.storage.unit_of_work() as uow:
            locked = await uow.stock_push.pushes(skus=["A"], for_update=True)
            await uow.commit()
        assert [(r.shop, r.pending) for r in locked] == [("h5", 4), ("tb", None)]

    @pytest.mark.anyio
    async def test_a_newer_attempt_replaces_an_older_one_never_the_reverse(
        self, push_core: OrderCore, clock: ManualClock
    ) -> None:
        """A record from an older attempt (a late worker) does not overwrite a newer one."""
        core = push_core
        old = _record(core, "tb", "A", 5)
        clock.advance(timedelta(seconds=2))
        new = _record(core, "tb", "A", 2)
        assert await _save(core, [new]) == 1
        assert await _save(core, [old]) == 0
        assert [r.quantity for r in await _pushes(core)] == [2]
        clock.advance(timedelta(seconds=2))
        failed = new.model_copy(update={"attempted_at": clock.now(), "error": "timeout"})
        assert await _save(core, [failed]) == 1
        (stored,) = await _pushes(core)
        assert (stored.quantity, stored.pushed_at, stored.error) == (2, new.pushed_at, "timeout")

    @pytest.mark.anyio
    async def test_records_roll_back_with_their_unit(self, push_core: OrderCore) -> None:
        """A unit left without commit keeps none of its records."""
        core = push_core
        await _save(core, [_record(core, "tb", "A", 1)], commit=False)
        assert await _pushes(core) == []
