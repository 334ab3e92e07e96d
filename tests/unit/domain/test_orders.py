"""The canonical order and its state machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ordercore.domain.orders import (
    TRANSITIONS,
    Money,
    Order,
    OrderLine,
    OrderStatus,
    parse_order,
)
from ordercore.errors import IllegalTransition, InvalidOrder

T0 = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)


def make_order(**changes: object) -> Order:
    data: dict[str, object] = {
        "id": "o1",
        "channel": "jd",
        "external_id": "JD-1",
        "lines": [{"sku": "A", "quantity": 2, "unit_price": {"amount": "9.90"}}],
        "created_at": T0,
        "updated_at": T0,
    }
    data.update(changes)
    return parse_order(data)


def test_total_sums_lines_and_shipping() -> None:
    """An order's total is line price times quantity plus the shipping fee."""
    order = make_order(shipping_fee={"amount": "5"})
    assert order.total == Money(amount=Decimal("24.80"))


def test_happy_path_records_every_change() -> None:
    """pending -> paid -> allocated -> shipped -> completed, each change in the history."""
    order = make_order()
    for step, status in enumerate(
        (OrderStatus.PAID, OrderStatus.ALLOCATED, OrderStatus.SHIPPED, OrderStatus.COMPLETED)
    ):
        order = order.transition_to(status, T0 + timedelta(minutes=step + 1))
    assert order.status is OrderStatus.COMPLETED
    assert [change.to_status for change in order.status_history] == [
        OrderStatus.PAID,
        OrderStatus.ALLOCATED,
        OrderStatus.SHIPPED,
        OrderStatus.COMPLETED,
    ]
    assert order.updated_at == T0 + timedelta(minutes=4)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (OrderStatus.PENDING_PAYMENT, OrderStatus.SHIPPED),
        (OrderStatus.SHIPPED, OrderStatus.CANCELLED),
        (OrderStatus.CANCELLED, OrderStatus.PAID),
        (OrderStatus.COMPLETED, OrderStatus.ON_HOLD),
    ],
)
def test_illegal_transitions_raise_naming_both_states(
    current: OrderStatus, target: OrderStatus
) -> None:
    """A move the state machine forbids raises IllegalTransition naming from, to and allowed."""
    order = make_order(status=current)
    with pytest.raises(IllegalTransition, match=f"from {current} to {target}") as caught:
        order.transition_to(target, T0)
    assert caught.value.allowed == tuple(sorted(TRANSITIONS[current]))


def test_a_hold_releases_to_the_status_it_was_held_from() -> None:
    """A held order may only return to where it was (or be cancelled)."""
    held = make_order().transition_to(OrderStatus.PAID, T0).transition_to(OrderStatus.ON_HOLD, T0)
    assert held.allowed_next() == {OrderStatus.PAID, OrderStatus.CANCELLED}
    with pytest.raises(IllegalTransition):
        held.transition_to(OrderStatus.ALLOCATED, T0)
    assert held.transition_to(OrderStatus.PAID, T0).status is OrderStatus.PAID


def test_every_bad_field_is_named() -> None:
    """InvalidOrder lists each failing field with its value."""
    with pytest.raises(InvalidOrder) as caught:
        make_order(lines=[{"sku": "", "quantity": 0}], currency="yuan")
    fields = {error.field for error in caught.value.errors}
    assert {"lines.0.sku", "lines.0.quantity", "currency"} <= fields


def test_naive_timestamps_are_refused() -> None:
    """Times must be timezone-aware so nothing is stored in local time."""
    with pytest.raises(InvalidOrder, match="timezone-aware"):
        make_order(created_at=datetime(2026, 1, 1))


def test_lines_must_share_the_order_currency() -> None:
    """A line priced in another currency than the order is refused."""
    with pytest.raises(InvalidOrder, match="USD"):
        make_order(
            lines=[{"sku": "A", "quantity": 1, "unit_price": {"amount": 1, "currency": "USD"}}]
        )


def test_values_are_frozen() -> None:
    """Order lines cannot be changed in place."""
    line = OrderLine(sku="A", quantity=1)
    with pytest.raises(ValueError, match="frozen"):
        line.quantity = 5  # type: ignore[misc]
