"""The intake scheduler: per-channel intervals, pauses on expired credentials, alerts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from ordercore import OrderCore
from ordercore.ports.clock import ManualClock
from ordercore.ports.notifiers import AlertLevel, RecordingNotifier
from ordercore.services.scheduler import SAFETY_POLL, IntakeScheduler
from ordercore.testing.channels import FakeChannel, FakePlatform, fake_order_payload

START = datetime(2026, 11, 11, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def core(clock: ManualClock) -> AsyncIterator[OrderCore]:
    async with OrderCore.open("memory://", clock=clock) as opened:
        await opened.inventory.receive("SKU-1", 10_000)
        yield opened


@pytest.mark.anyio
async def test_each_channel_runs_on_its_own_interval(core: OrderCore, clock: ManualClock) -> None:
    """A polled channel runs every 5 minutes, a webhook channel's safety poll every 30."""
    notifier = RecordingNotifier()
    scheduler = IntakeScheduler(core.intake, clock, notifier, core.settings)
    polled = FakeChannel("taobao-main", FakePlatform(clock))
    pushed = FakeChannel("h5-store", FakePlatform(clock))
    scheduler.add(polled)
    scheduler.add(pushed, every=SAFETY_POLL)
    ran: list[str] = []
    for _ in range(12):  # one hour in 5-minute steps
        ran += sorted(run.channel for run in await scheduler.tick())
        clock.advance(timedelta(minutes=5))
    assert ran.count("taobao-main") == 12
    assert ran.count("h5-store") == 2


@pytest.mark.anyio
async def test_an_expired_channel_pauses_alone_and_backfills_when_reauthorised(
    core: OrderCore, clock: ManualClock
) -> None:
    """One channel's expired token pauses it (one alert); the other goes on; then it catches up."""
    notifier = RecordingNotifier()
    scheduler = IntakeScheduler(core.intake, clock, notifier, core.settings)
    broken = FakePlatform(clock, credentials_expire_at=START + timedelta(minutes=1))
    healthy = FakePlatform(clock)
    scheduler.add(FakeChannel("jd-main", broken))
    scheduler.add(FakeChannel("pdd-main", healthy))
    for index in range(30):
        broken.put(fake_order_payload(f"J{index}"), at=START + timedelta(minutes=index))
        healthy.put(fake_order_payload(f"P{index}"), at=START + timedelta(minutes=index))
    clock.advance(timedelta(minutes=40))
    for _ in range(3):
        await scheduler.tick()
        clock.advance(timedelta(minutes=5))
    paused = [a for a in notifier.alerts if a.topic == "channel.paused"]
    assert [(a.channel, a.level) for a in paused] == [("jd-main", AlertLevel.HIGH)]
    assert len([o for o in await core.orders.list(limit=100) if o.channel == "pdd-main"]) == 30
    broken.credentials_expire_at = START + timedelta(days=60)
    await scheduler.tick()
    assert len([o for o in await core.orders.list(limit=100) if o.channel == "jd-main"]) == 30
    assert notifier.alerts[-1].topic == "channel.resumed"


@pytest.mark.anyio
async def test_credentials_about_to_expire_warn_once(core: OrderCore, clock: ManualClock) -> None:
    """A token expiring within the warning period raises one WARNING, not one per tick."""
    notifier = RecordingNotifier()
    scheduler = IntakeScheduler(core.intake, clock, notifier, core.settings)
    platform = FakePlatform(clock, credentials_expire_at=START + timedelta(days=2))
    scheduler.add(FakeChannel("douyin-main", platform))
    for _ in range(5):
        await scheduler.tick()
        clock.advance(timedelta(minutes=5))
    warnings = [a for a in notifier.alerts if a.topic == "channel.credentials_expiring"]
    assert len(warnings) == 1
    assert warnings[0].level is AlertLevel.WARNING
