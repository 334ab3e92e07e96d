"""The intake scheduler: when each channel is synced, reconciled and imported.

Policies per channel (:class:`ChannelPolicy`, defaults from the issue): mainstream
platforms are polled every 5 minutes; webhook channels get their pushes in real time
(the embedding app hands them to ``core.intake.ingest_webhook``) plus a slow safety poll
every 30 minutes; every channel is reconciled hourly over the last 2 hours (a re-scan
that stores and reports any order the intake had missed); POS exports dropped into a
watched folder are imported once a day (:class:`PosImportPolicy`).

One channel's trouble never stops another's. A channel whose credentials expired is
paused (one HIGH alert), polled again at its interval, and resumes by itself once
re-authorised, backfilling from its cursor. Credentials about to expire
(``settings.credential_warning``) are refreshed ahead of time where the platform allows
it (an alert only when the refresh fails; :meth:`IntakeScheduler.for_core` refreshes
through :class:`~ordercore.services.credentials.CredentialService`, which saves the new
tokens so that they survive a restart); where it does not, one WARNING per channel and
expiry date asks people to re-authorise.

Due times survive restarts and cron: the first tick reads each channel's last poll,
reconcile and import from the sync ledger, so ``ordercore serve --once`` run every few
minutes polls, reconciles and imports on the same schedule as a long-running worker.

``tick()`` runs whatever is due now and is what tests drive with a ManualClock;
``run()`` ticks until :meth:`IntakeScheduler.stop` is called or it is cancelled.
"""

from __future__ import annotations

import fnmatch
import shutil
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from ordercore.config import Settings
from ordercore.domain.channels import CredentialState, CredentialStatus
from ordercore.domain.intake import RunStatus, SyncRun
from ordercore.domain.privacy import mask_text
from ordercore.errors import ChannelAuthExpired, FieldError, InvalidInput, OrderCoreError
from ordercore.ports.channels import ChannelPort
from ordercore.ports.clock import Clock
from ordercore.ports.notifiers import Alert, AlertLevel, NotifierPort
from ordercore.services.credentials import CredentialService
from ordercore.services.imports import ImportReport, ImportService
from ordercore.services.intake import IntakeService
from ordercore.services.replay import ReconcileReport, ReplayService

if TYPE_CHECKING:
    from ordercore.core import OrderCore

__all__ = [
    "POLL",
    "POS_IMPORT_AT",
    "RECONCILE",
    "RECONCILE_LOOKBACK",
    "SAFETY_POLL",
    "ChannelMode",
    "ChannelPolicy",
    "ChannelSchedule",
    "IntakeScheduler",
    "JobOutcome",
    "PeriodicJob",
    "PosImportPolicy",
    "PosSchedule",
    "Refresher",
    "refresh_through_channel",
]

POLL = timedelta(minutes=5)
"""How often mainstream platforms are polled."""
SAFETY_POLL = timedelta(minutes=30)
"""How often a webhook channel is polled as a safety net."""
RECONCILE = timedelta(hours=1)
"""How often a channel's recent windows are re-scanned."""
RECONCILE_LOOKBACK = timedelta(hours=2)
"""How far back a reconciliation re-scans."""
POS_IMPORT_AT = time(2, 0)
"""When the daily POS import runs (in the policy's time zone)."""

_LEDGER_SCAN = 200
"""How many recent ledger entries the first tick reads to find the last runs."""

Refresher = Callable[[ChannelPort], Awaitable[CredentialStatus]]
"""Refreshes a channel's credentials (and persists them, where a service does)."""


async def refresh_through_channel(channel: ChannelPort) -> CredentialStatus:
    """The default :data:`Refresher`: the adapter's own ``refresh_credentials()``."""
    return await channel.refresh_credentials()


class ChannelMode(StrEnum):
    """How a channel's orders arrive."""

    POLL = "poll"
    """Polled on ``poll_every``."""
    WEBHOOK = "webhook"
    """Pushed in real time; polled on ``safety_poll_every`` as a safety net."""


def _invalid(subject: str, name: str, message: str, value: object) -> InvalidInput:
    return InvalidInput(subject, [FieldError(name, message, value)])


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    """How one channel is scheduled (the defaults are the issue's)."""

    mode: ChannelMode = ChannelMode.POLL
    poll_every: timedelta = POLL
    safety_poll_every: timedelta = SAFETY_POLL
    reconcile_every: timedelta | None = RECONCILE
    """None turns reconciliation off for the channel."""
    reconcile_lookback: timedelta = RECONCILE_LOOKBACK

    def __post_init__(self) -> None:
        for name in ("poll_every", "safety_poll_every", "reconcile_lookback"):
            value = getattr(self, name)
            if value <= timedelta(0):
                raise _invalid("channel schedule", name, "must be positive", value)
        if self.reconcile_every is not None and self.reconcile_every <= timedelta(0):
            raise _invalid(
                "channel schedule",
                "reconcile_every",
                "must be positive (or off)",
                self.reconcile_every,
            )

    @property
    def interval(self) -> timedelta:
        """Time between two polls: the poll interval, or the safety poll's for webhooks."""
        return self.poll_every if self.mode is ChannelMode.POLL else self.safety_poll_every

    @property
    def poll_job(self) -> str:
        """The job name a poll of this channel is logged under."""
        return "poll" if self.mode is ChannelMode.POLL else "safety_poll"


@dataclass(frozen=True, slots=True)
class PosImportPolicy:
    """A watched folder of POS exports, imported once a day at ``at`` (in ``timezone``).

    Files matching ``patterns`` are imported one by one (oldest name first); an imported
    file (or one already imported: same bytes) moves to the ``archive`` subfolder (None
    leaves it in place); a file that is wholly bad moves to ``failed`` with an alert.
    Exporters should write under another name and rename when done (``.part`` files do
    not match).
    """

    folder: Path
    at: time = POS_IMPORT_AT
    timezone: tzinfo = UTC
    patterns: tuple[str, ...] = ("*.csv", "*.xlsx")
    archive: str | None = "imported"
    failed: str = "failed"

    def __post_init__(self) -> None:
        if not self.patterns:
            raise _invalid("POS import", "patterns", "must name at least one pattern", ())
        for name in (self.archive, self.failed):
            if name is not None and (not name or Path(name).name != name):
                raise _invalid("POS import", "archive", "must be a plain subfolder name", name)

    def next_after(self, moment: datetime) -> datetime:
        """The first scheduled import time strictly after ``moment`` (UTC)."""
        local = moment.astimezone(self.timezone)
        candidate = datetime.combine(local.date(), self.at, tzinfo=self.timezone)
        if candidate <= local:
            candidate = datetime.combine(
                local.date() + timedelta(days=1), self.at, tzinfo=self.timezone
            )
        return candidate.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What one scheduled job did: one log line of ``ordercore serve``."""

    job: str
    """poll, safety_poll, reconcile, import, refresh or credentials."""
    channel: str
    status: str
    """A run's status, or refreshed / refresh_failed / paused / already_imported / failed."""
    at: datetime
    run: SyncRun | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""
    """Masked text: no secret, no customer name, phone or address."""

    @property
    def failed(self) -> bool:
        """True when the job did not do what it was for (a paused channel is not a failure)."""
        return self.status in ("failed", "partial", "refresh_failed")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (counts only; no payloads)."""
        data: dict[str, Any] = {
            "at": self.at.isoformat(),
            "job": self.job,
            "channel": self.channel,
            "status": self.status,
        }
        if self.run is not None:
            run = self.run
            data |= {
                "run": run.id,
                "fetched": run.fetched,
                "created": run.created,
                "updated": run.updated,
                "unchanged": run.unchanged,
                "stale": run.stale,
                "rejected": run.rejected,
                "errors": len(run.errors),
            }
            if run.cursor_after is not None:
                data["cursor_after"] = run.cursor_after.isoformat()
        data |= dict(self.details)
        if self.message:
            data["message"] = self.message
        return data

    def line(self) -> str:
        """One human-readable line: ``poll shop succeeded run=... fetched=3 created=3 ...``."""
        parts = [self.job, self.channel, self.status]
        parts += [
            f"{key}={value}"
            for key, value in self.to_dict().items()
            if key not in ("at", "job", "channel", "status", "message")
        ]
        if self.message:
            parts += ["-", self.message]
        return " ".join(parts)


@dataclass
class ChannelSchedule:
    """One channel, its policy and when its jobs are due next."""

    channel: ChannelPort
    policy: ChannelPolicy = field(default_factory=ChannelPolicy)
    next_poll: datetime | None = None
    next_reconcile: datetime | None = None
    paused: bool = False
    primed: bool = False
    warned_for: set[datetime] = field(default_factory=set)
    refresh_failed_for: set[datetime] = field(default_factory=set)

    @property
    def every(self) -> timedelta:
        """Time between two polls of this channel."""
        return self.policy.interval

    def due(self, now: datetime) -> bool:
        """True when a poll or a reconciliation is due at ``now``."""
        return self.poll_due(now) or self.reconcile_due(now)

    def poll_due(self, now: datetime) -> bool:
        """True when a poll (or safety poll) is due at ``now``."""
        return self.next_poll is None or self.next_poll <= now

    def reconcile_due(self, now: datetime) -> bool:
        """True when a reconciliation is due at ``now`` (never while paused)."""
        if self.policy.reconcile_every is None or self.paused:
            return False
        return self.next_reconcile is None or self.next_reconcile <= now


@dataclass
class PosSchedule:
    """A POS channel's watched folder and when it is imported next."""

    channel: str
    policy: PosImportPolicy
    next_at: datetime | None = None
    primed: bool = False

    def due(self, now: datetime) -> bool:
        """True when the daily import is due at ``now``."""
        return self.next_at is None or self.next_at <= now


OutcomeSink = Callable[[JobOutcome], None]


@dataclass(slots=True)
class PeriodicJob:
    """Housekeeping that runs every ``every`` beside the channels (ticket timers, say)."""

    name: str
    every: timedelta
    job: Callable[[], Awaitable[object]]
    next_at: datetime | None = None

    def due(self, now: datetime) -> bool:
        """True when the job should run at ``now``."""
        return self.next_at is None or self.next_at <= now


class IntakeScheduler:
    """Runs due polls, reconciliations, refreshes and POS imports; see the module docs."""

    def __init__(
        self,
        intake: IntakeService,
        clock: Clock,
        notifier: NotifierPort,
        settings: Settings,
        *,
        replay: ReplayService | None = None,
        imports: ImportService | None = None,
        credentials: CredentialService | None = None,
        refresh: Refresher | None = None,
        on_outcome: OutcomeSink | None = None,
        concurrency: int = 4,
    ) -> None:
        self._intake = intake
        self._credential_service = credentials
        if refresh is None:
            refresh = credentials.refresh if credentials is not None else refresh_through_channel
        self._replay = replay
        self._imports = imports
        self._clock = clock
        self._notifier = notifier
        self._settings = settings
        self._refresh = refresh
        self._on_outcome = on_outcome
        self._limit = anyio.CapacityLimiter(concurrency)
        self._stopping = False
        self._wake: anyio.Event | None = None
        self.schedules: dict[str, ChannelSchedule] = {}
        self.pos: dict[str, PosSchedule] = {}
        self.periodic: dict[str, PeriodicJob] = {}

    @classmethod
    def for_core(
        cls,
        core: OrderCore,
        notifier: NotifierPort,
        *,
        refresh: Refresher | None = None,
        on_outcome: OutcomeSink | None = None,
        concurrency: int = 4,
    ) -> IntakeScheduler:
        """A scheduler over a core's intake, replay, import and credential services.

        Credentials are refreshed (and the new tokens saved) by a
        :class:`~ordercore.services.credentials.CredentialService` unless ``refresh`` says
        otherwise.
        """
        return cls(
            core.intake,
            core.clock,
            notifier,
            core.settings,
            replay=core.replay,
            imports=core.imports,
            credentials=CredentialService(core.storage, core.clock),
            refresh=refresh,
            on_outcome=on_outcome,
            concurrency=concurrency,
        )

    def add(
        self,
        channel: ChannelPort,
        policy: ChannelPolicy | None = None,
        *,
        every: timedelta | None = None,
    ) -> ChannelSchedule:
        """Schedule a channel (first jobs at the next tick, or as the ledger says).

        ``every`` is a shorthand for a polled channel without reconciliation.
        """
        if policy is None:
            policy = (
                ChannelPolicy()
                if every is None
                else ChannelPolicy(poll_every=every, reconcile_every=None)
            )
        if policy.reconcile_every is not None and self._replay is None:
            raise _invalid(
                f"schedule of channel {channel.name!r}",
                "reconcile_every",
                "needs a scheduler with replay= (IntakeScheduler.for_core)",
                policy.reconcile_every,
            )
        schedule = ChannelSchedule(channel, policy)
        self.schedules[channel.name] = schedule
        return schedule

    def add_pos(self, channel: str, policy: PosImportPolicy) -> PosSchedule:
        """Import a watched folder into ``channel`` once a day."""
        if self._imports is None:
            raise _invalid(
                f"POS import {channel!r}",
                "imports",
                "needs a scheduler with imports= (IntakeScheduler.for_core)",
                None,
            )
        schedule = PosSchedule(channel, policy)
        self.pos[channel] = schedule
        return schedule

    def stop(self) -> None:
        """Start no new job; :meth:`run` returns once the jobs in flight finish."""
        self._stopping = True
        if self._wake is not None:
            self._wake.set()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopping

    def add_periodic(
        self, name: str, every: timedelta, job: Callable[[], Awaitable[object]]
    ) -> PeriodicJob:
        """Run ``job`` every ``every`` (first at the next tick), quietly unless it fails:
        a failure is alerted and logged as a failed job, and the rest goes on."""
        if every <= timedelta(0):
            raise InvalidInput("periodic job", [FieldError("every", "must be positive", every)])
        periodic = PeriodicJob(name, every, job)
        self.periodic[name] = periodic
        return periodic

    def next_due(self) -> datetime | None:
        """When the next job is due (None: due now or nothing scheduled)."""
        moments: list[datetime] = []
        for periodic in self.periodic.values():
            if periodic.next_at is None:
                return None
            moments.append(periodic.next_at)
        for schedule in self.schedules.values():
            if schedule.next_poll is None:
                return None
            moments.append(schedule.next_poll)
            if schedule.policy.reconcile_every is not None and not schedule.paused:
                if schedule.next_reconcile is None:
                    return None
                moments.append(schedule.next_reconcile)
        for pos in self.pos.values():
            if pos.next_at is None:
                return None
            moments.append(pos.next_at)
        return min(moments, default=None)

    async def tick(self) -> list[JobOutcome]:
        """Run every job due now (channels concurrently, one channel's jobs in order)."""
        outcomes: list[JobOutcome] = []
        await self._prime()
        now = self._clock.now()
        channels = [s for s in self.schedules.values() if s.due(now)]
        folders = [p for p in self.pos.values() if p.due(now)]

        async def channel_jobs(schedule: ChannelSchedule) -> None:
            async with self._limit:
                if self._stopping:
                    return
                try:
                    await self._channel_jobs(schedule, outcomes)
                except Exception as exc:  # an adapter's bug must not stop the other channels
                    await self._crashed(schedule.channel.name, exc, outcomes)

        async def pos_jobs(pos: PosSchedule) -> None:
            async with self._limit:
                if self._stopping:
                    return
                try:
                    await self._pos_jobs(pos, outcomes)
                except Exception as exc:
                    await self._crashed(pos.channel, exc, outcomes)

        async def periodic_job(periodic: PeriodicJob) -> None:
            periodic.next_at = now + periodic.every
            if self._stopping:
                return
            try:
                await periodic.job()
            except Exception as exc:  # housekeeping must not stop the channels
                await self._crashed(periodic.name, exc, outcomes)

        due_periodic = [p for p in self.periodic.values() if p.due(now)]
        async with anyio.create_task_group() as group:
            for schedule in channels:
                group.start_soon(channel_jobs, schedule)
            for pos in folders:
                group.start_soon(pos_jobs, pos)
            for periodic in due_periodic:
                group.start_soon(periodic_job, periodic)
        return outcomes

    async def run(self, *, resolution: timedelta = timedelta(seconds=5)) -> None:
        """Tick until :meth:`stop`, sleeping until the next job is due (at most ``resolution``).

        A tick that fails on the storage (reading the ledger) is alerted and tried again
        after ``resolution``: the worker outlives a database restart.
        """
        while not self._stopping:
            try:
                await self.tick()
            except OrderCoreError as exc:
                await self._alert(AlertLevel.WARNING, "scheduler.tick_failed", "", str(exc))
            if self._stopping:
                break
            upcoming = self.next_due()
            wait = resolution
            if upcoming is not None:
                wait = min(resolution, max(upcoming - self._clock.now(), timedelta(0)))
            self._wake = anyio.Event()
            with anyio.move_on_after(wait.total_seconds()):
                await self._wake.wait()

    # -- the ledger tells when each job last ran -------------------------------------------

    async def _prime(self) -> None:
        for schedule in self.schedules.values():
            if schedule.primed:
                continue
            schedule.primed = True
            if self._credential_service is not None:  # tokens a refresh saved before a restart
                try:
                    await self._credential_service.restore(schedule.channel)
                except OrderCoreError as exc:
                    await self._alert(
                        AlertLevel.WARNING,
                        "channel.restore_failed",
                        schedule.channel.name,
                        f"{schedule.channel.name}: saved tokens could not be read: {exc}",
                    )
            runs = await self._intake.runs(schedule.channel.name, limit=_LEDGER_SCAN)
            last_poll = _latest(runs, "poll")
            if last_poll is not None and schedule.next_poll is None:
                schedule.next_poll = last_poll + schedule.policy.interval
            every = schedule.policy.reconcile_every
            last_reconcile = _latest(runs, "reconcile")
            if every is not None and last_reconcile is not None and schedule.next_reconcile is None:
                schedule.next_reconcile = last_reconcile + every
        for pos in self.pos.values():
            if pos.primed:
                continue
            pos.primed = True
            last_import = _latest(
                await self._intake.runs(pos.channel, limit=_LEDGER_SCAN), "import"
            )
            if last_import is not None and pos.next_at is None:
                pos.next_at = pos.policy.next_after(last_import)

    # -- channel jobs ----------------------------------------------------------------------

    async def _channel_jobs(self, schedule: ChannelSchedule, outcomes: list[JobOutcome]) -> None:
        now = self._clock.now()
        if schedule.poll_due(now):
            schedule.next_poll = now + schedule.policy.interval
            for outcome in (await self._credentials(schedule), await self._poll(schedule)):
                if outcome is not None:
                    self._emit(outcome, outcomes)
        if not self._stopping and schedule.reconcile_due(self._clock.now()):
            every = schedule.policy.reconcile_every
            assert every is not None  # reconcile_due checked it
            schedule.next_reconcile = self._clock.now() + every
            self._emit(await self._reconcile(schedule), outcomes)

    async def _poll(self, schedule: ChannelSchedule) -> JobOutcome:
        channel = schedule.channel
        job = schedule.policy.poll_job
        try:
            run = await self._intake.sync(channel)
        except ChannelAuthExpired as exc:
            if not schedule.paused:
                schedule.paused = True
                await self._alert(AlertLevel.HIGH, "channel.paused", channel.name, str(exc))
            return self._outcome(job, channel.name, "paused", message=str(exc))
        except OrderCoreError as exc:  # a storage failure: retried at the next due time
            await self._alert(AlertLevel.WARNING, "channel.sync_failed", channel.name, str(exc))
            return self._outcome(job, channel.name, "failed", message=str(exc))
        if schedule.paused:
            schedule.paused = False
            await self._alert(
                AlertLevel.INFO, "channel.resumed", channel.name, f"{channel.name} resumed"
            )
        return self._outcome(job, channel.name, str(run.status), run=run)

    async def _reconcile(self, schedule: ChannelSchedule) -> JobOutcome:
        assert self._replay is not None  # add() requires it for a reconciling policy
        channel = schedule.channel
        try:
            report = await self._replay.reconcile(
                channel, lookback=schedule.policy.reconcile_lookback
            )
        except OrderCoreError as exc:
            await self._alert(
                AlertLevel.WARNING, "channel.reconcile_failed", channel.name, str(exc)
            )
            return self._outcome("reconcile", channel.name, "failed", message=str(exc))
        details = {
            "missing": len(report.missing),
            "outdated": len(report.outdated),
            "reserved": len(report.reserved),
        }
        message = _findings(channel.name, report)
        if message:
            await self._alert(AlertLevel.WARNING, "channel.reconcile_found", channel.name, message)
        return self._outcome(
            "reconcile",
            channel.name,
            str(report.run.status),
            run=report.run,
            details=details,
            message=message,
        )

    async def _credentials(self, schedule: ChannelSchedule) -> JobOutcome | None:
        """Refresh credentials about to expire where allowed; otherwise warn once."""
        channel = schedule.channel
        try:
            status = await channel.credential_status()
        except OrderCoreError:
            return None
        now = self._clock.now()
        warning = await self._warn_before_reauthorisation(schedule, status, now)
        if status.state(now, self._settings.credential_warning) is not CredentialState.EXPIRING:
            return warning
        soonest = min(status.expires_at.values())
        if status.refreshable:
            if soonest in schedule.refresh_failed_for:
                return None
            try:
                renewed = await self._refresh(channel)
            except OrderCoreError as exc:
                schedule.refresh_failed_for.add(soonest)
                message = (
                    f"{channel.name}: refreshing the credentials that expire at "
                    f"{soonest.isoformat()} failed ({type(exc).__name__}: {exc}); "
                    "re-authorise before then"
                )
                await self._alert(
                    AlertLevel.WARNING, "channel.refresh_failed", channel.name, message
                )
                return self._outcome("refresh", channel.name, "refresh_failed", message=message)
            expires = min(renewed.expires_at.values(), default=None)
            return self._outcome(
                "refresh",
                channel.name,
                "refreshed",
                details={"expires_at": expires.isoformat() if expires else None},
            )
        if soonest in schedule.warned_for:
            return None
        schedule.warned_for.add(soonest)
        message = (
            f"{channel.name}: credentials expire at {soonest.isoformat()}; re-authorise before then"
        )
        await self._alert(AlertLevel.WARNING, "channel.credentials_expiring", channel.name, message)
        return self._outcome("credentials", channel.name, "expiring", message=message)

    async def _warn_before_reauthorisation(
        self, schedule: ChannelSchedule, status: CredentialStatus, now: datetime
    ) -> JobOutcome | None:
        """Warn once when a refreshable channel's refresh token itself runs out soon.

        Refreshing keeps the access token alive only until the refresh token expires;
        after that the seller must authorise the app again, so they hear of it ahead.
        """
        if not status.refreshable:
            return None
        deadline = status.reauthorise_by()
        if deadline is None or deadline - now > self._settings.credential_warning:
            return None
        if deadline in schedule.warned_for:
            return None
        schedule.warned_for.add(deadline)
        message = (
            f"{schedule.channel.name}: the refresh token expires at {deadline.isoformat()}; "
            "the seller must authorise the app again before then"
        )
        await self._alert(
            AlertLevel.WARNING, "channel.reauthorise_soon", schedule.channel.name, message
        )
        return self._outcome("credentials", schedule.channel.name, "expiring", message=message)

    # -- POS imports -----------------------------------------------------------------------

    async def _pos_jobs(self, pos: PosSchedule, outcomes: list[JobOutcome]) -> None:
        policy = pos.policy
        pos.next_at = policy.next_after(self._clock.now())
        try:
            files = await anyio.to_thread.run_sync(_matching_files, policy.folder, policy.patterns)
        except OSError as exc:
            message = f"POS folder {policy.folder} cannot be read: {exc.strerror or exc}"
            await self._alert(AlertLevel.WARNING, "pos.folder_unreadable", pos.channel, message)
            self._emit(self._outcome("import", pos.channel, "failed", message=message), outcomes)
            return
        for path in files:
            if self._stopping:
                return
            self._emit(await self._import_file(pos, path), outcomes)

    async def _import_file(self, pos: PosSchedule, path: Path) -> JobOutcome:
        assert self._imports is not None  # add_pos() requires it
        policy = pos.policy
        details: dict[str, Any] = {"file": path.name}
        try:
            data = await anyio.Path(path).read_bytes()
            report = await self._imports.import_pos_file(data, path.name, channel=pos.channel)
        except InvalidInput as exc:  # the file as a whole is bad: set aside, people look
            await _move(path, policy.folder / policy.failed)
            message = f"POS file {path.name} was not imported and moved to {policy.failed}/: {exc}"
            await self._alert(AlertLevel.WARNING, "pos.file_rejected", pos.channel, message)
            return self._outcome("import", pos.channel, "failed", details=details, message=message)
        except (OrderCoreError, OSError) as exc:  # storage or disk trouble: tomorrow again
            message = f"POS file {path.name} was not imported: {type(exc).__name__}: {exc}"
            await self._alert(AlertLevel.WARNING, "pos.import_failed", pos.channel, message)
            return self._outcome("import", pos.channel, "failed", details=details, message=message)
        if policy.archive is not None:
            await _move(path, policy.folder / policy.archive)
        return await self._import_outcome(pos.channel, report, details)

    async def _import_outcome(
        self, channel: str, report: ImportReport, details: dict[str, Any]
    ) -> JobOutcome:
        if report.already_imported:
            return self._outcome("import", channel, "already_imported", details=details)
        stored = report.stored
        details |= {
            "run": report.run_id,
            "orders": report.orders,
            "created": stored.created,
            "updated": stored.updated,
            "unchanged": stored.unchanged,
            "rejected_orders": report.rejected_orders,
            "row_errors": len(report.rejects),
        }
        message = ""
        if report.rejects:
            message = (
                f"POS file {details['file']}: {report.rejected_orders} orders rejected "
                f"({len(report.rejects)} row errors), kept for replay"
            )
            await self._alert(AlertLevel.WARNING, "pos.rows_rejected", channel, message)
        return self._outcome("import", channel, "succeeded", details=details, message=message)

    # -- reporting -------------------------------------------------------------------------

    async def _crashed(self, channel: str, exc: Exception, outcomes: list[JobOutcome]) -> None:
        message = f"{channel}: a job crashed: {type(exc).__name__}: {exc}"
        await self._alert(AlertLevel.HIGH, "channel.job_crashed", channel, message)
        self._emit(self._outcome("job", channel, "failed", message=message), outcomes)

    def _outcome(
        self,
        job: str,
        channel: str,
        status: str,
        *,
        run: SyncRun | None = None,
        details: Mapping[str, Any] | None = None,
        message: str = "",
    ) -> JobOutcome:
        return JobOutcome(
            job=job,
            channel=channel,
            status=status,
            at=self._clock.now(),
            run=run,
            details=details or {},
            message=mask_text(message),
        )

    def _emit(self, outcome: JobOutcome, outcomes: list[JobOutcome]) -> None:
        outcomes.append(outcome)
        if self._on_outcome is not None:
            self._on_outcome(outcome)

    async def _alert(self, level: AlertLevel, topic: str, channel: str, message: str) -> None:
        await self._notifier.send(
            Alert(
                level=level,
                topic=topic,
                message=mask_text(message),
                key=f"{topic}:{channel}",
                at=self._clock.now(),
                channel=channel,
            )
        )


def _latest(runs: Sequence[SyncRun], trigger: str) -> datetime | None:
    """When the newest run with ``trigger`` started (the ledger lists newest first)."""
    return max((run.started_at for run in runs if run.trigger == trigger), default=None)


def _findings(channel: str, report: ReconcileReport) -> str:
    if not report.missing and not report.outdated and not report.reserved:
        return ""
    parts = []
    if report.missing:
        parts.append(f"{len(report.missing)} orders the intake had missed ({_ids(report.missing)})")
    if report.outdated:
        parts.append(
            f"{len(report.outdated)} orders stored at an older version ({_ids(report.outdated)})"
        )
    if report.reserved:
        parts.append(
            f"{len(report.reserved)} stored orders without a reservation "
            f"({_ids(report.reserved)}, now reserved)"
        )
    failed = "" if report.run.status is RunStatus.SUCCEEDED else f"; run {report.run.status}"
    return f"{channel}: reconciliation found " + " and ".join(parts) + f", now stored{failed}"


def _ids(ids: Sequence[str], shown: int = 10) -> str:
    head = ", ".join(ids[:shown])
    return head + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


def _matching_files(folder: Path, patterns: Sequence[str]) -> list[Path]:
    return sorted(
        entry
        for entry in folder.iterdir()
        if entry.is_file() and any(fnmatch.fnmatch(entry.name.lower(), p.lower()) for p in patterns)
    )


async def _move(path: Path, folder: Path) -> None:
    def move() -> None:
        folder.mkdir(exist_ok=True)
        target = folder / path.name
        stem, suffix, number = target.stem, target.suffix, 1
        while target.exists():  # never overwrite an earlier file of the same name
            target = folder / f"{stem}.{number}{suffix}"
            number += 1
        shutil.move(path, target)

    await anyio.to_thread.run_sync(move)
