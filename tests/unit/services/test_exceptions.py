"""The exception service: screening, the alert ladder, holds, release, shipping, flags."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from anyio.from_thread import BlockingPortal

from ordercore import ManualClock, OrderCore, Settings, SyncOrderCore
from ordercore.domain.exceptions import ExceptionCase, RuleAction
from ordercore.domain.inventory import ReservationStatus
from ordercore.domain.orders import Address, Contact, Money, Order, OrderLine, OrderStatus
from ordercore.domain.rules import FraudRules, PaymentState, PaymentStatus, RuleOverride
from ordercore.domain.rules import RulesConfig as Rules
from ordercore.domain.severity import Severity
from ordercore.errors import (
    IllegalTransition,
    OrderNotFound,
    OrderNotOnHold,
    OrderOnHold,
    ReservationNotFound,
)
from ordercore.ports.notifiers import RecordingNotifier
from ordercore.ports.screening import InMemoryScreeningStore
from ordercore.ports.storage import Storage
from ordercore.services.exceptions import ExceptionService
from ordercore.sync import SyncExceptions

START = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)
PHONE = "13657120984"
NAME = "李娜"
DETAIL = "478号华星时代广场A座1203室"


def make_order(order_id: str, **changes: Any) -> Order:
    """A clean, paid Hangzhou order; keyword arguments replace its fields."""
    fields: dict[str, Any] = {
        "id": order_id,
        "channel": "taobao",
        "external_id": f"TB{order_id}",
        "buyer_id": "tb_lina_2019",
        "status": OrderStatus.PAID,
        "lines": (OrderLine(sku="TEA", quantity=2, unit_price=Money(amount=Decimal("89.00"))),),
        "receiver": Contact(name=NAME, phone=PHONE),
        "address": Address(
            province="浙江省", city="杭州市", district="西湖区", street="文三路", detail=DETAIL
        ),
        "created_at": START,
        "updated_at": START,
    }
    fields.update(changes)
    return Order(**fields)


class Harness:
    """A core on memory storage with a recording notifier and a ticket hook that keeps cases."""

    def __init__(self, core: OrderCore, notifier: RecordingNotifier, clock: ManualClock) -> None:
        self.core = core
        self.notifier = notifier
        self.clock = clock
        self.cases: list[ExceptionCase] = []

        async def keep(case: ExceptionCase) -> None:
            self.cases.append(case)

        core.exceptions.open_ticket = keep

    async def stored(self, order: Order, *, reserve: bool = True) -> Order:
        """Store an order, stock its SKUs and reserve them."""
        await self.core.orders.add(order)
        for line in order.lines:
            await self.core.inventory.receive(line.sku, 10)
        if reserve:
            await self.core.inventory.reserve_order(order)
        return order


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    """A fresh core per test (memory storage, manual clock)."""
    notifier = RecordingNotifier()
    clock = ManualClock(START + timedelta(minutes=5))
    settings = Settings(
        exception_rules=Rules(fraud=FraudRules(blacklist_buyers=frozenset({"pdd_brush_0917"})))
    )
    async with OrderCore.open(
        "memory://", clock=clock, notifier=notifier, settings=settings
    ) as core:
        yield Harness(core, notifier, clock)


@pytest.mark.anyio
async def test_a_clean_order_is_neither_flagged_nor_alerted(harness: Harness) -> None:
    """A well-formed, stocked, paid order has no findings, no alert and keeps its status."""
    order = await harness.stored(make_order("o1"))
    result = await harness.core.exceptions.screen(order)
    assert result.findings == ()
    assert harness.notifier.alerts == []
    assert await harness.core.exceptions.result("o1") is None
    assert (await harness.core.orders.get("o1")).status is OrderStatus.PAID


@pytest.mark.anyio
async def test_a_warning_notifies_operations_and_flags_without_holding(harness: Harness) -> None:
    """A vague address (warning) alerts operations, records the flag and opens a case."""
    vague = Address(province="浙江省", city="杭州市", district="西湖区", detail="文三路478号楼下")
    order = await harness.stored(make_order("o1", address=vague))
    result = await harness.core.exceptions.screen(order)
    assert result.rule_ids == ("address.fuzzy",)
    assert not result.held
    assert (await harness.core.orders.get("o1")).status is OrderStatus.PAID
    [alert] = harness.notifier.alerts
    assert (alert.level, alert.topic) == (Severity.WARNING, "exceptions.operations")
    assert "address.fuzzy" in alert.message
    flagged = await harness.core.exceptions.result("o1")
    assert flagged is not None
    assert flagged.rule_ids == ("address.fuzzy",)
    assert [(c.ticket_type, c.severity) for c in harness.cases] == [
        ("vague_address", Severity.WARNING)
    ]


@pytest.mark.anyio
async def test_a_high_finding_holds_the_order_with_its_reasons(harness: Harness) -> None:
    """An invalid phone (high) moves the order to on_hold, the reason naming the rule."""
    order = await harness.stored(make_order("o1", receiver=Contact(name=NAME, phone="12345678901")))
    result = await harness.core.exceptions.screen(order)
    assert result.held
    stored = await harness.core.orders.get("o1")
    assert stored.status is OrderStatus.ON_HOLD
    assert "contact.phone" in stored.status_history[-1].reason
    assert [alert.level for alert in harness.notifier.alerts] == [Severity.HIGH]


@pytest.mark.anyio
async def test_a_critical_finding_also_notifies_a_supervisor(harness: Harness) -> None:
    """A blacklisted buyer (critical) holds, alerts operations and a supervisor."""
    order = await harness.stored(make_order("o1", buyer_id="pdd_brush_0917"))
    result = await harness.core.exceptions.screen(order)
    assert result.severity is Severity.CRITICAL
    assert result.held
    assert {(a.topic, a.level) for a in harness.notifier.alerts} == {
        ("exceptions.operations", Severity.CRITICAL),
        ("exceptions.supervisor", Severity.CRITICAL),
    }


@pytest.mark.anyio
async def test_remark_risk_raises_priority_and_notifies_a_supervisor(harness: Harness) -> None:
    """A remark threatening 12315 raises priority and reaches a supervisor, without a hold."""
    order = await harness.stored(make_order("o1", remark="再不发货就打12315投诉"))
    result = await harness.core.exceptions.screen(order)
    assert result.priority_raised
    assert not result.held
    assert RuleAction.NOTIFY_SUPERVISOR in result.actions
    assert "exceptions.supervisor" in {alert.topic for alert in harness.notifier.alerts}
    assert [case.ticket_type for case in harness.cases] == ["remark_risk"]


@pytest.mark.anyio
async def test_alerts_never_carry_the_customer_name_phone_or_address(harness: Harness) -> None:
    """Alert text names rules and reasons, not the receiver's name, phone or address."""
    order = await harness.stored(
        make_order("o1", remark=f"联系{PHONE}，差评警告", buyer_id="pdd_brush_0917")
    )
    await harness.core.exceptions.screen(order, messages=[f"{NAME}说要退款，电话{PHONE}"])
    assert harness.notifier.alerts
    for alert in harness.notifier.alerts:
        assert PHONE not in alert.message
        assert NAME not in alert.message
        assert DETAIL not in alert.message


@pytest.mark.anyio
async def test_a_held_order_cannot_ship_until_released(harness: Harness) -> None:
    """ship() refuses an on-hold order and takes no stock; after release it ships."""
    order = await harness.stored(make_order("o1", receiver=Contact(name=NAME, phone="")))
    await harness.core.exceptions.screen(order)
    with pytest.raises(OrderOnHold, match=r"contact\.phone"):
        await harness.core.orders.ship("o1")
    level = await harness.core.inventory.stock("TEA")
    assert (level.on_hand, level.reserved) == (10, 2)

    released = await harness.core.exceptions.release_hold("o1", by="ops-zhang", reason="called")
    assert released.status is OrderStatus.PAID
    assert "ops-zhang" in released.status_history[-1].reason
    shipped = await harness.core.orders.ship("o1", carrier="SF", tracking_number="SF1234567")
    assert shipped.status is OrderStatus.SHIPPED
    level = await harness.core.inventory.stock("TEA")
    assert (level.on_hand, level.reserved) == (8, 0)
    reservation = await harness.core.inventory.reservation("o1")
    assert reservation.status is ReservationStatus.COMMITTED


@pytest.mark.anyio
async def test_release_hold_of_an_order_not_on_hold_is_refused(harness: Harness) -> None:
    """Releasing a hold that does not exist raises OrderNotOnHold naming the status."""
    await harness.stored(make_order("o1"))
    with pytest.raises(OrderNotOnHold, match="paid"):
        await harness.core.exceptions.release_hold("o1", by="ops", reason="")


@pytest.mark.anyio
async def test_ship_needs_a_reservation(harness: Harness) -> None:
    """An order without reserved stock is not shipped (ReservationNotFound), status kept."""
    await harness.stored(make_order("o1"), reserve=False)
    with pytest.raises(ReservationNotFound):
        await harness.core.orders.ship("o1")
    assert (await harness.core.orders.get("o1")).status is OrderStatus.PAID


@pytest.mark.anyio
async def test_velocity_counts_orders_across_screenings_once_each(harness: Harness) -> None:
    """The sixth order from one phone within the hour is flagged; re-screens do not count."""
    for index in range(5):
        order = make_order(f"o{index}", buyer_id=f"buyer-{index % 2}")
        await harness.stored(order)
        assert "fraud.velocity" not in (await harness.core.exceptions.screen(order)).rule_ids
        await harness.core.exceptions.screen(order)
    sixth = await harness.stored(make_order("o5", created_at=START + timedelta(minutes=30)))
    result = await harness.core.exceptions.screen(sixth)
    assert "fraud.velocity" in result.rule_ids


@pytest.mark.anyio
async def test_history_keeps_hashes_not_phones_or_addresses() -> None:
    """The screening store holds keyed hashes: no phone digits, no address text."""
    store = InMemoryScreeningStore()
    async with OrderCore.open("memory://", clock=ManualClock(START)) as core:
        core.exceptions.store = store
        await core.exceptions.screen(make_order("o1"), device="ios-ABC")
    dump = repr(store.__dict__)
    assert PHONE not in dump
    assert "文三路" not in dump
    assert "ios-ABC" not in dump
    assert "tb_lina_2019" not in dump


@pytest.mark.anyio
async def test_stock_reserved_for_the_order_counts_as_available(harness: Harness) -> None:
    """An order holding the last units is not out of stock; a new order for more is."""
    order = await harness.stored(make_order("o1", lines=(OrderLine(sku="TEA", quantity=10),)))
    assert "stock.out_of_stock" not in (await harness.core.exceptions.screen(order)).rule_ids
    other = make_order("o2", lines=(OrderLine(sku="TEA", quantity=1),))
    await harness.core.orders.add(other)
    assert "stock.out_of_stock" in (await harness.core.exceptions.screen("o2")).rule_ids


@pytest.mark.anyio
async def test_unknown_sku_is_found_from_storage(harness: Harness) -> None:
    """A SKU with no stock level anywhere is reported unknown."""
    order = make_order("o1", lines=(OrderLine(sku="GHOST", quantity=1),))
    await harness.core.orders.add(order)
    assert "stock.unknown_sku" in (await harness.core.exceptions.screen("o1")).rule_ids


@pytest.mark.anyio
async def test_a_payment_left_unconfirmed_past_the_limit_is_held(harness: Harness) -> None:
    """A payment begun on the reservation and unconfirmed 31 min later holds the order."""
    order = await harness.stored(make_order("o1", status=OrderStatus.PENDING_PAYMENT))
    await harness.core.inventory.begin_payment("o1")
    harness.clock.advance(timedelta(minutes=31))
    result = await harness.core.exceptions.screen("o1")
    assert "payment.unconfirmed" in result.rule_ids
    assert result.held
    await harness.core.exceptions.release_hold("o1", by="ops", reason="paid by transfer")
    await harness.core.inventory.confirm_payment("o1")
    assert "payment.unconfirmed" not in (await harness.core.exceptions.screen(order)).rule_ids


@pytest.mark.anyio
async def test_a_failed_callback_reported_by_the_caller_is_found(harness: Harness) -> None:
    """A FAILED payment state passed to screen() fires payment.callback_failed."""
    order = await harness.stored(make_order("o1"))
    failed = PaymentState(PaymentStatus.FAILED, START, "signature check failed")
    result = await harness.core.exceptions.screen(order, payment=failed)
    assert result.rule_ids == ("payment.callback_failed",)


@pytest.mark.anyio
async def test_screening_an_unknown_id_raises(harness: Harness) -> None:
    """screen() of an id that is not stored raises OrderNotFound."""
    with pytest.raises(OrderNotFound):
        await harness.core.exceptions.screen("nope")


@pytest.mark.anyio
async def test_a_clean_rescreen_clears_the_flag(harness: Harness) -> None:
    """Once the cause is gone, screening again leaves the order unflagged."""
    order = await harness.stored(make_order("o1", remark="差评警告"))
    await harness.core.exceptions.screen(order)
    assert [r.order_id for r in await harness.core.exceptions.flagged()] == ["o1"]
    await harness.core.exceptions.screen(order.model_copy(update={"remark": "谢谢"}))
    assert await harness.core.exceptions.flagged() == []


@pytest.mark.anyio
async def test_configuration_turns_rules_off_and_changes_levels() -> None:
    """Settings.exception_rules can disable a rule and raise another one to critical."""
    notifier = RecordingNotifier()
    rules = Rules(
        rules={
            "remark.risk": RuleOverride(enabled=False),
            "address.fuzzy": RuleOverride(severity=Severity.CRITICAL),
        }
    )
    clock = ManualClock(START)
    async with OrderCore.open(
        "memory://", clock=clock, notifier=notifier, settings=Settings(exception_rules=rules)
    ) as core:
        await core.inventory.receive("TEA", 10)
        vague = Address(province="浙江省", city="杭州市", district="西湖区", detail="文三路5号对面")
        order = make_order("o1", remark="投诉", address=vague)
        result = await core.exceptions.screen(order)
    assert result.rule_ids == ("address.fuzzy",)
    assert result.severity is Severity.CRITICAL
    assert "exceptions.supervisor" in {alert.topic for alert in notifier.alerts}


def test_every_exception_coroutine_has_a_blocking_twin() -> None:
    """SyncExceptions mirrors each public coroutine of ExceptionService, same signature."""
    service = ExceptionService(cast(Storage, object()), ManualClock())
    twins = SyncExceptions(service, cast(BlockingPortal, object()))
    names = [
        name
        for name, member in inspect.getmembers(ExceptionService)
        if not name.startswith("_") and inspect.iscoroutinefunction(member)
    ]
    assert names
    for name in names:
        assert inspect.signature(getattr(twins, name)) == inspect.signature(getattr(service, name))


@pytest.mark.anyio
async def test_a_batch_is_screened_like_its_orders_one_by_one(harness: Harness) -> None:
    """screen_many returns aligned results, holds the bad orders and leaves the good ones."""
    good = await harness.stored(make_order("g1"))
    bad = await harness.stored(make_order("b1", receiver=Contact(name="test", phone="110")))
    risky = await harness.stored(make_order("r1", remark="已经投诉了"))
    results = await harness.core.exceptions.screen_many(
        [good, bad, risky], messages={"g1": ["假货吧"]}
    )
    assert [r.order_id for r in results] == ["g1", "b1", "r1"]
    assert [r.rule_ids for r in results] == [
        ("remark.risk",),
        ("contact.phone", "contact.name"),
        ("remark.risk",),
    ]
    assert [r.held for r in results] == [False, True, False]
    assert (await harness.core.orders.get("b1")).status is OrderStatus.ON_HOLD
    assert (await harness.core.orders.get("g1")).status is OrderStatus.PAID


def test_the_blocking_facade_holds_releases_and_ships() -> None:
    """SyncOrderCore screens, refuses to ship, releases and ships without await."""
    with SyncOrderCore.open("memory://", clock=ManualClock(START)) as core:
        core.inventory.receive("TEA", 5)
        order = make_order("o1", receiver=Contact(name=NAME, phone="13800000000"))
        core.orders.add(order)
        core.inventory.reserve_order(order)
        assert core.exceptions.screen("o1").held
        with pytest.raises(OrderOnHold):
            core.orders.ship("o1")
        core.exceptions.release_hold("o1", by="ops", reason="real number confirmed")
        assert core.orders.ship("o1").status is OrderStatus.SHIPPED


@pytest.mark.anyio
async def test_an_unpaid_order_is_not_shipped(harness: Harness) -> None:
    """ship() of an order awaiting payment raises IllegalTransition and commits nothing."""
    await harness.stored(make_order("o1", status=OrderStatus.PENDING_PAYMENT))
    with pytest.raises(IllegalTransition):
        await harness.core.orders.ship("o1")
    reservation = await harness.core.inventory.reservation("o1")
    assert reservation.status is ReservationStatus.ACTIVE
