"""Replay of windows and rejects, and the reconciliation pass, over the fake channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from ordercore import OrderCore, Settings
from ordercore.domain.channels import TimeWindow
from ordercore.domain.intake import Feed, RunStatus
from ordercore.errors import InvalidInput
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
        await opened.inventory.receive("SKU-1", 1_000)
        yield opened


async def _stored(core: OrderCore, external_id: str) -> bool:
    async with core.storage.unit_of_work() as uow:
        return await uow.orders.get_by_external("fake-shop", external_id) is not None


async def _cursor(core: OrderCore) -> datetime | None:
    async with core.storage.unit_of_work() as uow:
        cursor = await uow.intake.cursor("fake-shop", Feed.ORDERS)
    return cursor.position if cursor else None


@pytest.mark.anyio
async def test_replay_window_stores_the_window_without_moving_the_cursor(
    core: OrderCore, platform: FakePlatform, channel: FakeChannel, clock: ManualClock
) -> None:
    """Orders of a replayed window are stored and reserved; the cursor stays; trigger replay."""
    for index in range(30):
        platform.put(fake_order_payload(f"R{index}"), at=START + timedelta(minutes=index))
    clock.set(START + timedelta(hours=3))
    run = await core.replay.replay_window(channel, START, START + timedelta(minutes=20))
    assert (run.trigger, run.status, run.created, run.fetched) == (
        "replay",
        RunStatus.SUCCEEDED,
        20,
        20,
    )
    assert await _cursor(core) is None
    assert (await core.inventory.stock("SKU-1")).reserved == 20
    again = await core.replay.replay_window(channel, START, START + timedelta(hours=2))
    assert (again.created, again.unchanged, again.windows) == (10, 20, 2)
    assert (await core.inventory.stock("SKU-1")).reserved == 30


@pytest.mark.anyio
async def test_replay_window_rejects_an_empty_window(core: OrderCore, channel: FakeChannel) -> None:
    """A window that ends before it starts is InvalidInput."""
    with pytest.raises(InvalidInput, match="window"):
        await core.replay.replay_window(channel, START, START)


@pytest.mark.anyio
async def test_replay_window_rescans_then_fails_closed_on_a_short_window(
    core: OrderCore, platform: FakePlatform, channel: FakeChannel, clock: ManualClock
) -> None:
    """A scan short of the total is re-scanned; still short, the replay FAILS and stores nothing."""
    for index in range(5):
        platform.put(fake_order_payload(f"S{index}"), at=START + timedelta(minutes=index))
    clock.set(START + timedelta(hours=1))
    platform.lose_on_next_scan = 2
    healed = await core.replay.replay_window(channel, START, START + timedelta(minutes=30))
    assert (healed.status, healed.created) == (RunStatus.SUCCEEDED, 5)
    async with OrderCore.open(
        "memory://", clock=clock, settings=Settings(window_rescans=0)
    ) as strict:
        platform.lose_on_next_scan = 2
        run = await strict.replay.replay_window(channel, START, START + timedelta(minutes=30))
        assert run.status is RunStatus.FAILED
        assert "IncompleteWindow" in run.errors[0]
        assert await strict.orders.list() == []


@pytest.mark.anyio
async def test_replay_rejects_stores_and_resolves_what_now_maps(
    core: OrderCore, platform: FakePlatform, channel: FakeChannel, clock: ManualClock
) -> None:
    """A reject whose payload maps under the current mapping is stored and resolved."""
    bad = fake_order_payload("X1")
    bad["items"][0]["qty"] = 0
    platform.put(bad, at=START + timedelta(minutes=1))
    platform.put(fake_order_payload("X2"), at=START + timedelta(minutes=2))
    clock.set(START + timedelta(hours=1))
    await core.intake.sync(channel, first_sync_from=START)
    [kept] = await core.intake.rejects("fake-shop")
    still = await core.replay.replay_rejects(channel)
    assert (still.resolved, still.still_rejected) == ([], [kept.id])

    async with core.storage.unit_of_work() as uow:  # the operator fixes the kept payload
        fixed = kept.model_copy(update={"id": "fixed", "payload": fake_order_payload("X1")})
        await uow.intake.resolve_reject(kept.id, clock.now())
        await uow.intake.add_rejects([fixed])
        await uow.commit()
    outcome = await core.replay.replay_rejects(channel)
    assert outcome.resolved == ["fixed"]
    assert (outcome.run.trigger, outcome.run.created) == ("replay", 1)
    assert await _stored(core, "X1")
    assert await core.intake.rejects("fake-shop") == []


@pytest.mark.anyio
async def test_reconcile_reports_orders_the_store_missed(
    core: OrderCore, platform: FakePlatform, channel: FakeChannel, clock: ManualClock
) -> None:
    """Orders stored by sync are not reported; one that slipped past the cursor is."""
    platform.put(fake_order_payload("K1"), at=START + timedelta(minutes=5))
    clock.set(START + timedelta(hours=1))
    await core.intake.sync(channel, first_sync_from=START)
    platform.put(fake_order_payload("LATE"), at=START + timedelta(minutes=10))  # back-dated
    clock.advance(timedelta(minutes=30))
    report = await core.replay.reconcile(channel, lookback=timedelta(hours=2))
    assert report.missing == ["LATE"]
    assert report.run.trigger == "reconcile"
    assert (report.run.created, report.run.unchanged) == (1, 1)
    assert await _stored(core, "LATE")
    again = await core.replay.reconcile(channel, lookback=timedelta(hours=2))
    assert again.missing == []


@pytest.mark.anyio
async def test_replay_window_is_clipped_to_the_platforms_history_and_lag(
    core: OrderCore, platform: FakePlatform, channel: FakeChannel, clock: ManualClock
) -> None:
    """A window far past both edges scans only history depth up to now minus the lag."""
    platform.put(fake_order_payload("C1"), at=START + timedelta(minutes=1))
    clock.set(START + timedelta(hours=2))
    run = await core.replay.replay_window(
        channel, START - timedelta(days=3650), START + timedelta(days=3650)
    )
    depth = channel.limits.history_depth
    assert run.windows == int(depth / channel.limits.max_window)  # 90 days less 30 s, by hour
    assert run.created == 1


@pytest.mark.anyio
async def test_replaying_a_window_does_not_keep_a_reject_twice(
    core: OrderCore, platform: FakePlatform, channel: FakeChannel, clock: ManualClock
) -> None:
    """A version already kept as a reject is not kept again when its window is replayed."""
    bad = fake_order_payload("X1")
    bad["items"][0]["qty"] = 0
    platform.put(bad, at=START + timedelta(minutes=1))
    clock.set(START + timedelta(hours=1))
    await core.intake.sync(channel, first_sync_from=START)
    run = await core.replay.replay_window(channel, START, START + timedelta(minutes=30))
    assert run.rejected == 0
    assert len(await core.intake.rejects("fake-shop")) == 1


@pytest.mark.anyio
async def test_reconcile_reserves_orders_stored_without_a_reservation(
    core: OrderCore, platform: FakePlatform, channel: FakeChannel, clock: ManualClock
) -> None:
    """Orders stored but never reserved (a crash in between) get their stock; others don't."""
    platform.put(fake_order_payload("C1", qty=2), at=START + timedelta(minutes=5))
    platform.put(fake_order_payload("C2", status="CANCELLED"), at=START + timedelta(minutes=6))
    platform.put(fake_order_payload("C3"), at=START + timedelta(minutes=7))
    clock.set(START + timedelta(hours=1))
    window = TimeWindow(start=START, end=START + timedelta(minutes=30))
    records, _, _ = await core.intake.fetch_window(channel, window)
    orders, _, _, _ = core.intake.map_records(channel, records, None)
    async with core.storage.unit_of_work() as uow:  # stored, then the process stopped
        await uow.orders.upsert_many(orders)
        await uow.commit()
    report = await core.replay.reconcile(channel, lookback=timedelta(hours=2))
    stored = {o.external_id: o.id for o in await core.orders.list(limit=10)}
    assert report.reserved == [stored["C1"], stored["C3"]]
    assert (await core.inventory.reservation(stored["C1"])).lines[0].quantity == 2
    assert (await core.inventory.stock("SKU-1")).reserved == 3
    again = await core.replay.reconcile(channel, lookback=timedelta(hours=2))
    assert again.reserved == []
    assert (await core.inventory.stock("SKU-1")).reserved == 3
