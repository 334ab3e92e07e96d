"""reserve_many: the inline check of the common request, cheap refusals, aligned answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ordercore.config import Settings
from ordercore.domain.inventory import Reservation, ReservationLine
from ordercore.errors import InsufficientStock, InvalidReservation, OrderCoreError
from ordercore.ports.clock import ManualClock
from ordercore.services.reservations import InventoryService, ReserveRequest
from ordercore_adapters.storage.memory import MemoryStorage

T0 = datetime(2026, 11, 11, 20, 0, tzinfo=UTC)


async def service(units: int, **settings: object) -> InventoryService:
    clock = ManualClock(T0)
    inventory = InventoryService(MemoryStorage("memory://"), clock, Settings(**settings))
    await inventory.receive("A", units)
    return inventory


def granted(answers: list[Reservation | OrderCoreError]) -> list[Reservation]:
    return [answer for answer in answers if isinstance(answer, Reservation)]


@pytest.mark.anyio
async def test_inline_requests_build_the_same_records_as_reserve() -> None:
    """A {sku: qty} request in bulk holds what reserve() would: lines, buyer, expiry, status."""
    inventory = await service(10)
    (bulk,) = await inventory.reserve_many([ReserveRequest("o1", {"A": 2}, buyer_id="b1")])
    single = await inventory.reserve("o2", {"A": 2}, buyer_id="b1")
    assert isinstance(bulk, Reservation)
    assert bulk.lines == single.lines == (ReservationLine("A", "main", 2),)
    assert (bulk.buyer_id, bulk.status, bulk.created_at) == ("b1", single.status, T0)
    assert bulk.expires_at == single.expires_at == T0 + Settings().reservation_ttl
    assert await inventory.reservation("o1") == bulk


@pytest.mark.anyio
async def test_every_bulk_record_gets_its_own_id() -> None:
    """Ids cut from one random block are distinct 32-hex-digit strings."""
    inventory = await service(1_000)
    answers = await inventory.reserve_many(
        [ReserveRequest(f"o{index}", {"A": 1}) for index in range(1_000)]
    )
    ids = [answer.id for answer in granted(answers)]
    assert len(set(ids)) == 1_000
    assert all(len(id_) == 32 and int(id_, 16) >= 0 for id_ in ids)


@pytest.mark.anyio
async def test_a_request_ttl_and_warehouse_are_honoured() -> None:
    """A request's own ttl sets its expiry; its warehouse names the location."""
    inventory = await service(5)
    await inventory.receive("A", 5, warehouse="east")
    (answer,) = await inventory.reserve_many(
        [ReserveRequest("o1", {"A": 1}, warehouse="east", ttl=timedelta(minutes=2))]
    )
    assert isinstance(answer, Reservation)
    assert answer.lines == (ReservationLine("A", "east", 1),)
    assert answer.expires_at == T0 + timedelta(minutes=2)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (ReserveRequest("", {"A": 1}), "order_id"),
        (ReserveRequest("   ", {"A": 1}), "order_id"),
        (ReserveRequest("o1", {"A": 0}), "lines[0].quantity"),
        (ReserveRequest("o1", {"A": True}), "lines[0].quantity"),
        (ReserveRequest("o1", {"": 1}), "lines[0].sku"),
        (ReserveRequest("o1", {"A": 1}, ttl=timedelta(0)), "ttl"),
        (ReserveRequest("o1", {}), "lines"),
    ],
)
@pytest.mark.anyio
async def test_a_broken_request_gets_the_error_reserve_raises(
    request_: ReserveRequest, field: str
) -> None:
    """A request that breaks a rule is answered with InvalidReservation naming the field."""
    inventory = await service(5)
    answers = await inventory.reserve_many([request_, ReserveRequest("ok", {"A": 1})])
    error, fine = answers
    assert isinstance(error, InvalidReservation)
    assert field in {item.field for item in error.errors}
    with pytest.raises(InvalidReservation) as raised:
        await inventory.reserve(
            request_.order_id, request_.lines, warehouse=request_.warehouse, ttl=request_.ttl
        )
    assert str(raised.value) == str(error)
    assert isinstance(fine, Reservation)


@pytest.mark.anyio
async def test_sold_out_refusals_share_one_error_and_retries_get_theirs() -> None:
    """Past the stock, identical requests share one InsufficientStock; held orders get theirs."""
    inventory = await service(3, coalesce_batch_size=4)
    first = await inventory.reserve_many([ReserveRequest(f"o{i}", {"A": 1}) for i in range(8)])
    assert len(granted(first)) == 3
    refusals = first[3:]
    assert all(isinstance(answer, InsufficientStock) for answer in refusals)
    assert len({id(answer) for answer in refusals[1:]}) == 1  # the sold-out batch: one error
    again = await inventory.reserve_many([ReserveRequest(f"o{i}", {"A": 1}) for i in range(8)])
    assert again[:3] == first[:3]
    assert all(isinstance(answer, InsufficientStock) for answer in again[3:])
    assert (await inventory.stock("A")).reserved == 3
    assert await inventory.verify() == []


@pytest.mark.anyio
async def test_multi_line_and_record_lines_go_their_own_way_in_order() -> None:
    """Answers stay aligned when inline, ReservationLine and multi-line requests mix."""
    inventory = await service(10)
    await inventory.receive("B", 10)
    answers = await inventory.reserve_many(
        [
            ReserveRequest("o1", {"A": 1, "B": 2}),
            ReserveRequest("o2", [ReservationLine("B", "main", 3)]),
            ReserveRequest("o3", {"A": 4}),
            ReserveRequest("o4", {"B": 99}),
        ]
    )
    assert [answer.quantity for answer in granted(answers)] == [3, 3, 4]
    assert isinstance(answers[3], InsufficientStock)
    assert [answer.order_id for answer in granted(answers)] == ["o1", "o2", "o3"]
    assert (await inventory.stock("A")).reserved == 5
    assert (await inventory.stock("B")).reserved == 5
