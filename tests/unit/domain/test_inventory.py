"""Stock-level math and reservation records."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, datetime, timedelta

import pytest

from ordercore.domain.inventory import (
    Reservation,
    ReservationLine,
    ReservationStatus,
    StockLevel,
    batch_key,
    merge_lines,
    safety_units,
)
from ordercore.errors import InvalidReservation

T0 = datetime(2026, 11, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("on_hand", "basis_points", "expected"),
    [(100, 500, 5), (101, 500, 6), (0, 1000, 0), (7, 1000, 1), (19, 525, 1), (20, 525, 2)],
)
def test_percentage_safety_rounds_up(on_hand: int, basis_points: int, expected: int) -> None:
    """A percentage of on_hand rounds up to whole units: never sell the last doubtful unit."""
    assert safety_units(on_hand, 0, basis_points) == expected


def test_absolute_safety_is_kept() -> None:
    """Without a percentage the absolute figure is used as is."""
    assert safety_units(100, 7, None) == 7


def test_sellable_never_goes_negative() -> None:
    """Safety stock above what is left shows 0 sellable, not a negative number."""
    assert StockLevel("A", "main", on_hand=10, reserved=8, safety=5).sellable == 0
    assert StockLevel("A", "main", on_hand=10, reserved=2, safety=3).sellable == 5


def test_lines_merge_and_sort_into_the_lock_order() -> None:
    """Lines merge per (sku, warehouse) and come out sorted: the fixed lock order."""
    merged = merge_lines(
        [
            ReservationLine("B", "main", 1),
            ReservationLine("A", "west", 2),
            ReservationLine("A", "east", 1),
            ReservationLine("B", "main", 4),
        ]
    )
    assert merged == (
        ReservationLine("A", "east", 1),
        ReservationLine("A", "west", 2),
        ReservationLine("B", "main", 5),
    )


def test_due_respects_payment_in_flight_and_payment() -> None:
    """A reservation is due at expiry, unless its payment is in flight or done."""
    base = Reservation(
        id="r",
        order_id="o",
        lines=(ReservationLine("A", "main", 1),),
        status=ReservationStatus.ACTIVE,
        created_at=T0,
        updated_at=T0,
        expires_at=T0 + timedelta(minutes=30),
    )
    later = T0 + timedelta(minutes=31)
    assert not base.is_due(T0)
    assert base.is_due(later)
    in_flight = Reservation(**{**_fields(base), "payment_deadline": later + timedelta(minutes=1)})
    assert not in_flight.is_due(later)
    paid = Reservation(**{**_fields(base), "expires_at": None, "paid": True})
    assert not paid.is_due(later + timedelta(days=1))


def _fields(reservation: Reservation) -> dict[str, object]:
    return {name: getattr(reservation, name) for name in Reservation.__slots__}


def test_a_reservation_built_fast_is_still_a_frozen_dataclass() -> None:
    """The hand-written constructor keeps defaults, equality, replace(), pickling and freezing."""
    now = datetime(2026, 11, 11, tzinfo=UTC)
    line = (ReservationLine("A", "main", 1),)
    positional = Reservation("r1", "o1", line, ReservationStatus.ACTIVE, now, now, None)
    keywords = Reservation(
        id="r1",
        order_id="o1",
        lines=line,
        status=ReservationStatus.ACTIVE,
        created_at=now,
        updated_at=now,
        expires_at=None,
    )
    assert positional == keywords
    assert hash(positional) == hash(keywords)
    assert (positional.buyer_id, positional.paid, positional.payment_deadline) == ("", False, None)
    paid = dataclasses.replace(positional, paid=True)
    assert paid.paid
    assert paid.order_id == "o1"
    assert pickle.loads(pickle.dumps(paid)) == paid
    with pytest.raises(dataclasses.FrozenInstanceError):
        positional.paid = True  # type: ignore[misc]


def test_batch_key_sees_a_stray_location_behind_shared_lines() -> None:
    """Drafts sharing one lines tuple pass; one draft elsewhere makes the batch invalid."""
    shared = (ReservationLine("A", "main", 1),)

    def record(order_id: str, lines: tuple[ReservationLine, ...]) -> Reservation:
        return Reservation(order_id, order_id, lines, ReservationStatus.ACTIVE, T0, T0, None)

    batch = [record(f"o{index}", shared) for index in range(3)]
    assert batch_key(batch) == ("A", "main")
    stray = record("o9", (ReservationLine("A", "east", 1),))
    with pytest.raises(InvalidReservation):
        batch_key([*batch, stray])
