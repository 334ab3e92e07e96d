"""Contract tests for the order repository."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from ordercore.core import OrderCore
from ordercore.domain.orders import Address, Contact, Money, Order, OrderLine, OrderStatus
from ordercore.errors import (
    ConcurrencyConflict,
    DuplicateOrder,
    IllegalTransition,
    InvalidOrder,
    OrderNotFound,
)
from ordercore.ports.clock import ManualClock
from ordercore.testing.storage_base import StorageContractBase

__all__ = ["OrderContract", "sample_order"]


def sample_order(
    order_id: str,
    *,
    lines: Mapping[str, int] | None = None,
    at: datetime,
    channel: str = "taobao",
    buyer_id: str = "buyer-1",
) -> Order:
    """A realistic order for tests: two lines, a Chinese address and receiver."""
    lines = lines or {"SKU-RED": 2, "SKU-BLUE": 1}
    return Order(
        id=order_id,
        channel=channel,
        external_id=f"ext-{order_id}",
        buyer_id=buyer_id,
        lines=tuple(
            OrderLine(sku=sku, quantity=qty, unit_price=Money(amount=Decimal("19.90")), title=sku)
            for sku, qty in lines.items()
        ),
        receiver=Contact(name="张三", phone="13800138000"),
        address=Address(
            province="浙江省", city="杭州市", district="西湖区", street="文三路", detail="90号"
        ),
        shipping_fee=Money(amount=Decimal("6.00")),
        remark="请尽快发货",
        created_at=at,
        updated_at=at,
    )


class OrderContract(StorageContractBase):
    """Orders are stored whole, keyed twice, and versioned."""

    @pytest.mark.anyio
    async def test_an_order_is_stored_whole(self, core: OrderCore, clock: ManualClock) -> None:
        """Lines, receiver, address, money and status history come back unchanged."""
        order = sample_order("o1", at=clock.now())
        await core.orders.add(order)
        clock.advance(timedelta(minutes=1))
        paid = await core.orders.transition("o1", OrderStatus.PAID, reason="alipay")
        loaded = await core.orders.get("o1")
        assert loaded == paid
        assert loaded.total == Money(amount=Decimal("65.70"))
        assert loaded.status_history[-1].reason == "alipay"
        assert loaded.address.one_line() == "浙江省杭州市西湖区文三路90号"
        assert await core.orders.find("taobao", "ext-o1") == loaded

    @pytest.mark.anyio
    async def test_duplicates_are_refused_on_either_key(
        self, core: OrderCore, clock: ManualClock
    ) -> None:
        """The same id, or the same channel and external id, raises DuplicateOrder."""
        await core.orders.add(sample_order("o1", at=clock.now()))
        with pytest.raises(DuplicateOrder):
            await core.orders.add(sample_order("o1", at=clock.now(), channel="jd"))
        twin = sample_order("o2", at=clock.now()).model_copy(update={"external_id": "ext-o1"})
        with pytest.raises(DuplicateOrder):
            await core.orders.add(twin)
        assert len(await core.orders.list()) == 1

    @pytest.mark.anyio
    async def test_a_stale_write_is_refused(self, core: OrderCore, clock: ManualClock) -> None:
        """Saving an order read before another writer saved raises ConcurrencyConflict."""
        order = sample_order("o1", at=clock.now())
        await core.orders.add(order)
        async with core.storage.unit_of_work() as uow:
            saved = await uow.orders.save(order.transition_to(OrderStatus.PAID, clock.now()))
            await uow.commit()
        assert saved.version == order.version + 1
        async with core.storage.unit_of_work() as uow:
            with pytest.raises(ConcurrencyConflict):
                await uow.orders.save(order.transition_to(OrderStatus.CANCELLED, clock.now()))
        assert (await core.orders.get("o1")).status is OrderStatus.PAID

    @pytest.mark.anyio
    async def test_orders_list_newest_first_by_status(
        self, core: OrderCore, clock: ManualClock
    ) -> None:
        """list() filters by status and returns the newest orders first."""
        for index in range(3):
            await core.orders.add(sample_order(f"o{index}", at=clock.now()))
            clock.advance(timedelta(seconds=1))
        await core.orders.transition("o1", OrderStatus.CANCELLED)
        pending = await core.orders.list(status=OrderStatus.PENDING_PAYMENT)
        assert [order.id for order in pending] == ["o2", "o0"]
        assert [order.id for order in await core.orders.list(limit=2)] == ["o2", "o1"]

    @pytest.mark.anyio
    async def test_state_machine_and_lookups_raise_typed_errors(
        self, core: OrderCore, clock: ManualClock
    ) -> None:
        """Illegal transitions, unknown ids and invalid orders are typed errors."""
        await core.orders.add(sample_order("o1", at=clock.now()))
        with pytest.raises(IllegalTransition, match="pending_payment to shipped"):
            await core.orders.transition("o1", OrderStatus.SHIPPED)
        with pytest.raises(OrderNotFound):
            await core.orders.get("nope")
        with pytest.raises(InvalidOrder, match="lines"):
            await core.orders.add({"id": "x", "external_id": "x", "lines": []})
