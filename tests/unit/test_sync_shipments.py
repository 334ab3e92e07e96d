"""core.shipments through the blocking facade (SyncOrderCore), for Django and scripts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ordercore.domain.orders import OrderStatus
from ordercore.domain.shipments import PushState, ShipmentState
from ordercore.errors import OrderIntercepted
from ordercore.ports.clock import ManualClock
from ordercore.sync import SyncOrderCore
from ordercore.testing.storage_shipments import shipping_order

T0 = datetime(2026, 11, 11, 9, 0, tzinfo=UTC)


def test_the_blocking_facade_ships_and_intercepts(tmp_path: Path) -> None:
    """record() ships one order and intercept() stops another, without await."""
    with SyncOrderCore.open(f"sqlite:///{tmp_path / 's.db'}", clock=ManualClock(T0)) as core:
        core.inventory.receive("A", 5)
        for order_id in ("o1", "o2"):
            core.orders.add(shipping_order(order_id, {"A": 1}, at=T0))
            core.inventory.reserve(order_id, {"A": 1})
        shipped = core.shipments.record(["o1"], courier="zto", tracking_number="ZT1")
        parcel = core.shipments.prepare(["o2"], courier="zto", tracking_number="ZT2")
        outcome = core.shipments.intercept("o2", "refund")
        with pytest.raises(OrderIntercepted):
            core.shipments.ship(parcel.id)
        assert shipped.state is ShipmentState.SHIPPED
        assert outcome.released
        assert core.orders.get("o2").status is OrderStatus.CANCELLED
        assert core.shipments.push_counts()[PushState.PENDING] == 1
        level = core.inventory.stock("A", "main")
        assert (level.on_hand, level.reserved) == (4, 0)
