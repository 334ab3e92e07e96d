"""Contract tests for waybill records (``uow.waybills``).

One record per (order id, package id), written before the courier is called and filled
in once after: a retry, a second worker and a rollback must all leave exactly one record
holding exactly one waybill. These drive the storage port directly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest

from ordercore.core import OrderCore
from ordercore.domain.couriers import Waybill, WaybillRecord, WaybillState, waybill_key
from ordercore.testing.storage_base import StorageContractBase

__all__ = ["WaybillContract"]

T0 = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)


def _waybill(order_id: str, package_id: str, courier: str = "zto", number: str = "ZT1") -> Waybill:
    return Waybill(
        courier=courier,
        tracking_number=number,
        key=waybill_key(order_id, package_id),
        label_ref=f"https://labels.example/{number}",
    )


async def _begin(core: OrderCore, order_id: str, package_id: str, now: datetime) -> WaybillRecord:
    async with core.storage.unit_of_work() as uow:
        record = await uow.waybills.begin(order_id, package_id, now)
        await uow.commit()
    return record


async def _complete(core: OrderCore, waybill: Waybill, order_id: str, package_id: str) -> bool:
    async with core.storage.unit_of_work() as uow:
        done = await uow.waybills.complete(order_id, package_id, waybill, T0 + timedelta(minutes=1))
        await uow.commit()
    return done


async def _get(core: OrderCore, order_id: str, package_id: str) -> WaybillRecord | None:
    async with core.storage.unit_of_work() as uow:
        return await uow.waybills.get(order_id, package_id)


class WaybillContract(StorageContractBase):
    """Waybill records: begin, complete, idempotency, races."""

    @pytest.mark.anyio
    async def test_begin_records_a_requested_waybill(self, core: OrderCore) -> None:
        """The first begin stores a requested record with one attempt and no waybill."""
        record = await _begin(core, "o-1", "1", T0)
        assert (record.state, record.attempts, record.courier) == (WaybillState.REQUESTED, 1, None)
        assert await _get(core, "o-1", "1") == record
        assert record.created_at == T0

    @pytest.mark.anyio
    async def test_begin_again_counts_an_attempt(self, core: OrderCore) -> None:
        """A second begin on a requested record counts one more attempt on the same record."""
        await _begin(core, "o-1", "1", T0)
        again = await _begin(core, "o-1", "1", T0 + timedelta(seconds=5))
        assert (again.state, again.attempts) == (WaybillState.REQUESTED, 2)
        assert again.created_at == T0
        assert again.updated_at == T0 + timedelta(seconds=5)

    @pytest.mark.anyio
    async def test_complete_fills_in_the_waybill(self, core: OrderCore) -> None:
        """complete() stores the courier, tracking number and label of a requested record."""
        await _begin(core, "o-1", "1", T0)
        assert await _complete(core, _waybill("o-1", "1"), "o-1", "1")
        stored = await _get(core, "o-1", "1")
        assert stored is not None
        assert stored.state is WaybillState.CREATED
        assert stored.waybill == _waybill("o-1", "1")

    @pytest.mark.anyio
    async def test_a_created_waybill_is_never_replaced(self, core: OrderCore) -> None:
        """A second complete() changes nothing; a later begin returns the created record."""
        await _begin(core, "o-1", "1", T0)
        await _complete(core, _waybill("o-1", "1", "zto", "ZT1"), "o-1", "1")
        assert not await _complete(core, _waybill("o-1", "1", "sf", "SF9"), "o-1", "1")
        after = await _begin(core, "o-1", "1", T0 + timedelta(minutes=5))
        assert after.state is WaybillState.CREATED
        assert (after.courier, after.tracking_number, after.attempts) == ("zto", "ZT1", 1)

    @pytest.mark.anyio
    async def test_complete_without_a_record_does_nothing(self, core: OrderCore) -> None:
        """complete() on a package never begun returns False and stores nothing."""
        assert not await _complete(core, _waybill("o-9", "1"), "o-9", "1")
        assert await _get(core, "o-9", "1") is None

    @pytest.mark.anyio
    async def test_rollback_discards_begin_and_complete(self, core: OrderCore) -> None:
        """A unit left without commit keeps neither the record nor its waybill."""
        async with core.storage.unit_of_work() as uow:
            await uow.waybills.begin("o-1", "1", T0)
            await uow.waybills.complete("o-1", "1", _waybill("o-1", "1"), T0)
        assert await _get(core, "o-1", "1") is None

    @pytest.mark.anyio
    async def test_records_are_per_package_and_counted(self, core: OrderCore) -> None:
        """for_order() lists an order's packages by id; counts() tallies every state."""
        for package in ("2", "1"):
            await _begin(core, "o-1", package, T0)
        await _begin(core, "o-2", "1", T0)
        await _complete(core, _waybill("o-1", "2"), "o-1", "2")
        async with core.storage.unit_of_work() as uow:
            listed = await uow.waybills.for_order("o-1")
            counts = await uow.waybills.counts()
        assert [(r.package_id, r.state) for r in listed] == [
            ("1", WaybillState.REQUESTED),
            ("2", WaybillState.CREATED),
        ]
        assert counts == {WaybillState.REQUESTED: 2, WaybillState.CREATED: 1}

    @pytest.mark.anyio
    async def test_racing_runs_keep_one_record_and_one_waybill(self, core: OrderCore) -> None:
        """Runs racing on one package share one record; exactly one completion is kept."""
        won: list[str] = []

        async def run(number: str) -> None:
            await _begin(core, "o-1", "1", T0)
            if await _complete(core, _waybill("o-1", "1", number=number), "o-1", "1"):
                won.append(number)

        async with anyio.create_task_group() as group:
            for n in range(6):
                group.start_soon(run, f"ZT{n}")
        stored = await _get(core, "o-1", "1")
        assert stored is not None
        assert len(won) == 1
        assert stored.tracking_number == won[0]
        async with core.storage.unit_of_work() as uow:
            assert await uow.waybills.counts() == {
                WaybillState.REQUESTED: 0,
                WaybillState.CREATED: 1,
            }
