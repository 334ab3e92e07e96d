"""The intake scheduler: when each channel is synced, and what happens when one fails.

Policies per channel (defaults from the issue): mainstream platforms are polled every
5 minutes; webhook channels get their pushes in real time plus a slow safety poll
(every 30 minutes); POS files arrive by a daily import. One channel's trouble never
stops another's: a channel whose credentials expired is paused (one HIGH alert), checked
again every tick, and resumes by itself once re-authorised, backfilling from its cursor.
Credentials about to expire raise one WARNING per channel and expiry date.

``tick()`` runs whatever is due now and is what tests drive with a ManualClock;
``run()`` loops over ticks until cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import anyio

from ordercore.config import Settings
from ordercore.domain.channels import CredentialState
from ordercore.domain.intake import SyncRun
from ordercore.domain.privacy import mask_text
from ordercore.errors import ChannelAuthExpired, OrderCoreError
from ordercore.ports.channels import ChannelPort
from ordercore.ports.clock import Clock
from ordercore.ports.notifiers import Alert, AlertLevel, NotifierPort
from ordercore.services.intake import IntakeService

__all__ = ["POLL", "SAFETY_POLL", "ChannelSchedule", "IntakeScheduler"]

POLL = timedelta(minutes=5)
"""How often mainstream platforms are polled."""
SAFETY_POLL = timedelta(minutes=30)
"""How often a webhook channel is polled as a safety net."""


@dataclass
class ChannelSchedule:
    """One channel and how often it is polled."""

    channel: ChannelPort
    every: timedelta = POLL
    next_at: datetime | None = None
    paused: bool = False
    warned_for: set[datetime] = field(default_factory=set)


class IntakeScheduler:
    """Runs due syncs; see the module docs."""

    def __init__(
        self,
        intake: IntakeService,
        clock: Clock,
        notifier: NotifierPort,
        settings: Settings,
        *,
        concurrency: int = 4,
    ) -> None:
        self._intake = intake
        self._clock = clock
        self._notifier = notifier
        self._settings = settings
        self._limit = anyio.CapacityLimiter(concurrency)
        self.schedules: dict[str, ChannelSchedule] = {}

    def add(self, channel: ChannelPort, *, every: timedelta = POLL) -> ChannelSchedule:
        """Schedule a channel (first run at the next tick)."""
        schedule = ChannelSchedule(channel, every)
        self.schedules[channel.name] = schedule
        return schedule

    async def tick(self) -> list[SyncRun]:
        """Sync every channel that is due now, concurrently; return the runs made."""
        now = self._clock.now()
        due = [s for s in self.schedules.values() if s.next_at is None or s.next_at <= now]
        runs: list[SyncRun] = []

        async def one(schedule: ChannelSchedule) -> None:
            async with self._limit:
                run = await self._sync(schedule)
            if run is not None:
                runs.append(run)

        async with anyio.create_task_group() as group:
            for schedule in due:
                group.start_soon(one, schedule)
        return runs

    async def run(self, *, resolution: timedelta = timedelta(seconds=5)) -> None:
        """Tick until cancelled, sleeping until the next channel is due (at most ``resolution``)."""
        while True:
            await self.tick()
            upcoming = [s.next_at for s in self.schedules.values() if s.next_at is not None]
            wait = resolution
            if upcoming:
                wait = min(resolution, max(min(upcoming) - self._clock.now(), timedelta(0)))
            await anyio.sleep(wait.total_seconds())

    async def _sync(self, schedule: ChannelSchedule) -> SyncRun | None:
        channel = schedule.channel
        now = self._clock.now()
        schedule.next_at = now + schedule.every
        await self._warn_before_expiry(schedule)
        try:
            run = await self._intake.sync(channel)
        except ChannelAuthExpired as exc:
            if not schedule.paused:
                schedule.paused = True
                await self._alert(AlertLevel.HIGH, "channel.paused", channel, str(exc))
            return None
        except OrderCoreError as exc:  # a storage failure: retried at the next due time
            await self._alert(AlertLevel.WARNING, "channel.sync_failed", channel, str(exc))
            return None
        if schedule.paused:
            schedule.paused = False
            await self._alert(
                AlertLevel.INFO, "channel.resumed", channel, f"{channel.name} resumed"
            )
        return run

    async def _warn_before_expiry(self, schedule: ChannelSchedule) -> None:
        try:
            status = await schedule.channel.credential_status()
        except OrderCoreError:
            return
        warn = self._settings.credential_warning
        now = self._clock.now()
        if status.state(now, warn) is not CredentialState.EXPIRING:
            return
        soonest = min(status.expires_at.values())
        if soonest in schedule.warned_for:
            return
        schedule.warned_for.add(soonest)
        await self._alert(
            AlertLevel.WARNING,
            "channel.credentials_expiring",
            schedule.channel,
            f"{schedule.channel.name}: credentials expire at {soonest.isoformat()}; "
            "re-authorise before then",
        )

    async def _alert(
        self, level: AlertLevel, topic: str, channel: ChannelPort, message: str
    ) -> None:
        await self._notifier.send(
            Alert(
                level=level,
                topic=topic,
                message=mask_text(message),
                key=f"{topic}:{channel.name}",
                at=self._clock.now(),
                channel=channel.name,
            )
        )


def due_channels(schedules: Sequence[ChannelSchedule], now: datetime) -> list[str]:
    """Names of the schedules due at ``now`` (for dashboards)."""
    return [s.channel.name for s in schedules if s.next_at is None or s.next_at <= now]
