"""The storage contract for after-sales: exactly-once upsert, linking, hand-over, inspection.

Part of :class:`ordercore.testing.StorageContract`; every storage adapter passes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import anyio
import pytest

from ordercore.config import Settings
from ordercore.core import OrderCore
from ordercore.domain.after_sales import (
    AfterSale,
    AfterSaleKind,
    AfterSaleLine,
    AfterSaleStatus,
    InspectionLine,
    after_sale_id,
)
from ordercore.domain.intake import UpsertOutcome
from ordercore.domain.orders import Money, OrderStatus
from ordercore.errors import AfterSaleNotFound, InspectionConflict, InvalidInput
from ordercore.ports.clock import ManualClock
from ordercore.testing.after_sales_channel import FakeAfterSalesChannel, fake_after_sale_payload
from ordercore.testing.channels import FakePlatform, fake_order_payload
from ordercore.testing.storage_base import StorageContractBase, StorageFactory, stock_of

__all__ = ["AfterSaleContract", "sample_after_sale"]


def sample_after_sale(
    external_id: str,
    modified: datetime,
    *,
    channel: str = "shop",
    order_external_id: str = "T1",
    kind: AfterSaleKind = AfterSaleKind.RETURN_REFUND,
    status: AfterSaleStatus = AfterSaleStatus.RECEIVED,
    lines: Sequence[tuple[str, int]] = (("A", 3),),
    **extra: Any,
) -> AfterSale:
    """A request as an adapter maps it (unlinked, version 0)."""
    values: dict[str, Any] = {
        "id": after_sale_id(channel, external_id),
        "channel": channel,
        "external_id": external_id,
        "order_external_id": order_external_id,
        "kind": kind,
        "status": status,
        "platform_status": "FAKE",
        "lines": tuple(AfterSaleLine(sku=sku, quantity=qty) for sku, qty in lines),
        "refund": Money(amount=Decimal("59.00")),
        "reason": "size does not fit",
        "created_at": modified - timedelta(hours=1),
        "source_modified_at": modified,
        "updated_at": modified,
    }
    values.update(extra)
    return AfterSale.model_validate(values)


async def _upsert(core: OrderCore, *items: AfterSale, commit: bool = True) -> list[UpsertOutcome]:
    async with core.storage.unit_of_work() as uow:
        outcomes = await uow.after_sales.upsert_many(items)
        if commit:
            await uow.commit()
    return outcomes


async def _get(core: OrderCore, item_id: str) -> AfterSale | None:
    async with core.storage.unit_of_work() as uow:
        return await uow.after_sales.get(item_id)


class AfterSaleContract(StorageContractBase):
    """After-sales: newest version wins once per key, links once, inspections restock once."""

    @pytest.fixture
    async def as_core(
        self, make_storage: StorageFactory, clock: ManualClock
    ) -> AsyncIterator[OrderCore]:
        """A core on a fresh storage (after-sales do not depend on coalescing)."""
        settings = Settings()
        storage = make_storage(settings)
        await storage.open()
        try:
            yield OrderCore(storage, clock, settings)
        finally:
            await storage.close()

    @pytest.mark.anyio
    async def test_upsert_reports_created_unchanged_updated_and_stale(
        self, as_core: OrderCore
    ) -> None:
        """A new key is created, the same version unchanged, a newer one updated, an older stale."""
        t0 = as_core.clock.now()
        first = sample_after_sale("R1", t0)
        newer = sample_after_sale("R1", t0 + timedelta(minutes=5), status=AfterSaleStatus.REFUNDED)
        older = sample_after_sale("R1", t0 - timedelta(minutes=5), status=AfterSaleStatus.CLOSED)
        assert await _upsert(as_core, first) == [UpsertOutcome.CREATED]
        assert await _upsert(as_core, first) == [UpsertOutcome.UNCHANGED]
        assert await _upsert(as_core, newer, older) == [UpsertOutcome.UPDATED, UpsertOutcome.STALE]
        stored = await _get(as_core, first.id)
        assert stored is not None
        assert (stored.status, stored.version) == (AfterSaleStatus.REFUNDED, 2)
        assert stored.source_modified_at == newer.source_modified_at
        assert stored.lines == first.lines
        assert stored.refund == first.refund

    @pytest.mark.anyio
    async def test_a_newer_version_keeps_the_link_and_first_seen_time(
        self, as_core: OrderCore
    ) -> None:
        """Replacing a linked request keeps its order_id and created_at."""
        t0 = as_core.clock.now()
        await _upsert(as_core, sample_after_sale("R1", t0, order_id="o-1"))
        later = sample_after_sale("R1", t0 + timedelta(minutes=1), created_at=t0)
        await _upsert(as_core, later)
        stored = await _get(as_core, later.id)
        assert stored is not None
        assert stored.order_id == "o-1"
        assert stored.created_at == t0 - timedelta(hours=1)

    @pytest.mark.anyio
    async def test_an_uncommitted_upsert_leaves_nothing(self, as_core: OrderCore) -> None:
        """Leaving the unit without commit rolls the upsert back."""
        item = sample_after_sale("R1", as_core.clock.now())
        await _upsert(as_core, item, commit=False)
        assert await _get(as_core, item.id) is None

    @pytest.mark.anyio
    async def test_get_many_by_external_returns_only_that_channels_keys(
        self, as_core: OrderCore
    ) -> None:
        """Lookup by external id is per channel."""
        now = as_core.clock.now()
        await _upsert(
            as_core, sample_after_sale("R1", now), sample_after_sale("R1", now, channel="b")
        )
        async with as_core.storage.unit_of_work() as uow:
            found = await uow.after_sales.get_many_by_external("shop", ["R1", "R9"])
        assert list(found) == ["R1"]
        assert found["R1"].channel == "shop"

    @pytest.mark.anyio
    async def test_link_sets_the_order_once_on_unlinked_requests(self, as_core: OrderCore) -> None:
        """link() links a platform order's unlinked requests and nothing else, once."""
        now = as_core.clock.now()
        await _upsert(
            as_core,
            sample_after_sale("R1", now, order_external_id="T1"),
            sample_after_sale("R2", now, order_external_id="T1"),
            sample_after_sale("R3", now, order_external_id="T2"),
            sample_after_sale("R4", now, order_external_id="T1", order_id="elsewhere"),
        )
        async with as_core.storage.unit_of_work() as uow:
            first = await uow.after_sales.link("shop", "T1", "o-1")
            again = await uow.after_sales.link("shop", "T1", "o-2")
            await uow.commit()
        assert (first, again) == (2, 0)
        async with as_core.storage.unit_of_work() as uow:
            linked = await uow.after_sales.list(order_id="o-1")
            unlinked = await uow.after_sales.list(unlinked_only=True)
        assert sorted(item.external_id for item in linked) == ["R1", "R2"]
        assert [item.external_id for item in unlinked] == ["R3"]

    @pytest.mark.anyio
    async def test_list_is_newest_platform_change_first_and_filters(
        self, as_core: OrderCore
    ) -> None:
        """list() orders by platform modification time, newest first, and filters by status."""
        now = as_core.clock.now()
        await _upsert(
            as_core,
            sample_after_sale("R1", now),
            sample_after_sale("R2", now + timedelta(seconds=1), status=AfterSaleStatus.CLOSED),
            sample_after_sale("R3", now - timedelta(seconds=1), channel="b"),
        )
        async with as_core.storage.unit_of_work() as uow:
            everything = await uow.after_sales.list()
            closed = await uow.after_sales.list(status=AfterSaleStatus.CLOSED)
            of_b = await uow.after_sales.list(channel="b", limit=5)
            first = await uow.after_sales.list(limit=1)
        assert [item.external_id for item in everything] == ["R2", "R1", "R3"]
        assert [item.external_id for item in closed] == ["R2"]
        assert [item.external_id for item in of_b] == ["R3"]
        assert [item.external_id for item in first] == ["R2"]

    @pytest.mark.anyio
    async def test_handover_is_claimed_once_and_survives_a_newer_version(
        self, as_core: OrderCore
    ) -> None:
        """claim_handover() wins once; a newer platform version keeps handed_over_at."""
        now = as_core.clock.now()
        item = sample_after_sale("R1", now, kind=AfterSaleKind.REFUND_ONLY)
        await _upsert(as_core, item)
        async with as_core.storage.unit_of_work() as uow:
            first = await uow.after_sales.claim_handover(item.id, now)
            again = await uow.after_sales.claim_handover(item.id, now)
            unknown = await uow.after_sales.claim_handover("shop:nope", now)
            await uow.commit()
        assert (first, again, unknown) == (True, False, False)
        await _upsert(as_core, sample_after_sale("R1", now + timedelta(minutes=1)))
        stored = await _get(as_core, item.id)
        assert stored is not None
        assert stored.handed_over_at == now

    @pytest.mark.anyio
    async def test_inspection_restocks_sellable_defective_and_scrap(
        self, as_core: OrderCore
    ) -> None:
        """Sellable units return to stock, defective go unsellable to DEFECTIVE, scrap nowhere."""
        await as_core.inventory.receive("A", 10)
        item = sample_after_sale("R1", as_core.clock.now(), lines=[("A", 6)])
        await _upsert(as_core, item)
        report = await as_core.after_sales.inspect(
            item.id, [InspectionLine(sku="A", sellable=3, defective=2, scrap=1)], "wh-ann"
        )
        assert report.created
        assert report.inspection.totals() == (3, 2, 1)
        assert await stock_of(as_core, "A") == (13, 0)
        defective = await as_core.inventory.stock("A", "DEFECTIVE")
        assert (defective.on_hand, defective.sellable) == (2, 0)
        stored = await as_core.after_sales.inspection(item.id)
        assert stored is not None
        assert stored.inspected_by == "wh-ann"

    @pytest.mark.anyio
    async def test_inspecting_again_changes_nothing(self, as_core: OrderCore) -> None:
        """The same inspection twice restocks once; other grades raise InspectionConflict."""
        item = sample_after_sale("R1", as_core.clock.now(), lines=[("A", 2)])
        await _upsert(as_core, item)
        grades = [InspectionLine(sku="A", sellable=2)]
        await as_core.after_sales.inspect(item.id, grades, "ann")
        again = await as_core.after_sales.inspect(item.id, grades, "bob")
        assert not again.created
        assert again.inspection.inspected_by == "ann"
        with pytest.raises(InspectionConflict, match="'ann'"):
            await as_core.after_sales.inspect(item.id, [InspectionLine(sku="A", scrap=2)], "bob")
        assert await stock_of(as_core, "A") == (2, 0)

    @pytest.mark.anyio
    async def test_racing_inspections_restock_once(self, as_core: OrderCore) -> None:
        """Two workers inspecting one return at once restock it once."""
        item = sample_after_sale("R1", as_core.clock.now(), lines=[("A", 4)])
        await _upsert(as_core, item)
        grades = [InspectionLine(sku="A", sellable=3, defective=1)]
        created: list[bool] = []

        async def inspect(by: str) -> None:
            report = await as_core.after_sales.inspect(item.id, grades, by)
            created.append(report.created)

        async with anyio.create_task_group() as group:
            for by in ("ann", "bob", "cid"):
                group.start_soon(inspect, by)
        assert sorted(created) == [False, False, True]
        assert await stock_of(as_core, "A") == (3, 0)
        assert (await as_core.inventory.stock("A", "DEFECTIVE")).on_hand == 1

    @pytest.mark.anyio
    async def test_inspection_is_refused_when_it_does_not_fit_the_request(
        self, as_core: OrderCore
    ) -> None:
        """Too many units, a SKU not returned, or a refund-only request raise InvalidInput."""
        now = as_core.clock.now()
        item = sample_after_sale("R1", now, lines=[("A", 1)])
        refund = sample_after_sale("R2", now, kind=AfterSaleKind.REFUND_ONLY)
        await _upsert(as_core, item, refund)
        with pytest.raises(InvalidInput, match="more units"):
            await as_core.after_sales.inspect(item.id, [InspectionLine(sku="A", sellable=2)], "x")
        with pytest.raises(InvalidInput, match="not on the request"):
            await as_core.after_sales.inspect(item.id, [InspectionLine(sku="B", sellable=1)], "x")
        with pytest.raises(InvalidInput, match="kind"):
            await as_core.after_sales.inspect(refund.id, [InspectionLine(sku="A", scrap=1)], "x")
        with pytest.raises(AfterSaleNotFound):
            await as_core.after_sales.inspect("shop:nope", [InspectionLine(sku="A", scrap=1)], "x")
        assert await as_core.after_sales.inspection(item.id) is None
        assert [level.sku for level in await as_core.inventory.levels()] == []

    @pytest.mark.anyio
    async def test_a_sync_links_stores_once_and_intercepts_an_agreed_refund(
        self, as_core: OrderCore
    ) -> None:
        """Over the storage: a re-polled feed is stored once, linked, and its refund intercepted."""
        clock = as_core.clock
        assert isinstance(clock, ManualClock)
        platform = FakePlatform(clock)
        channel = FakeAfterSalesChannel("shop", platform)
        start = clock.now()
        await as_core.inventory.receive("SKU-1", 10)
        platform.put(fake_order_payload("T1", status="PAID", qty=2), at=start)
        channel.put_after_sale(
            fake_after_sale_payload("R1", "T1", kind="REFUND", status="AGREED", qty=2), at=start
        )
        channel.put_after_sale(fake_after_sale_payload("R2", "T2"), at=start)
        clock.advance(timedelta(minutes=5))
        await as_core.intake.sync(channel, first_sync_from=start)
        first = await as_core.after_sales.sync(channel, first_sync_from=start)
        clock.advance(timedelta(minutes=1))
        again = await as_core.after_sales.sync(channel)
        assert (first.created, again.created, again.updated) == (2, 0, 0)
        order = await as_core.orders.find("shop", "T1")
        assert order is not None
        assert order.status is OrderStatus.CANCELLED
        assert await as_core.inventory.sellable("SKU-1") == 10
        refund = await as_core.after_sales.get("shop:R1")
        assert refund.order_id == order.id
        assert refund.handed_over_at is not None
        unlinked = await as_core.after_sales.list(unlinked_only=True)
        assert [item.external_id for item in unlinked] == ["R2"]
