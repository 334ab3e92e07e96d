"""The intake scheduler: per-channel policies, reconciliation, refresh, POS folders, pauses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import anyio
import pytest

from ordercore import OrderCore
from ordercore.domain.channels import CredentialStatus
from ordercore.domain.orders import OrderStatus
from ordercore.errors import ChannelAuthExpired, InvalidInput
from ordercore.ports.channels import ChannelPort
from ordercore.ports.clock import ManualClock
from ordercore.ports.notifiers import AlertLevel, RecordingNotifier
from ordercore.services.scheduler import (
    ChannelMode,
    ChannelPolicy,
    IntakeScheduler,
    JobOutcome,
    PosImportPolicy,
)
from ordercore.testing.channels import FakeChannel, FakePlatform, fake_order_payload

START = datetime(2026, 11, 11, tzinfo=UTC)
NO_RECONCILE = ChannelPolicy(reconcile_every=None)
POS_CSV = (
    "order_no,store,created_at,sku,qty,unit_price\n"
    "A1,main,2026-11-10 09:00,SKU-1,2,10.00\n"
    "A2,main,2026-11-10 10:00,SKU-1,1,10.00\n"
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def core(clock: ManualClock) -> AsyncIterator[OrderCore]:
    async with OrderCore.open("memory://", clock=clock) as opened:
        await opened.inventory.receive("SKU-1", 10_000)
        yield opened


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def scheduler(core: OrderCore, notifier: RecordingNotifier) -> IntakeScheduler:
    return IntakeScheduler.for_core(core, notifier)


async def _ticks(
    scheduler: IntakeScheduler, clock: ManualClock, count: int, step: timedelta
) -> list[JobOutcome]:
    outcomes: list[JobOutcome] = []
    for _ in range(count):
        outcomes += await scheduler.tick()
        clock.advance(step)
    return outcomes


async def _stored(core: OrderCore, channel: str) -> int:
    return len([o for o in await core.orders.list(limit=10_000) if o.channel == channel])


@pytest.mark.anyio
async def test_each_channel_runs_on_its_own_interval(
    scheduler: IntakeScheduler, clock: ManualClock
) -> None:
    """A polled channel runs every 5 minutes, a webhook channel's safety poll every 30."""
    scheduler.add(FakeChannel("taobao-main", FakePlatform(clock)), NO_RECONCILE)
    scheduler.add(
        FakeChannel("h5-store", FakePlatform(clock)),
        ChannelPolicy(mode=ChannelMode.WEBHOOK, reconcile_every=None),
    )
    outcomes = await _ticks(scheduler, clock, 12, timedelta(minutes=5))  # one hour
    ran = [(o.channel, o.job) for o in outcomes]
    assert ran.count(("taobao-main", "poll")) == 12
    assert ran.count(("h5-store", "safety_poll")) == 2


@pytest.mark.anyio
async def test_reconciliation_runs_on_its_schedule_over_its_lookback(
    scheduler: IntakeScheduler, clock: ManualClock
) -> None:
    """Reconciliation runs hourly by default, each re-scanning the last 2 hours."""
    scheduler.add(FakeChannel("jd-main", FakePlatform(clock)))
    outcomes = await _ticks(scheduler, clock, 36, timedelta(minutes=5))  # three hours
    reconciles = [o for o in outcomes if o.job == "reconcile"]
    assert [o.at - START for o in reconciles] == [timedelta(hours=h) for h in range(3)]
    assert all(o.run is not None and o.run.trigger == "reconcile" for o in reconciles)
    assert [o.job for o in outcomes].count("poll") == 36


@pytest.mark.anyio
async def test_reconciliation_stores_reports_and_records_what_the_polls_missed(
    core: OrderCore,
    scheduler: IntakeScheduler,
    clock: ManualClock,
    notifier: RecordingNotifier,
) -> None:
    """An order indexed late, behind the cursor, is stored by the next reconcile and alerted."""
    platform = FakePlatform(clock)
    for index in range(5):
        platform.put(fake_order_payload(f"K{index}"), at=START - timedelta(minutes=20 - index))
    scheduler.add(
        FakeChannel("pdd-main", platform), ChannelPolicy(reconcile_every=timedelta(hours=1))
    )
    await _ticks(scheduler, clock, 6, timedelta(minutes=5))  # polls and a first reconcile
    platform.put(fake_order_payload("LATE"), at=START + timedelta(minutes=2))  # behind the cursor
    await _ticks(scheduler, clock, 6, timedelta(minutes=5))
    assert await _stored(core, "pdd-main") == 5
    outcomes = await _ticks(scheduler, clock, 1, timedelta(minutes=5))  # t = 60 min
    assert await _stored(core, "pdd-main") == 6
    found = [a for a in notifier.alerts if a.topic == "channel.reconcile_found"]
    assert [(a.channel, a.level) for a in found] == [("pdd-main", AlertLevel.WARNING)]
    assert "LATE" in found[0].message
    reconcile = next(o for o in outcomes if o.job == "reconcile")
    assert reconcile.details["missing"] == 1
    ledger = [r for r in await core.intake.runs("pdd-main") if r.trigger == "reconcile"]
    assert ledger[0].created == 1
    assert (await core.inventory.stock("SKU-1")).reserved == 6


@pytest.mark.anyio
async def test_reconciliation_updates_and_reports_orders_stored_at_an_older_version(
    core: OrderCore,
    scheduler: IntakeScheduler,
    clock: ManualClock,
    notifier: RecordingNotifier,
) -> None:
    """A change indexed late (behind the cursor) is stored by the reconcile as outdated."""
    platform = FakePlatform(clock)
    platform.put(fake_order_payload("K1", status="UNPAID"), at=START - timedelta(minutes=5))
    scheduler.add(FakeChannel("pdd-main", platform))
    await _ticks(scheduler, clock, 6, timedelta(minutes=5))
    platform.put(fake_order_payload("K1", status="CANCELLED"), at=START - timedelta(minutes=4))
    outcomes = await _ticks(scheduler, clock, 7, timedelta(minutes=5))
    reconcile = next(o for o in outcomes if o.job == "reconcile")
    assert (reconcile.details["missing"], reconcile.details["outdated"]) == (0, 1)
    assert reconcile.run is not None
    assert reconcile.run.updated == 1
    [order] = await core.orders.list(limit=10)
    assert order.status is OrderStatus.CANCELLED
    assert "older version (K1)" in notifier.alerts[-1].message


@pytest.mark.anyio
async def test_a_crashing_channel_is_alerted_and_the_others_go_on(
    core: OrderCore, scheduler: IntakeScheduler, clock: ManualClock, notifier: RecordingNotifier
) -> None:
    """An adapter bug (not an ordercore error) fails that job with a HIGH alert, nothing else."""

    class Broken(FakeChannel):
        async def platform_time(self) -> datetime:
            raise KeyError("now")

    healthy = FakePlatform(clock)
    healthy.put(fake_order_payload("P1"), at=START - timedelta(minutes=1))
    scheduler.add(Broken("jd-main", FakePlatform(clock)), NO_RECONCILE)
    scheduler.add(FakeChannel("pdd-main", healthy), NO_RECONCILE)
    outcomes = await _ticks(scheduler, clock, 2, timedelta(minutes=5))
    assert sorted((o.channel, o.status) for o in outcomes) == [
        ("jd-main", "failed"),
        ("jd-main", "failed"),
        ("pdd-main", "succeeded"),
        ("pdd-main", "succeeded"),
    ]
    crashed = [a for a in notifier.alerts if a.topic == "channel.job_crashed"]
    assert crashed[0].level is AlertLevel.HIGH
    assert "KeyError" in crashed[0].message
    assert await _stored(core, "pdd-main") == 1


@pytest.mark.anyio
async def test_an_expired_channel_pauses_alone_and_backfills_when_reauthorised(
    core: OrderCore, scheduler: IntakeScheduler, clock: ManualClock, notifier: RecordingNotifier
) -> None:
    """One channel's expired token pauses it (one alert); the other goes on; then it catches up."""
    broken = FakePlatform(clock, credentials_expire_at=START + timedelta(minutes=1))
    healthy = FakePlatform(clock)
    scheduler.add(FakeChannel("jd-main", broken), NO_RECONCILE)
    scheduler.add(FakeChannel("pdd-main", healthy), NO_RECONCILE)
    for index in range(30):
        broken.put(fake_order_payload(f"J{index}"), at=START + timedelta(minutes=index))
        healthy.put(fake_order_payload(f"P{index}"), at=START + timedelta(minutes=index))
    clock.advance(timedelta(minutes=40))
    outcomes = await _ticks(scheduler, clock, 3, timedelta(minutes=5))
    paused = [a for a in notifier.alerts if a.topic == "channel.paused"]
    assert [(a.channel, a.level) for a in paused] == [("jd-main", AlertLevel.HIGH)]
    assert [o.status for o in outcomes if o.channel == "jd-main"] == ["paused"] * 3
    assert await _stored(core, "pdd-main") == 30
    broken.credentials_expire_at = START + timedelta(days=60)
    await scheduler.tick()
    assert await _stored(core, "jd-main") == 30
    assert notifier.alerts[-1].topic == "channel.resumed"


@pytest.mark.anyio
async def test_credentials_about_to_expire_warn_once(
    scheduler: IntakeScheduler, clock: ManualClock, notifier: RecordingNotifier
) -> None:
    """A token that cannot be refreshed and expires soon raises one WARNING, not one per tick."""
    platform = FakePlatform(clock, credentials_expire_at=START + timedelta(days=2))
    scheduler.add(FakeChannel("douyin-main", platform), NO_RECONCILE)
    await _ticks(scheduler, clock, 5, timedelta(minutes=5))
    warnings = [a for a in notifier.alerts if a.topic == "channel.credentials_expiring"]
    assert len(warnings) == 1
    assert warnings[0].level is AlertLevel.WARNING


@pytest.mark.anyio
async def test_refreshable_credentials_are_renewed_before_expiry_without_an_alert(
    scheduler: IntakeScheduler, clock: ManualClock, notifier: RecordingNotifier
) -> None:
    """A refreshable token inside the warning period is refreshed ahead of expiry, silently."""
    expiry = START + timedelta(days=2)
    platform = FakePlatform(clock, credentials_expire_at=expiry, refreshable=True)
    scheduler.add(FakeChannel("taobao-main", platform), NO_RECONCILE)
    outcomes = await _ticks(scheduler, clock, 3, timedelta(minutes=5))
    assert platform.credentials_expire_at == START + timedelta(days=30)
    assert [o.status for o in outcomes if o.job == "refresh"] == ["refreshed"]
    assert notifier.alerts == []


@pytest.mark.anyio
async def test_a_refresh_token_running_out_warns_the_seller_once(
    scheduler: IntakeScheduler, clock: ManualClock, notifier: RecordingNotifier
) -> None:
    """Refreshing cannot outlive the refresh token: its coming expiry raises one WARNING."""
    platform = FakePlatform(
        clock,
        credentials_expire_at=START + timedelta(days=20),
        refreshable=True,
        refresh_expires_at=START + timedelta(days=2),
    )
    scheduler.add(FakeChannel("pdd-main", platform), NO_RECONCILE)
    await _ticks(scheduler, clock, 4, timedelta(minutes=5))
    warnings = [a for a in notifier.alerts if a.topic == "channel.reauthorise_soon"]
    assert [(a.channel, a.level) for a in warnings] == [("pdd-main", AlertLevel.WARNING)]
    assert (START + timedelta(days=2)).isoformat() in warnings[0].message


@pytest.mark.anyio
async def test_a_failed_refresh_alerts_once_and_polling_goes_on(
    core: OrderCore, clock: ManualClock, notifier: RecordingNotifier
) -> None:
    """When refreshing fails the operators get one WARNING; the channel keeps being polled."""

    async def refuse(channel: ChannelPort) -> CredentialStatus:
        raise ChannelAuthExpired(f"channel {channel.name!r}: revoked, call 13912345678")

    scheduler = IntakeScheduler.for_core(core, notifier, refresh=refuse)
    platform = FakePlatform(
        clock, credentials_expire_at=START + timedelta(days=1), refreshable=True
    )
    platform.put(fake_order_payload("R1"), at=START - timedelta(minutes=1))
    scheduler.add(FakeChannel("jd-main", platform), NO_RECONCILE)
    outcomes = await _ticks(scheduler, clock, 4, timedelta(minutes=5))
    failed = [a for a in notifier.alerts if a.topic == "channel.refresh_failed"]
    assert [(a.channel, a.level) for a in failed] == [("jd-main", AlertLevel.WARNING)]
    assert "revoked, call 139****5678" in failed[0].message  # masked
    assert "13912345678" not in str([o.message for o in outcomes])
    assert [o.status for o in outcomes if o.job == "poll"] == ["succeeded"] * 4
    assert await _stored(core, "jd-main") == 1


@pytest.mark.anyio
async def test_a_new_scheduler_takes_its_due_times_from_the_ledger(
    core: OrderCore, clock: ManualClock, notifier: RecordingNotifier
) -> None:
    """After a restart (or under cron) nothing runs before it is due by the ledger."""
    first = IntakeScheduler.for_core(core, notifier)
    first.add(FakeChannel("jd-main", FakePlatform(clock)))
    assert sorted(o.job for o in await first.tick()) == ["poll", "reconcile"]
    clock.advance(timedelta(minutes=2))
    second = IntakeScheduler.for_core(core, notifier)
    second.add(FakeChannel("jd-main", FakePlatform(clock)))
    assert await second.tick() == []
    clock.advance(timedelta(minutes=3))
    assert [o.job for o in await second.tick()] == ["poll"]
    clock.set(START + timedelta(hours=1))
    assert sorted(o.job for o in await second.tick()) == ["poll", "reconcile"]


@pytest.mark.anyio
async def test_a_reconciling_policy_needs_the_replay_service(
    core: OrderCore, clock: ManualClock, notifier: RecordingNotifier
) -> None:
    """A scheduler built without replay refuses a channel that must be reconciled."""
    bare = IntakeScheduler(core.intake, clock, notifier, core.settings)
    with pytest.raises(InvalidInput, match="reconcile_every"):
        bare.add(FakeChannel("jd-main", FakePlatform(clock)))


def test_policies_reject_non_positive_intervals() -> None:
    """A zero or negative interval names the field."""
    with pytest.raises(InvalidInput, match="poll_every"):
        ChannelPolicy(poll_every=timedelta(0))
    with pytest.raises(InvalidInput, match="reconcile_every"):
        ChannelPolicy(reconcile_every=timedelta(minutes=-1))


def test_the_daily_import_time_is_in_the_policys_time_zone() -> None:
    """02:00 in Shanghai is 18:00 UTC the day before; the next one is a day later."""
    policy = PosImportPolicy(Path("x"), at=time(2, 0), timezone=ZoneInfo("Asia/Shanghai"))
    first = policy.next_after(datetime(2026, 11, 10, 17, 0, tzinfo=UTC))
    assert first == datetime(2026, 11, 10, 18, 0, tzinfo=UTC)
    assert policy.next_after(first) == datetime(2026, 11, 11, 18, 0, tzinfo=UTC)


@pytest.mark.anyio
async def test_the_pos_folder_is_imported_once_a_day_and_files_archived(
    core: OrderCore, scheduler: IntakeScheduler, clock: ManualClock, tmp_path: Path
) -> None:
    """Files waiting at start are imported; later drops wait for the next daily time."""
    (tmp_path / "day1.csv").write_text(POS_CSV, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not an export", encoding="utf-8")
    scheduler.add_pos("pos", PosImportPolicy(tmp_path, at=time(2, 0)))
    first = await scheduler.tick()
    assert [(o.job, o.status, o.details["created"]) for o in first] == [("import", "succeeded", 2)]
    assert sorted([p.name async for p in anyio.Path(tmp_path).iterdir()]) == [
        "imported",
        "notes.txt",
    ]
    assert (tmp_path / "imported" / "day1.csv").exists()
    (tmp_path / "day2.csv").write_text(POS_CSV.replace("A1", "B1").replace("A2", "B2"))
    clock.set(START + timedelta(hours=1, minutes=59))
    assert await scheduler.tick() == []
    clock.set(START + timedelta(hours=2))
    assert [o.details["file"] for o in await scheduler.tick()] == ["day2.csv"]
    assert await _stored(core, "pos") == 4


@pytest.mark.anyio
async def test_a_bad_pos_file_is_set_aside_with_an_alert(
    scheduler: IntakeScheduler, notifier: RecordingNotifier, tmp_path: Path
) -> None:
    """A file that is wholly unreadable moves to failed/ and raises one WARNING naming it."""
    (tmp_path / "broken.csv").write_text("nothing,we,know\n1,2,3\n", encoding="utf-8")
    scheduler.add_pos("pos", PosImportPolicy(tmp_path))
    outcomes = await scheduler.tick()
    assert [(o.job, o.status) for o in outcomes] == [("import", "failed")]
    assert (tmp_path / "failed" / "broken.csv").exists()
    rejected = [a for a in notifier.alerts if a.topic == "pos.file_rejected"]
    assert len(rejected) == 1
    assert "broken.csv" in rejected[0].message


@pytest.mark.anyio
async def test_stop_ends_run_after_the_jobs_in_flight(
    core: OrderCore, clock: ManualClock, notifier: RecordingNotifier
) -> None:
    """run() returns soon after stop(), having finished the tick it was in."""
    done: list[JobOutcome] = []
    first_job = anyio.Event()

    def record(outcome: JobOutcome) -> None:
        done.append(outcome)
        first_job.set()

    scheduler = IntakeScheduler.for_core(core, notifier, on_outcome=record)
    scheduler.add(FakeChannel("jd-main", FakePlatform(clock)), NO_RECONCILE)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(scheduler.run)
            await first_job.wait()
            scheduler.stop()
    assert [o.status for o in done] == ["succeeded"]
    assert scheduler.stopping


@pytest.mark.anyio
async def test_a_periodic_job_runs_on_its_interval_and_its_failure_alerts(
    scheduler: IntakeScheduler, clock: ManualClock, notifier: RecordingNotifier
) -> None:
    """Housekeeping runs every interval beside the channels; a crash alerts and runs again."""
    runs: list[datetime] = []

    async def housekeeping() -> None:
        runs.append(clock.now())
        if len(runs) == 2:
            raise RuntimeError("timer table locked")

    scheduler.add_periodic("tickets", timedelta(minutes=1), housekeeping)
    outcomes = await _ticks(scheduler, clock, 7, timedelta(seconds=30))
    assert runs == [START + timedelta(minutes=m) for m in range(4)]
    assert [(o.job, o.channel, o.status) for o in outcomes] == [("job", "tickets", "failed")]
    assert [a.topic for a in notifier.alerts] == ["channel.job_crashed"]
