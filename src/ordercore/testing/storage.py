"""The storage port's contract suite.

Every storage adapter passes it. In your tests::

    from ordercore.testing import StorageContract

    class TestMyStorage(StorageContract):
        @pytest.fixture
        def make_storage(self, tmp_path):
            return lambda settings: MyStorage(f"my://{tmp_path}/db", settings)

``make_storage`` returns a callable that takes Settings and builds a new, unopened
Storage on a fresh, empty database. The suite opens it, drives it through the public
API of OrderCore (with a ManualClock) and closes it. Every concurrency test ends with
``verify()``: counters must equal what the records say.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from ordercore.core import OrderCore
from ordercore.domain.inventory import PaymentOutcome, ReservationLine, ReservationStatus
from ordercore.domain.orders import OrderStatus
from ordercore.errors import (
    BuyerLimitExceeded,
    InsufficientStock,
    InvalidInput,
    InvalidReservation,
    ReservationNotFound,
    ReservationStateConflict,
    SaleCapReached,
    StockAdjustmentConflict,
    UnknownSku,
)
from ordercore.ports.clock import ManualClock
from ordercore.testing.storage_after_sales import AfterSaleContract
from ordercore.testing.storage_base import (
    RESERVING,
    TTL,
    StorageContractBase,
    StorageFactory,
    assert_no_drift,
    clock_now,
    stock_of,
)
from ordercore.testing.storage_batch import BatchContract
from ordercore.testing.storage_concurrency import ConcurrencyContract
from ordercore.testing.storage_intake import IntakeContract
from ordercore.testing.storage_orders import OrderContract, sample_order
from ordercore.testing.storage_outbox import OutboxContract
from ordercore.testing.storage_routing import RoutingContract
from ordercore.testing.storage_shipments import ShipmentContract, ShipmentFlowContract
from ordercore.testing.storage_stock_push import StockPushContract
from ordercore.testing.storage_tickets import TicketContract
from ordercore.testing.storage_tokens import TokenContract
from ordercore.testing.storage_waybills import WaybillContract

__all__ = ["StorageContract", "StorageFactory"]

pytestmark = pytest.mark.anyio


class StockContract(StorageContractBase):
    """Stock levels: receive, adjust, count, safety stock."""

    reservation_modes = RESERVING

    @pytest.mark.anyio
    async def test_receive_creates_a_level_and_adds_up(self, core: OrderCore) -> None:
        """Receiving creates the level, a second receipt adds to it; sellable follows."""
        await core.inventory.receive("A", 10)
        level = await core.inventory.receive("A", 5)
        assert (level.on_hand, level.reserved, level.sellable) == (15, 0, 15)
        assert await core.inventory.sellable("A") == 15
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_levels_are_kept_per_warehouse(self, core: OrderCore) -> None:
        """The same SKU in two warehouses has two levels; sellable() without one sums them."""
        await core.inventory.receive("A", 4, warehouse="east")
        await core.inventory.receive("A", 6, warehouse="west")
        assert await core.inventory.sellable("A", "east") == 4
        assert await core.inventory.sellable("A") == 10
        levels = await core.inventory.levels("A")
        assert [level.warehouse for level in levels] == ["east", "west"]

    @pytest.mark.anyio
    async def test_negative_adjustment_of_unknown_sku_is_refused(self, core: OrderCore) -> None:
        """Removing units from a SKU that has no level raises UnknownSku."""
        with pytest.raises(UnknownSku, match="'GHOST'"):
            await core.inventory.adjust("GHOST", -1)

    @pytest.mark.anyio
    async def test_adjustment_never_takes_on_hand_below_reserved(self, core: OrderCore) -> None:
        """A loss that would leave fewer units than are reserved is refused, nothing changes."""
        await core.inventory.receive("A", 10)
        await core.inventory.reserve("o1", {"A": 8})
        with pytest.raises(StockAdjustmentConflict, match="'A'"):
            await core.inventory.adjust("A", -3)
        assert await stock_of(core, "A") == (10, 8)
        level = await core.inventory.adjust("A", -2, reason="damaged")
        assert (level.on_hand, level.sellable) == (8, 0)
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_stocktake_sets_on_hand_and_records_the_difference(self, core: OrderCore) -> None:
        """count() sets on_hand to the counted figure; verify() still balances."""
        await core.inventory.receive("A", 10)
        level = await core.inventory.count("A", 7)
        assert level.on_hand == 7
        await core.inventory.count("B", 3)
        assert await core.inventory.sellable("B") == 3
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_percentage_safety_stock_rounds_up_and_follows_on_hand(
        self, core: OrderCore
    ) -> None:
        """5 % of 101 holds back 6 units (rounded up), recomputed as on_hand changes."""
        await core.inventory.receive("A", 101)
        level = await core.inventory.set_safety_stock("A", percent=5)
        assert (level.safety, level.sellable) == (6, 95)
        level = await core.inventory.receive("A", 99)
        assert (level.on_hand, level.safety, level.sellable) == (200, 10, 190)

    @pytest.mark.anyio
    async def test_safety_stock_is_never_sold(self, core: OrderCore) -> None:
        """Absolute safety stock cannot be reserved; sellable never goes negative."""
        await core.inventory.receive("A", 10)
        await core.inventory.set_safety_stock("A", units=3)
        await core.inventory.reserve("o1", {"A": 7})
        with pytest.raises(InsufficientStock) as caught:
            await core.inventory.reserve("o2", {"A": 1})
        assert (caught.value.requested, caught.value.available) == (1, 0)
        level = await core.inventory.set_safety_stock("A", units=5)
        assert level.sellable == 0

    @pytest.mark.anyio
    async def test_bad_stock_input_names_the_field(self, core: OrderCore) -> None:
        """Non-positive receipts and two safety rules at once are typed errors naming the field."""
        with pytest.raises(InvalidInput, match="quantity"):
            await core.inventory.receive("A", 0)
        with pytest.raises(InvalidInput, match="sku"):
            await core.inventory.receive("", 1)
        with pytest.raises(InvalidInput, match="exactly one"):
            await core.inventory.set_safety_stock("A", units=1, percent=5)


class ReservationContract(StorageContractBase):
    """Reserve, release, commit: all or nothing, exactly once."""

    reservation_modes = RESERVING

    @pytest.mark.anyio
    async def test_reserve_holds_stock(self, core: OrderCore, clock: ManualClock) -> None:
        """A reservation raises reserved, lowers sellable and expires after the TTL."""
        await core.inventory.receive("A", 10)
        reservation = await core.inventory.reserve("o1", {"A": 3}, buyer_id="b1")
        assert reservation.status is ReservationStatus.ACTIVE
        assert reservation.lines == (ReservationLine("A", "main", 3),)
        assert reservation.expires_at == clock.now() + TTL
        assert await stock_of(core, "A") == (10, 3)
        assert await core.inventory.sellable("A") == 7
        stored = await core.inventory.reservation("o1")
        assert (stored.id, stored.buyer_id, stored.quantity) == (reservation.id, "b1", 3)

    @pytest.mark.anyio
    async def test_reserve_is_all_or_nothing(self, core: OrderCore) -> None:
        """When one line cannot be held, no line is: the others keep their stock."""
        await core.inventory.receive("A", 10)
        await core.inventory.receive("B", 1)
        with pytest.raises(InsufficientStock) as caught:
            await core.inventory.reserve("o1", {"A": 2, "B": 2})
        assert (caught.value.sku, caught.value.requested, caught.value.available) == ("B", 2, 1)
        assert await stock_of(core, "A") == (10, 0)
        assert await stock_of(core, "B") == (1, 0)
        with pytest.raises(ReservationNotFound):
            await core.inventory.reservation("o1")
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_unknown_sku_takes_nothing(self, core: OrderCore) -> None:
        """A line for a SKU with no stock level raises UnknownSku and holds nothing."""
        await core.inventory.receive("A", 10)
        with pytest.raises(UnknownSku, match="'NOPE'"):
            await core.inventory.reserve("o1", {"A": 1, "NOPE": 1})
        assert await stock_of(core, "A") == (10, 0)

    @pytest.mark.anyio
    async def test_reserving_an_order_twice_takes_stock_once(self, core: OrderCore) -> None:
        """The order id is the idempotency key: a retry returns the first reservation."""
        await core.inventory.receive("A", 10)
        first = await core.inventory.reserve("o1", {"A": 4})
        second = await core.inventory.reserve("o1", {"A": 4})
        assert second.id == first.id
        assert await stock_of(core, "A") == (10, 4)

    @pytest.mark.anyio
    async def test_lines_of_one_sku_are_merged(self, core: OrderCore) -> None:
        """Two lines of one SKU in one warehouse are held as one line of their sum."""
        await core.inventory.receive("A", 10)
        lines = [ReservationLine("A", "main", 2), ReservationLine("A", "main", 3)]
        reservation = await core.inventory.reserve("o1", lines)
        assert reservation.lines == (ReservationLine("A", "main", 5),)
        assert await stock_of(core, "A") == (10, 5)

    @pytest.mark.anyio
    async def test_bad_reservation_requests_are_typed_errors(self, core: OrderCore) -> None:
        """Empty orders, non-positive quantities and empty ids name the offending field."""
        with pytest.raises(InvalidReservation, match="lines"):
            await core.inventory.reserve("o1", {})
        with pytest.raises(InvalidReservation, match=r"lines\[0\]\.quantity"):
            await core.inventory.reserve("o1", {"A": 0})
        with pytest.raises(InvalidReservation, match=r"lines\[0\]\.quantity"):
            await core.inventory.reserve("o1", {"A": -2})
        with pytest.raises(InvalidReservation, match="order_id"):
            await core.inventory.reserve("", {"A": 1})

    @pytest.mark.anyio
    async def test_release_gives_stock_back_exactly_once(self, core: OrderCore) -> None:
        """Releasing returns the units; releasing again changes nothing."""
        await core.inventory.receive("A", 10)
        await core.inventory.reserve("o1", {"A": 4})
        released = await core.inventory.release("o1")
        again = await core.inventory.release("o1")
        assert released.status is again.status is ReservationStatus.RELEASED
        assert await stock_of(core, "A") == (10, 0)
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_commit_ships_the_units_exactly_once(self, core: OrderCore) -> None:
        """Committing lowers on_hand and reserved together; a retry changes nothing."""
        await core.inventory.receive("A", 10)
        await core.inventory.reserve("o1", {"A": 4})
        committed = await core.inventory.commit("o1")
        await core.inventory.commit("o1")
        assert committed.status is ReservationStatus.COMMITTED
        assert await stock_of(core, "A") == (6, 0)
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_shipped_stock_cannot_be_released_nor_released_stock_shipped(
        self, core: OrderCore
    ) -> None:
        """Release after commit and commit after release raise ReservationStateConflict."""
        await core.inventory.receive("A", 10)
        await core.inventory.reserve("shipped", {"A": 1})
        await core.inventory.reserve("cancelled", {"A": 1})
        await core.inventory.commit("shipped")
        await core.inventory.release("cancelled")
        with pytest.raises(ReservationStateConflict, match="committed"):
            await core.inventory.release("shipped")
        with pytest.raises(ReservationStateConflict, match="released"):
            await core.inventory.commit("cancelled")
        assert await stock_of(core, "A") == (9, 0)

    @pytest.mark.anyio
    async def test_unknown_order_on_release_is_a_typed_error(self, core: OrderCore) -> None:
        """Releasing or committing an order with no reservation raises ReservationNotFound."""
        with pytest.raises(ReservationNotFound, match="'ghost'"):
            await core.inventory.release("ghost")
        with pytest.raises(ReservationNotFound, match="'ghost'"):
            await core.inventory.commit("ghost")


class ExpiryContract(StorageContractBase):
    """Expiry and payment-aware leases, judged on the injected clock."""

    reservation_modes = RESERVING

    @pytest.mark.anyio
    async def test_expire_releases_only_due_reservations(
        self, core: OrderCore, clock: ManualClock
    ) -> None:
        """After the TTL the sweep releases unpaid reservations; younger ones stay."""
        await core.inventory.receive("A", 10)
        await core.inventory.reserve("old", {"A": 2})
        clock.advance(TTL / 2)
        await core.inventory.reserve("young", {"A": 3})
        clock.advance(TTL / 2)
        report = await core.inventory.expire()
        assert [r.order_id for r in report.expired] == ["old"]
        assert (await core.inventory.reservation("old")).status is ReservationStatus.EXPIRED
        assert await stock_of(core, "A") == (10, 3)
        assert (await core.inventory.expire()).count == 0
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_sweep_works_in_batches(self, core: OrderCore, clock: ManualClock) -> None:
        """More due reservations than one batch are all expired by one expire() call."""
        await core.inventory.receive("A", 1000)
        count = core.settings.expiry_batch_size * 2 + 7
        for index in range(count):
            await core.inventory.reserve(f"o{index}", {"A": 1})
        clock.advance(TTL)
        assert (await core.inventory.expire()).count == count
        assert (await core.inventory.expire(limit=5)).count == 0
        assert await stock_of(core, "A") == (1000, 0)

    @pytest.mark.anyio
    async def test_payment_in_flight_holds_off_expiry(
        self, core: OrderCore, clock: ManualClock
    ) -> None:
        """A reservation whose payment is in flight is not expired until its grace ends."""
        await core.inventory.receive("A", 10)
        await core.inventory.reserve("o1", {"A": 2})
        clock.advance(TTL - timedelta(minutes=1))
        await core.inventory.begin_payment("o1", hold_for=timedelta(minutes=5))
        clock.advance(timedelta(minutes=2))
        assert (await core.inventory.expire()).count == 0
        clock.advance(timedelta(minutes=3))
        assert (await core.inventory.expire()).count == 1

    @pytest.mark.anyio
    async def test_confirmed_payment_stops_expiry(
        self, core: OrderCore, clock: ManualClock
    ) -> None:
        """A paid reservation never expires; confirming twice is harmless."""
        await core.inventory.receive("A", 10)
        await core.inventory.reserve("o1", {"A": 2})
        first = await core.inventory.confirm_payment("o1")
        second = await core.inventory.confirm_payment("o1")
        assert first.outcome is second.outcome is PaymentOutcome.CONFIRMED
        assert first.reservation.paid
        assert first.reservation.expires_at is None
        clock.advance(TTL * 10)
        assert (await core.inventory.expire()).count == 0
        assert await stock_of(core, "A") == (10, 2)

    @pytest.mark.anyio
    async def test_payment_after_expiry_reserves_again_when_stock_allows(
        self, core: OrderCore, clock: ManualClock
    ) -> None:
        """A late payment takes the stock again if it is still there (RE_RESERVED)."""
        await core.inventory.receive("A", 10)
        await core.inventory.reserve("o1", {"A": 4})
        clock.advance(TTL)
        await core.inventory.expire()
        result = await core.inventory.confirm_payment("o1")
        assert result.outcome is PaymentOutcome.RE_RESERVED
        assert result.reservation.status is ReservationStatus.ACTIVE
        assert result.reservation.paid
        assert await stock_of(core, "A") == (10, 4)
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_payment_after_expiry_without_stock_needs_attention(
        self, core: OrderCore, clock: ManualClock
    ) -> None:
        """A late payment for stock sold meanwhile holds the order; nothing is taken."""
        order = sample_order("o1", lines={"A": 4}, at=clock.now())
        await core.orders.add(order)
        await core.inventory.receive("A", 5)
        await core.inventory.reserve("o1", {"A": 4})
        clock.advance(TTL)
        await core.inventory.expire()
        await core.inventory.reserve("o2", {"A": 5})
        result = await core.inventory.confirm_payment("o1")
        assert result.outcome is PaymentOutcome.NEEDS_ATTENTION
        assert "insufficient stock" in result.reason
        assert result.reservation.status is ReservationStatus.EXPIRED
        assert (await core.orders.get("o1")).status is OrderStatus.ON_HOLD
        assert await stock_of(core, "A") == (5, 5)
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_payment_after_cancellation_needs_attention(self, core: OrderCore) -> None:
        """Paying for a released (cancelled) reservation never re-takes stock silently."""
        await core.inventory.receive("A", 10)
        await core.inventory.reserve("o1", {"A": 4})
        await core.inventory.release("o1")
        result = await core.inventory.confirm_payment("o1")
        assert result.outcome is PaymentOutcome.NEEDS_ATTENTION
        assert await stock_of(core, "A") == (10, 0)

    @pytest.mark.anyio
    async def test_releasing_an_expired_reservation_gives_nothing_twice(
        self, core: OrderCore, clock: ManualClock
    ) -> None:
        """Cancelling an order whose reservation expired is fine and returns no extra stock."""
        await core.inventory.receive("A", 10)
        await core.inventory.reserve("o1", {"A": 4})
        clock.advance(TTL)
        await core.inventory.expire()
        released = await core.inventory.release("o1")
        assert released.status is ReservationStatus.EXPIRED
        assert await stock_of(core, "A") == (10, 0)
        await assert_no_drift(core)


class FlashSaleContract(StorageContractBase):
    """Flash-sale cap and per-buyer limit, across orders and channels."""

    reservation_modes = RESERVING

    @pytest.mark.anyio
    async def test_sale_cap_limits_units_sold(self, core: OrderCore) -> None:
        """With more stock than the cap, the cap still stops the sale; a release frees room."""
        await core.inventory.receive("A", 100)
        await core.inventory.start_flash_sale("A", cap=5)
        await core.inventory.reserve("o1", {"A": 3})
        with pytest.raises(SaleCapReached, match="cap"):
            await core.inventory.reserve("o2", {"A": 3})
        await core.inventory.reserve("o3", {"A": 2})
        assert await core.inventory.remaining("A") == 0
        await core.inventory.release("o1")
        assert await core.inventory.remaining("A") == 3
        await core.inventory.reserve("o2", {"A": 3})
        assert await stock_of(core, "A") == (100, 5)
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_remaining_is_the_smaller_of_stock_and_cap(self, core: OrderCore) -> None:
        """The display counter shows min(sellable, cap remaining)."""
        await core.inventory.receive("A", 4, warehouse="east")
        await core.inventory.receive("A", 4, warehouse="west")
        assert await core.inventory.remaining("A") == 8
        await core.inventory.start_flash_sale("A", cap=20)
        assert await core.inventory.remaining("A") == 8
        await core.inventory.start_flash_sale("A", cap=3)
        assert await core.inventory.remaining("A") == 3

    @pytest.mark.anyio
    async def test_per_buyer_limit_holds_across_orders(self, core: OrderCore) -> None:
        """A buyer cannot pass the limit over several orders; another buyer can still buy."""
        await core.inventory.receive("A", 100)
        await core.inventory.start_flash_sale("A", per_buyer_limit=2)
        await core.inventory.reserve("taobao-1", {"A": 1}, buyer_id="alice")
        await core.inventory.reserve("jd-1", {"A": 1}, buyer_id="alice")
        with pytest.raises(BuyerLimitExceeded, match="'alice'"):
            await core.inventory.reserve("pdd-1", {"A": 1}, buyer_id="alice")
        with pytest.raises(BuyerLimitExceeded):
            await core.inventory.reserve("bob-1", {"A": 3}, buyer_id="bob")
        await core.inventory.reserve("bob-2", {"A": 2}, buyer_id="bob")
        await core.inventory.release("jd-1")
        await core.inventory.reserve("pdd-1", {"A": 1}, buyer_id="alice")
        assert await stock_of(core, "A") == (100, 4)
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_per_buyer_limit_needs_a_buyer(self, core: OrderCore) -> None:
        """Reserving a limited SKU without a buyer id is refused, naming buyer_id."""
        await core.inventory.receive("A", 10)
        await core.inventory.start_flash_sale("A", per_buyer_limit=1)
        with pytest.raises(InvalidReservation, match="buyer_id"):
            await core.inventory.reserve("o1", {"A": 1})
        assert await stock_of(core, "A") == (10, 0)

    @pytest.mark.anyio
    async def test_only_units_sold_under_the_sale_count(self, core: OrderCore) -> None:
        """Reservations made before a sale neither use its cap nor refund it when released."""
        await core.inventory.receive("A", 100)
        await core.inventory.reserve("before", {"A": 10})
        await core.inventory.start_flash_sale("A", cap=5)
        await core.inventory.reserve("during", {"A": 5})
        await core.inventory.release("before")
        sale = await core.inventory.flash_sale("A")
        assert sale is not None
        assert sale.sold == 5
        with pytest.raises(SaleCapReached):
            await core.inventory.reserve("late", {"A": 1})
        await assert_no_drift(core)

    @pytest.mark.anyio
    async def test_a_cap_below_units_sold_is_refused(self, core: OrderCore) -> None:
        """Lowering a running sale's cap under what it sold names cap; raising it works."""
        await core.inventory.receive("A", 100)
        await core.inventory.start_flash_sale("A", cap=10)
        await core.inventory.reserve("o1", {"A": 6})
        with pytest.raises(InvalidInput, match="cap"):
            await core.inventory.start_flash_sale("A", cap=5)
        sale = await core.inventory.start_flash_sale("A", cap=6)
        assert (sale.cap, sale.sold) == (6, 6)
        assert await core.inventory.remaining("A") == 0

    @pytest.mark.anyio
    async def test_ending_a_sale_lifts_its_limits(self, core: OrderCore) -> None:
        """After end_flash_sale the cap and buyer limits no longer apply."""
        await core.inventory.receive("A", 100)
        await core.inventory.start_flash_sale("A", cap=1, per_buyer_limit=1)
        await core.inventory.reserve("o1", {"A": 1}, buyer_id="alice")
        await core.inventory.end_flash_sale("A")
        assert await core.inventory.flash_sale("A") is None
        await core.inventory.reserve("o2", {"A": 5}, buyer_id="alice")
        await core.inventory.release("o1")
        assert await stock_of(core, "A") == (100, 5)
        await assert_no_drift(core)


class UnitOfWorkContract(StorageContractBase):
    """A unit of work is all or nothing."""

    reservation_modes = RESERVING

    @pytest.mark.anyio
    async def test_uncommitted_work_is_discarded(self, core: OrderCore) -> None:
        """Leaving a unit without commit, or by an exception, rolls every change back."""
        await core.inventory.receive("A", 10)
        draft = core.inventory.draft("o1", {"A": 3})
        async with core.storage.unit_of_work() as uow:
            await uow.inventory.reserve(draft)
        with pytest.raises(RuntimeError):  # noqa: PT012 - the raise must happen inside the unit
            async with core.storage.unit_of_work() as uow:
                await uow.inventory.reserve(draft)
                raise RuntimeError("boom")
        assert await stock_of(core, "A") == (10, 0)
        with pytest.raises(ReservationNotFound):
            await core.inventory.reservation("o1")

    @pytest.mark.anyio
    async def test_a_failed_primitive_leaves_no_partial_change(self, core: OrderCore) -> None:
        """A reserve that fails on its second line leaves no trace even if the unit commits."""
        await core.inventory.receive("A", 10)
        await core.inventory.receive("B", 1)
        async with core.storage.unit_of_work() as uow:
            with pytest.raises(InsufficientStock):
                await uow.inventory.reserve(core.inventory.draft("o1", {"A": 2, "B": 5}))
            await uow.inventory.receive("C", "main", 1, clock_now(core), reason="r", reference="")
            await uow.commit()
        assert await stock_of(core, "A") == (10, 0)
        assert await stock_of(core, "C") == (1, 0)
        with pytest.raises(ReservationNotFound):
            await core.inventory.reservation("o1")
        await assert_no_drift(core)


class StorageContract(
    StockContract,
    ReservationContract,
    ExpiryContract,
    FlashSaleContract,
    UnitOfWorkContract,
    BatchContract,
    ConcurrencyContract,
    OrderContract,
    IntakeContract,
    TokenContract,
    TicketContract,
    OutboxContract,
    WaybillContract,
    ShipmentContract,
    ShipmentFlowContract,
    StockPushContract,
    RoutingContract,
    AfterSaleContract,
):
    """The whole storage contract. Mix in and provide ``make_storage``."""
