"""Channel intake over the fake channel: exactly-once storage, cursors, ledger, webhooks."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from ordercore import OrderCore, Settings
from ordercore.domain.intake import RunStatus
from ordercore.domain.orders import OrderStatus
from ordercore.errors import ChannelAuthExpired, SignatureInvalid, StorageUnavailable
from ordercore.ports.clock import ManualClock
from ordercore.testing.channels import FakeChannel, FakePlatform, fake_order_payload

START = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def platform(clock: ManualClock) -> FakePlatform:
    return FakePlatform(clock)


@pytest.fixture
def channel(platform: FakePlatform) -> FakeChannel:
    return FakeChannel("fake-shop", platform)


@pytest.fixture
async def core(clock: ManualClock) -> AsyncIterator[OrderCore]:
    async with OrderCore.open("memory://", clock=clock, settings=Settings()) as opened:
        await opened.inventory.receive("SKU-1", 100_000)
        yield opened


def spread_orders(platform: FakePlatform, count: int, span: timedelta) -> None:
    """``count`` paid orders modified evenly over ``span`` from START."""
    for index in range(count):
        platform.put(fake_order_payload(f"T{index}"), at=START + span * index / count)


@pytest.mark.anyio
async def test_a_sync_stores_every_order_once_and_reserves_it(
    core: OrderCore, platform: FakePlatform, channel: FakeChannel, clock: ManualClock
) -> None:
    """All orders of several windows and pages are stored once, reserved, and logged."""
    spread_orders(platform, 240, timedelta(hours=3))
    clock.set(START + timedelta(hours=4))
    run = await core.intake.sync(channel, first_sync_from=START)
    assert run.status is RunStatus.SUCCEEDED
    assert (run.created, run.fetched, run.rejected) == (240, 240, 0)
    assert run.windows == 4
    assert run.cursor_after == START + timedelta(hours=4) - timedelta(seconds=30)
    assert len(await core.orders.list(limit=1000)) == 240
    assert (await core.inventory.stock("SKU-1")).reserved == 240
    clock.advance(timedelta(minutes=1))
    again = await core.intake.sync(channel)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 0)  # lookback only
    assert [r.id for r in await core.intake.runs("fake-shop")] == [again.id, run.id]
    assert await core.inventory.verify() == []


@pytest.mark.anyio
async def test_poll_and_webhooks_in_any_order_store_each_order_once_at_its_newest(
    core: OrderCore, platform: FakePlatform, channel: FakeChannel, clock: ManualClock
) -> None:
    """1,000 orders by webhook (shuffled, duplicated, stale) and by poll: 1,000 stored."""
    rng = random.Random(7)
    deliveries = []
    for index in range(1_000):
        payload = fake_order_payload(f"W{index}", status="UNPAID", qty=1)
        platform.put(payload, at=START + timedelta(seconds=index))
        first = channel.webhook(f"m{index}-a", [payload])
        paid = fake_order_payload(f"W{index}", status="PAID", qty=1, note="v2")
        platform.put(paid, at=START + timedelta(seconds=index, milliseconds=500))
        second = channel.webhook(f"m{index}-b", [paid])
        deliveries += [second, first, first]  # newest first, then stale, then a replay
    rng.shuffle(deliveries)
    for headers, body in deliveries[: len(deliveries) // 2]:
        await core.intake.ingest_webhook(channel, headers, body)
    clock.set(START + timedelta(hours=1))
    await core.intake.sync(channel, first_sync_from=START)
    for headers, body in deliveries[len(deliveries) // 2 :]:
        await core.intake.ingest_webhook(channel, headers, body)
    orders = await core.orders.list(limit=5_000)
    assert len(orders) == 1_000
    assert {order.status for order in orders} == {OrderStatus.PAID}
    assert {order.remark for order in orders} <= {""}  # fake mapping keeps no note
    assert all(order.source_modified_at is not None for order in orders)
    assert (await core.inventory.stock("SKU-1")).reserved == 1_000
    assert await core.inventory.verify() == []


@pytest.mark.anyio
async def test_a_failed_page_keeps_the_cursor_and_the_next_run_resumes(
    core: OrderCore, platform: FakePlatform, channel: FakeChannel, clock: ManualClock
) -> None:
    """A platform error mid-run stops before that window; the next run loses nothing."""
    spread_orders(platform, 300, timedelta(hours=3))
    clock.set(START + timedelta(hours=3, minutes=30))
    fetches = {"n": 0}
    original = channel.fetch_orders

    async def failing_second_window(window, page):  # type: ignore[no-untyped-def]
        fetches["n"] += 1
        if window.start >= START + timedelta(hours=1) and fetches["n"] < 10:
            platform.fail_pages = 1
        return await original(window, page)

    channel.fetch_orders = failing_second_window  # type: ignore[method-assign]
    first = await core.intake.sync(channel, first_sync_from=START)
    assert first.status is RunStatus.PARTIAL
    assert first.cursor_after == START + timedelta(hours=1)
    assert 0 < first.created < 300
    assert any("503" in error for error in first.errors)
    channel.fetch_orders = original  # type: ignore[method-assign]
    second = await core.intake.sync(channel)
    assert second.status is RunStatus.SUCCEEDED
    assert first.created + second.created == 300
    assert len(await core.orders.list(limit=1000)) == 300


@pytest.mark.anyio
async def test_a_short_window_is_rescanned_then_fails_closed(
    clock: ManualClock, platform: FakePlatform, channel: FakeChannel
) -> None:
    """Fewer records than the platform's total: re-scan; still short: cursor stays put."""
    spread_orders(platform, 20, timedelta(minutes=30))
    clock.set(START + timedelta(hours=1))
    async with OrderCore.open("memory://", clock=clock) as core:
        await core.inventory.receive("SKU-1", 100)
        platform.lose_on_next_scan = 3
        healed = await core.intake.sync(channel, first_sync_from=START)
        assert (healed.status, healed.created) == (RunStatus.SUCCEEDED, 20)
    async with OrderCore.open(
        "memory://", clock=clock, settings=Settings(window_rescans=0)
    ) as core:
        await core.inventory.receive("SKU-1", 100)
        platform.lose_on_next_scan = 3
        short = await core.intake.sync(channel, first_sync_from=START)
        assert short.status is RunStatus.FAILED
        assert short.cursor_after is None
        assert "platform reports [20]" in short.errors[0]
        assert len(await core.orders.list()) == 0


@pytest.mark.anyio
async def test_forged_tampered_and_replayed_webhooks_store_nothing(
    core: OrderCore,
    platform: FakePlatform,
    channel: FakeChannel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Bad signatures raise SignatureInvalid and are logged; a replay is recognised and ignored."""
    payload = fake_order_payload("X1")
    platform.put(payload)
    headers, body = channel.webhook("msg-1", [payload])
    with (
        caplog.at_level(logging.WARNING, logger="ordercore.intake"),
        pytest.raises(SignatureInvalid),
    ):
        await core.intake.ingest_webhook(channel, headers, body.replace(b"59.00", b"0.01"))
    (logged,) = caplog.records
    assert (logged.getMessage(), logged.channel) == ("webhook rejected", "fake-shop")  # type: ignore[attr-defined]
    assert "13912345678" not in str(logged.__dict__)
    forged = {**headers, "X-Fake-Signature": "0" * 64}
    with pytest.raises(SignatureInvalid):
        await core.intake.ingest_webhook(channel, forged, body)
    assert await core.orders.list() == []
    first = await core.intake.ingest_webhook(channel, headers, body)
    replay = await core.intake.ingest_webhook(channel, headers, body)
    assert (first.replayed, first.stored.created) == (False, 1)
    assert (replay.replayed, replay.stored.created) == (True, 0)


@pytest.mark.anyio
async def test_expired_credentials_pause_the_channel_until_reauthorised(
    core: OrderCore, platform: FakePlatform, channel: FakeChannel, clock: ManualClock
) -> None:
    """An expired token pauses the channel (PAUSED in the ledger); afterwards it backfills."""
    spread_orders(platform, 50, timedelta(hours=1))
    clock.set(START + timedelta(hours=2))
    platform.credentials_expire_at = START + timedelta(hours=1)
    with pytest.raises(ChannelAuthExpired):
        await core.intake.sync(channel, first_sync_from=START)
    paused = (await core.intake.runs("fake-shop"))[0]
    assert paused.status is RunStatus.PAUSED
    platform.credentials_expire_at = START + timedelta(days=30)
    resumed = await core.intake.sync(channel, first_sync_from=START)
    assert (resumed.status, resumed.created) == (RunStatus.SUCCEEDED, 50)


@pytest.mark.anyio
async def test_a_cancellation_on_the_platform_releases_the_stock(
    core: OrderCore, platform: FakePlatform, channel: FakeChannel, clock: ManualClock
) -> None:
    """An order cancelled on the platform is cancelled here and its units come back."""
    platform.put(fake_order_payload("C1", qty=3), at=START)
    clock.set(START + timedelta(minutes=20))
    await core.intake.sync(channel, first_sync_from=START)
    assert (await core.inventory.stock("SKU-1")).reserved == 3
    platform.put(fake_order_payload("C1", status="CANCELLED", qty=3))
    clock.advance(timedelta(minutes=5))
    run = await core.intake.sync(channel)
    assert run.updated == 1
    assert (await core.orders.get("fake-shop:C1")).status is OrderStatus.CANCELLED
    assert (await core.inventory.stock("SKU-1")).reserved == 0


@pytest.mark.anyio
async def test_unmappable_orders_are_kept_for_replay_and_masked_in_the_ledger(
    core: OrderCore, platform: FakePlatform, channel: FakeChannel, clock: ManualClock
) -> None:
    """A bad record is rejected whole into the rejects store; the ledger hides the phone."""
    bad = fake_order_payload("B1")
    bad["items"][0]["qty"] = "lots"
    bad["phone"] = "not a phone 13912345678"
    bad["status"] = "WEIRD"
    platform.put(bad, at=START)
    platform.put(fake_order_payload("G1"), at=START)
    clock.set(START + timedelta(minutes=20))
    run = await core.intake.sync(channel, first_sync_from=START)
    assert (run.created, run.rejected) == (1, 1)
    assert "items[0].qty" in run.errors[0]
    assert "13912345678" not in " ".join(run.errors)
    (reject,) = await core.intake.rejects("fake-shop")
    assert reject.payload == bad
    assert reject.external_id == "B1"


@pytest.mark.anyio
async def test_weak_orders_enter_the_review_queue_with_their_reasons(
    core: OrderCore, platform: FakePlatform, channel: FakeChannel, clock: ManualClock
) -> None:
    """An order with a vague address and a dead phone is queued for review; a good one is not."""
    weak = fake_order_payload("V1")
    weak["address"] = "火车站对面"
    weak["phone"] = "12345"
    platform.put(weak, at=START)
    platform.put(fake_order_payload("G1"), at=START)
    clock.set(START + timedelta(minutes=20))
    await core.intake.sync(channel, first_sync_from=START)
    (entry,) = await core.intake.review_queue("fake-shop")
    assert entry.order_id == "fake-shop:V1"
    assert entry.score < 80
    assert any("vague" in reason for reason in entry.reasons)
    assert await core.intake.resolve_review("fake-shop:V1")
    assert await core.intake.review_queue() == []


@pytest.mark.anyio
async def test_a_storage_failure_stops_the_run_at_the_last_stored_window(
    core: OrderCore, platform: FakePlatform, channel: FakeChannel, clock: ManualClock
) -> None:
    """With windows read ahead, a failed store still leaves the cursor after the last good one."""
    spread_orders(platform, 300, timedelta(hours=3))
    clock.set(START + timedelta(hours=3, minutes=30))
    original = core.intake._store
    calls = {"n": 0}

    async def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise StorageUnavailable("database restarting")
        return await original(*args, **kwargs)

    core.intake._store = flaky  # type: ignore[method-assign]
    run = await core.intake.sync(channel, first_sync_from=START)
    assert run.status is RunStatus.PARTIAL
    assert run.cursor_after == START + timedelta(hours=1)
    assert "database restarting" in run.errors[-1]
    core.intake._store = original  # type: ignore[method-assign]
    again = await core.intake.sync(channel)
    assert run.created + again.created == 300


@pytest.mark.anyio
async def test_a_runs_new_orders_are_reserved_together_when_it_ends(
    core: OrderCore, platform: FakePlatform, channel: FakeChannel, clock: ManualClock
) -> None:
    """Orders of earlier windows are stored at once but reserved with the whole run."""
    spread_orders(platform, 240, timedelta(hours=3))
    clock.set(START + timedelta(hours=4))
    original = channel.fetch_orders
    seen: list[tuple[int, int]] = []

    async def observing(window, page):  # type: ignore[no-untyped-def]
        if page is None:
            stored = len(await core.orders.list(limit=1000))
            seen.append((stored, (await core.inventory.stock("SKU-1")).reserved))
        return await original(window, page)

    channel.fetch_orders = observing  # type: ignore[method-assign]
    run = await core.intake.sync(channel, first_sync_from=START)
    assert run.created == 240
    assert seen[-1][0] > 0
    assert all(reserved == 0 for _, reserved in seen)
    assert (await core.inventory.stock("SKU-1")).reserved == 240


@pytest.mark.anyio
async def test_a_cancellation_frees_stock_for_new_orders_later_in_the_same_run(
    clock: ManualClock, platform: FakePlatform, channel: FakeChannel
) -> None:
    """Releases are applied before the reservations of later windows: freed units are sold."""
    async with OrderCore.open("memory://", clock=clock) as core:
        await core.inventory.receive("SKU-1", 1)
        platform.put(fake_order_payload("A1"), at=START)
        clock.set(START + timedelta(minutes=20))
        await core.intake.sync(channel, first_sync_from=START)
        platform.put(fake_order_payload("A1", status="CANCELLED"), at=START + timedelta(minutes=30))
        platform.put(fake_order_payload("B1"), at=START + timedelta(hours=2))
        clock.set(START + timedelta(hours=3))
        run = await core.intake.sync(channel)
        assert run.windows > 1
        assert (run.created, run.updated, run.errors) == (1, 1, ())
        assert (await core.inventory.reservation("fake-shop:B1")).lines[0].quantity == 1
        assert (await core.inventory.stock("SKU-1")).reserved == 1


@pytest.mark.anyio
async def test_a_run_that_stops_early_still_reserves_what_it_stored(
    core: OrderCore, platform: FakePlatform, channel: FakeChannel, clock: ManualClock
) -> None:
    """Orders of the windows stored before a failure are reserved when the run ends."""
    spread_orders(platform, 300, timedelta(hours=3))
    clock.set(START + timedelta(hours=3, minutes=30))
    original = channel.fetch_orders

    async def failing_later_windows(window, page):  # type: ignore[no-untyped-def]
        if window.start >= START + timedelta(hours=1):
            platform.fail_pages = 1
        return await original(window, page)

    channel.fetch_orders = failing_later_windows  # type: ignore[method-assign]
    run = await core.intake.sync(channel, first_sync_from=START)
    assert run.status is RunStatus.PARTIAL
    assert run.created > 0
    assert (await core.inventory.stock("SKU-1")).reserved == run.created
