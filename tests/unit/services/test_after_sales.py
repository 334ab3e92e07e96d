"""After-sales sync over the fake channel: exactly once, own cursor, linking, interception."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from ordercore import OrderCore, Settings
from ordercore.domain.after_sales import AfterSaleStatus, InspectionLine
from ordercore.domain.intake import Feed, RunStatus
from ordercore.domain.inventory import ReservationStatus
from ordercore.domain.orders import OrderStatus
from ordercore.errors import ChannelAuthExpired, InvalidInput
from ordercore.ports.clock import ManualClock
from ordercore.sync import SyncOrderCore
from ordercore.testing.after_sales_channel import FakeAfterSalesChannel, fake_after_sale_payload
from ordercore.testing.channels import FakeChannel, FakePlatform, fake_order_payload

START = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def platform(clock: ManualClock) -> FakePlatform:
    return FakePlatform(clock)


@pytest.fixture
def channel(platform: FakePlatform) -> FakeAfterSalesChannel:
    return FakeAfterSalesChannel("fake-shop", platform)


@pytest.fixture
async def core(clock: ManualClock) -> AsyncIterator[OrderCore]:
    async with OrderCore.open("memory://", clock=clock, settings=Settings()) as opened:
        await opened.inventory.receive("SKU-1", 1_000)
        yield opened


async def cursor_of(core: OrderCore, feed: Feed) -> datetime | None:
    async with core.storage.unit_of_work() as uow:
        cursor = await uow.intake.cursor("fake-shop", feed)
    return cursor.position if cursor else None


@pytest.mark.anyio
async def test_a_sync_stores_every_request_once_over_windows_and_pages(
    core: OrderCore, channel: FakeAfterSalesChannel, clock: ManualClock
) -> None:
    """180 requests over 3 hours (windows of 30 min, pages of 20) are stored once each."""
    for index in range(180):
        channel.put_after_sale(
            fake_after_sale_payload(f"R{index}", f"T{index}"), at=START + timedelta(minutes=index)
        )
    clock.set(START + timedelta(hours=3, minutes=1))
    run = await core.after_sales.sync(channel, first_sync_from=START)
    assert run.status is RunStatus.SUCCEEDED
    assert run.feed is Feed.AFTER_SALES
    assert (run.created, run.fetched, run.windows) == (180, 180, 7)
    assert run.pages == 6 * 2 + 1
    assert len(await core.after_sales.list(limit=500)) == 180
    assert (await core.intake.runs("fake-shop"))[0].id == run.id


@pytest.mark.anyio
async def test_the_after_sales_cursor_is_its_own(
    core: OrderCore, channel: FakeAfterSalesChannel, clock: ManualClock
) -> None:
    """An after-sales run moves the after_sales cursor and leaves the orders cursor alone."""
    channel.put_after_sale(fake_after_sale_payload("R1", "T1"), at=START)
    clock.set(START + timedelta(minutes=20))
    run = await core.after_sales.sync(channel, first_sync_from=START)
    assert await cursor_of(core, Feed.AFTER_SALES) == run.cursor_after
    assert await cursor_of(core, Feed.ORDERS) is None


@pytest.mark.anyio
async def test_re_polls_store_each_version_once_and_newer_versions_win(
    core: OrderCore, channel: FakeAfterSalesChannel, clock: ManualClock
) -> None:
    """The lookback overlap is unchanged; a newer platform version replaces the stored one."""
    channel.put_after_sale(fake_after_sale_payload("R1", "T1", status="WAIT_SELLER"), at=START)
    clock.set(START + timedelta(minutes=5))
    await core.after_sales.sync(channel, first_sync_from=START)
    clock.advance(timedelta(minutes=5))
    again = await core.after_sales.sync(channel)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    channel.put_after_sale(fake_after_sale_payload("R1", "T1", status="SUCCESS"))
    clock.advance(timedelta(minutes=5))
    newer = await core.after_sales.sync(channel)
    assert (newer.created, newer.updated) == (0, 1)
    stored = await core.after_sales.get("fake-shop:R1")
    assert (stored.status, stored.version) == (AfterSaleStatus.REFUNDED, 2)


@pytest.mark.anyio
async def test_requests_link_to_their_order_now_or_when_it_arrives(
    core: OrderCore, platform: FakePlatform, channel: FakeAfterSalesChannel, clock: ManualClock
) -> None:
    """A request of a stored order is linked; one of an unseen order waits and is reported."""
    platform.put(fake_order_payload("T1", status="PAID"), at=START)
    channel.put_after_sale(fake_after_sale_payload("R1", "T1"), at=START)
    channel.put_after_sale(fake_after_sale_payload("R2", "T2"), at=START)
    clock.set(START + timedelta(minutes=5))
    await core.intake.sync(channel, first_sync_from=START)
    run = await core.after_sales.sync(channel, first_sync_from=START)
    assert any("wait for their order" in error and "R2" in error for error in run.errors)
    order_1 = await core.orders.find("fake-shop", "T1")
    assert (await core.after_sales.get("fake-shop:R1")).order_id == order_1.id
    assert [item.external_id for item in await core.after_sales.list(unlinked_only=True)] == ["R2"]
    platform.put(fake_order_payload("T2", status="PAID"))
    clock.advance(timedelta(minutes=5))
    await core.intake.sync(channel)
    await core.after_sales.sync(channel)
    order_2 = await core.orders.find("fake-shop", "T2")
    assert (await core.after_sales.get("fake-shop:R2")).order_id == order_2.id
    assert await core.after_sales.list(unlinked_only=True) == []


@pytest.mark.anyio
async def test_a_request_that_does_not_map_is_kept_as_a_reject(
    core: OrderCore, channel: FakeAfterSalesChannel, clock: ManualClock
) -> None:
    """An unknown request type is rejected whole (kind after_sale); the cursor still moves."""
    channel.put_after_sale(fake_after_sale_payload("R1", "T1", kind="TELEPORT"), at=START)
    clock.set(START + timedelta(minutes=5))
    run = await core.after_sales.sync(channel, first_sync_from=START)
    assert (run.status, run.rejected, run.created) == (RunStatus.SUCCEEDED, 1, 0)
    rejects = await core.intake.rejects("fake-shop")
    assert [(r.external_id, r.kind.value) for r in rejects] == [("R1", "after_sale")]
    assert await cursor_of(core, Feed.AFTER_SALES) == run.cursor_after


@pytest.mark.anyio
async def test_a_failing_window_keeps_the_cursor_before_it(
    core: OrderCore, platform: FakePlatform, channel: FakeAfterSalesChannel, clock: ManualClock
) -> None:
    """A platform outage fails the run closed: nothing stored, the cursor does not move."""
    channel.put_after_sale(fake_after_sale_payload("R1", "T1"), at=START)
    clock.set(START + timedelta(minutes=5))
    platform.fail_pages = 1
    run = await core.after_sales.sync(channel, first_sync_from=START)
    assert run.status is RunStatus.FAILED
    assert await cursor_of(core, Feed.AFTER_SALES) is None
    assert await core.after_sales.list() == []


@pytest.mark.anyio
async def test_expired_credentials_pause_the_feed(
    core: OrderCore, platform: FakePlatform, channel: FakeAfterSalesChannel, clock: ManualClock
) -> None:
    """Expired credentials record a paused run and raise ChannelAuthExpired."""
    platform.credentials_expire_at = START
    clock.set(START + timedelta(minutes=5))
    with pytest.raises(ChannelAuthExpired):
        await core.after_sales.sync(channel, first_sync_from=START)
    runs = await core.intake.runs("fake-shop")
    assert [(run.feed, run.status) for run in runs] == [(Feed.AFTER_SALES, RunStatus.PAUSED)]


@pytest.mark.anyio
async def test_a_channel_without_an_after_sales_feed_is_refused(
    core: OrderCore, platform: FakePlatform
) -> None:
    """Syncing after-sales of an adapter that has none raises InvalidInput naming it."""
    with pytest.raises(InvalidInput, match="no after-sales feed"):
        await core.after_sales.sync(FakeChannel("plain", platform))


@pytest.mark.anyio
async def test_an_agreed_refund_of_an_unshipped_order_is_intercepted_once(
    core: OrderCore, platform: FakePlatform, channel: FakeAfterSalesChannel, clock: ManualClock
) -> None:
    """The order is cancelled, its stock released and the hand-over recorded."""
    platform.put(fake_order_payload("T1", status="PAID", qty=2), at=START)
    channel.put_after_sale(
        fake_after_sale_payload("R1", "T1", kind="REFUND", status="AGREED", qty=2), at=START
    )
    clock.set(START + timedelta(minutes=5))
    await core.intake.sync(channel, first_sync_from=START)
    assert await core.inventory.sellable("SKU-1") == 998
    await core.after_sales.sync(channel, first_sync_from=START)
    order = await core.orders.find("fake-shop", "T1")
    assert order.status is OrderStatus.CANCELLED
    assert (await core.inventory.reservation(order.id)).status is ReservationStatus.RELEASED
    assert await core.inventory.sellable("SKU-1") == 1_000
    stored = await core.after_sales.get("fake-shop:R1")
    assert stored.handed_over_at is not None
    assert await core.after_sales.pending_handover() == []


@pytest.mark.anyio
async def test_a_refund_not_yet_agreed_or_of_part_of_the_order_is_not_intercepted(
    core: OrderCore, platform: FakePlatform, channel: FakeAfterSalesChannel, clock: ManualClock
) -> None:
    """A mere request, and an agreed refund of 1 of 2 units, leave the order to ship."""
    platform.put(fake_order_payload("T1", status="PAID", qty=2), at=START)
    platform.put(fake_order_payload("T2", status="PAID", qty=2), at=START)
    channel.put_after_sale(
        fake_after_sale_payload("R1", "T1", kind="REFUND", status="WAIT_SELLER", qty=2), at=START
    )
    channel.put_after_sale(
        fake_after_sale_payload("R2", "T2", kind="REFUND", status="AGREED", qty=1), at=START
    )
    clock.set(START + timedelta(minutes=5))
    await core.intake.sync(channel, first_sync_from=START)
    run = await core.after_sales.sync(channel, first_sync_from=START)
    for external_id in ("T1", "T2"):
        order = await core.orders.find("fake-shop", external_id)
        assert order.status is OrderStatus.PAID
    assert any("refunds part of unshipped order" in error for error in run.errors)


@pytest.mark.anyio
async def test_a_synced_return_is_inspected_and_restocked(
    core: OrderCore, channel: FakeAfterSalesChannel, clock: ManualClock
) -> None:
    """A return pulled from the channel restocks its sellable units on inspection."""
    channel.put_after_sale(fake_after_sale_payload("R1", "T1", qty=3), at=START)
    clock.set(START + timedelta(minutes=5))
    await core.after_sales.sync(channel, first_sync_from=START)
    await core.after_sales.inspect(
        "fake-shop:R1", [InspectionLine(sku="SKU-1", sellable=2, scrap=1)], "wh-ann"
    )
    assert await core.inventory.sellable("SKU-1") == 1_002


def test_the_blocking_twin_syncs_and_inspects(clock: ManualClock, platform: FakePlatform) -> None:
    """SyncOrderCore.after_sales syncs and inspects without await."""
    channel = FakeAfterSalesChannel("fake-shop", platform)
    channel.put_after_sale(fake_after_sale_payload("R1", "T1", qty=1), at=START)
    clock.set(START + timedelta(minutes=5))
    with SyncOrderCore.open("memory://", clock=clock) as core:
        run = core.after_sales.sync(channel, first_sync_from=START)
        report = core.after_sales.inspect(
            "fake-shop:R1", [InspectionLine(sku="SKU-1", sellable=1)], "ann"
        )
        assert run.created == 1
        assert report.created
        assert core.inventory.sellable("SKU-1") == 1
