"""Exception screening on SQLite and PostgreSQL: holds, shipping, a fraud window shared by cores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import SecretStr

from ordercore import ManualClock, OrderCore, Settings
from ordercore.domain.inventory import ReservationStatus
from ordercore.domain.orders import Address, Contact, Money, Order, OrderLine, OrderStatus
from ordercore.errors import OrderOnHold
from ordercore_adapters.storage.sql.screening import SqlScreeningStore

START = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)


def order(order_id: str, *, phone: str = "13657120984", minutes: int = 0) -> Order:
    """A paid Hangzhou order placed ``minutes`` after START."""
    at = START + timedelta(minutes=minutes)
    return Order(
        id=order_id,
        channel="taobao",
        external_id=f"TB{order_id}",
        buyer_id="tb_lina_2019",
        status=OrderStatus.PAID,
        lines=(OrderLine(sku="TEA", quantity=1, unit_price=Money(amount=Decimal("89"))),),
        receiver=Contact(name="李娜", phone=phone),
        address=Address(
            province="浙江省", city="杭州市", district="西湖区", detail=f"文三路{order_id}号"
        ),
        created_at=at,
        updated_at=at,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> str:
    """A fresh database of each SQL backend."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.mark.anyio
async def test_a_held_order_ships_only_after_release(url: str) -> None:
    """On SQL storage a held order is refused by ship(); released, it ships and commits stock."""
    clock = ManualClock(START + timedelta(minutes=5))
    async with OrderCore.open(url, clock=clock) as core:
        await core.inventory.receive("TEA", 5)
        bad = order("o1", phone="12345678901")
        await core.orders.add(bad)
        await core.inventory.reserve_order(bad)
        result = await core.exceptions.screen("o1")
        assert result.held
        with pytest.raises(OrderOnHold):
            await core.orders.ship("o1")
        assert (await core.inventory.stock("TEA")).reserved == 1
        await core.exceptions.release_hold("o1", by="ops", reason="buyer confirmed by chat")
        shipped = await core.orders.ship("o1", carrier="SF", tracking_number="SF1")
        assert shipped.status is OrderStatus.SHIPPED
        level = await core.inventory.stock("TEA")
        assert (level.on_hand, level.reserved) == (4, 0)
        assert (await core.inventory.reservation("o1")).status is ReservationStatus.COMMITTED


@pytest.mark.anyio
async def test_two_cores_share_one_fraud_window(url: str) -> None:
    """Orders screened by two cores (two processes) on one database count together."""
    settings = Settings(screening_salt=SecretStr("shop-secret"))
    clock = ManualClock(START + timedelta(minutes=30))
    async with (
        OrderCore.open(url, clock=clock, settings=settings) as first,
        OrderCore.open(url, clock=clock, settings=settings) as second,
    ):
        await first.inventory.receive("TEA", 100)
        assert isinstance(first.exceptions.store, SqlScreeningStore)  # picked by the core
        for index in range(5):
            core = first if index % 2 else second
            found = await core.exceptions.screen(order(f"o{index}", minutes=index))
            assert "fraud.velocity" not in found.rule_ids
        sixth = await first.exceptions.screen(order("o5", minutes=6))
        assert "fraud.velocity" in sixth.rule_ids
        assert [r.order_id for r in await second.exceptions.flagged()] == ["o5"]


@pytest.mark.anyio
async def test_cores_without_a_configured_salt_share_the_databases_salt(url: str) -> None:
    """With no salt in the settings, every core on one database hashes keys alike."""
    clock = ManualClock(START + timedelta(minutes=30))
    async with (
        OrderCore.open(url, clock=clock) as first,
        OrderCore.open(url, clock=clock) as second,
    ):
        await first.inventory.receive("TEA", 100)
        for index in range(5):
            core = first if index % 2 else second
            await core.exceptions.screen(order(f"o{index}", minutes=index))
        sixth = await first.exceptions.screen(order("o5", minutes=6))
        assert "fraud.velocity" in sixth.rule_ids


@pytest.mark.anyio
async def test_a_held_order_opens_a_ticket_and_its_flags_outlive_the_core(url: str) -> None:
    """A high finding opens one ticket; the screening result is still there after a restart."""
    clock = ManualClock(START + timedelta(minutes=5))
    async with OrderCore.open(url, clock=clock) as core:
        await core.inventory.receive("TEA", 5)
        bad = order("o1", phone="12345678901")
        await core.orders.add(bad)
        await core.exceptions.screen("o1")
        await core.exceptions.screen("o1")  # a re-screen adds to the ticket, opens none
        tickets = await core.tickets.list()
        assert [(t.order_id, t.ticket_type) for t in tickets] == [("o1", "invalid_contact")]
    async with OrderCore.open(url, clock=clock) as reopened:
        kept = await reopened.exceptions.result("o1")
        assert kept is not None
        assert "contact.phone" in kept.rule_ids
