"""Replay: re-fetch a window, re-map kept rejects, and reconcile recent windows.

Each operation stores through the same merge + upsert + reserve path as a sync (newest
platform version wins, so replaying what is already stored changes nothing), never
moves the channel's cursor, and records a ledger entry (trigger ``replay`` or
``reconcile``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ordercore.config import Settings
from ordercore.domain.channels import RawRecord, RecordKind, TimeWindow
from ordercore.domain.intake import RejectedRecord, RunStatus, SyncRun
from ordercore.domain.orders import Order
from ordercore.domain.privacy import mask_text
from ordercore.errors import FieldError, InvalidInput, InvalidOrder, OrderCoreError
from ordercore.ports.channels import ChannelPort
from ordercore.ports.clock import Clock
from ordercore.ports.storage import Storage
from ordercore.services.intake import IntakeService, StoreReport

__all__ = ["ReconcileReport", "RejectReplay", "ReplayService"]


@dataclass
class RejectReplay:
    """What re-mapping a channel's kept rejects did."""

    run: SyncRun
    resolved: list[str] = field(default_factory=list)
    """Ids of the rejects that now map and were stored."""
    still_rejected: list[str] = field(default_factory=list)


@dataclass
class ReconcileReport:
    """What a reconciliation pass found: orders the platform has and the store did not."""

    run: SyncRun
    windows: list[TimeWindow]
    missing: list[str]
    """External ids fetched from the platform that were not stored (now stored)."""
    outdated: list[str] = field(default_factory=list)
    """External ids stored at an older platform version than fetched (now updated)."""
    reserved: list[str] = field(default_factory=list)
    """Order ids that were stored without a reservation (the process stopped between
    storing and reserving) and are now reserved."""


class ReplayService:
    """Replays and reconciliation over the storage. Reached as ``core.replay``."""

    def __init__(
        self, storage: Storage, clock: Clock, settings: Settings, intake: IntakeService
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._settings = settings
        self._intake = intake

    async def replay_window(self, channel: ChannelPort, start: datetime, end: datetime) -> SyncRun:
        """Fetch ``[start, end)`` again and store it; the cursor does not move.

        The window is clipped to what the platform can answer: no earlier than its history
        depth, no later than its clock minus its lag.
        """
        limits = channel.limits
        now = await channel.platform_time()
        clipped = _window(max(start, now - limits.history_depth), min(end, now - limits.lag))
        windows = _split(clipped, limits.max_window)
        run, _, _, _ = await self._scan(channel, windows, "replay")
        return run

    async def reconcile(self, channel: ChannelPort, *, lookback: timedelta) -> ReconcileReport:
        """Re-scan the last ``lookback`` of windows; report (and store) what was missed."""
        if lookback <= timedelta(0):
            raise InvalidInput("reconcile", [FieldError("lookback", "must be positive", lookback)])
        end = (await channel.platform_time()) - channel.limits.lag
        windows = _split(_window(end - lookback, end), channel.limits.max_window)
        run, missing, outdated, reserved = await self._scan(channel, windows, "reconcile")
        return ReconcileReport(
            run=run, windows=windows, missing=missing, outdated=outdated, reserved=reserved
        )

    async def replay_rejects(self, channel: ChannelPort, *, limit: int = 1000) -> RejectReplay:
        """Map each unresolved order reject again; store and resolve those that now map."""
        started = self._clock.now()
        async with self._storage.unit_of_work() as uow:
            kept = await uow.intake.rejects(channel.name, limit=limit)
        mapped: list[tuple[RejectedRecord, Order]] = []
        outcome = RejectReplay(run=_run(channel, "replay", started))
        for reject in kept:
            if reject.kind is not RecordKind.ORDER:
                outcome.still_rejected.append(reject.id)
                continue
            record = RawRecord(
                channel=channel.name,
                external_id=reject.external_id,
                modified_at=reject.modified_at,
                payload=reject.payload,
            )
            try:
                order = channel.map_order(record).order
            except InvalidOrder:
                outcome.still_rejected.append(reject.id)
                continue
            mapped.append(
                (reject, order.model_copy(update={"source_modified_at": record.modified_at}))
            )
        report = await self._store(channel, [order for _, order in mapped], [])
        async with self._storage.unit_of_work() as uow:
            for reject, _ in mapped:
                if await uow.intake.resolve_reject(reject.id, self._clock.now()):
                    outcome.resolved.append(reject.id)
            await uow.commit()
        outcome.run = await self._finish(
            outcome.run, RunStatus.SUCCEEDED, report, fetched=len(kept), windows=0, pages=0
        )
        return outcome

    async def _scan(
        self, channel: ChannelPort, windows: Sequence[TimeWindow], trigger: str
    ) -> tuple[SyncRun, list[str], list[str], list[str]]:
        run = _run(channel, trigger, self._clock.now())
        totals = StoreReport()
        counts = {"windows": 0, "pages": 0, "fetched": 0}
        missing: list[str] = []
        outdated: list[str] = []
        reserved_late: list[str] = []
        status = RunStatus.SUCCEEDED
        async with self._storage.unit_of_work() as uow:  # a reject kept already is not kept twice
            kept = {
                (r.external_id, r.modified_at)
                for r in await uow.intake.rejects(channel.name, limit=10_000)
            }
        try:
            for window in windows:
                records, pages, _rescans = await self._intake.fetch_window(channel, window)
                counts["pages"] += pages
                counts["fetched"] += len(records)
                async with self._storage.unit_of_work() as uow:
                    stored = await uow.orders.get_many_by_external(
                        channel.name, [record.external_id for record in records]
                    )
                for record in records:
                    known = stored.get(record.external_id)
                    if known is None:
                        missing.append(record.external_id)
                    elif (
                        known.source_modified_at is not None
                        and record.modified_at > known.source_modified_at
                    ):
                        outdated.append(record.external_id)
                orders, _warnings, rejects, _errors = self._intake.map_records(
                    channel, records, run.id
                )
                rejects = [r for r in rejects if (r.external_id, r.modified_at) not in kept]
                totals.add(await self._store(channel, orders, rejects))
                if trigger == "reconcile" and stored:  # stored before a crash, never reserved
                    async with self._storage.unit_of_work() as uow:
                        current = await uow.orders.get_many_by_external(channel.name, list(stored))
                    reserved_late += await self._intake.reserve_unreserved(list(current.values()))
                counts["windows"] += 1
        except OrderCoreError as exc:
            status = RunStatus.PARTIAL if counts["windows"] else RunStatus.FAILED
            totals.errors.append(mask_text(f"{type(exc).__name__}: {exc}"))
        finished = await self._finish(run, status, totals, **counts)
        return (
            finished,
            sorted(set(missing)),
            sorted(set(outdated) - set(missing)),
            sorted(reserved_late),
        )

    async def _store(
        self, channel: ChannelPort, orders: Sequence[Order], rejects: Sequence[RejectedRecord]
    ) -> StoreReport:
        report = await self._intake.store_orders(channel.name, orders, rejects)
        assert report is not None  # no guard: always stored
        report.rejected = len(rejects)
        return report

    async def _finish(
        self, run: SyncRun, status: RunStatus, totals: StoreReport, **counts: int
    ) -> SyncRun:
        finished = run.model_copy(
            update={
                "status": status,
                "finished_at": self._clock.now(),
                "created": totals.created,
                "updated": totals.updated,
                "unchanged": totals.unchanged,
                "stale": totals.stale,
                "rejected": totals.rejected,
                "errors": tuple(totals.errors),
                **counts,
            }
        )
        async with self._storage.unit_of_work() as uow:
            await uow.intake.save_run(finished)
            await uow.commit()
        return finished


def _run(channel: ChannelPort, trigger: str, at: datetime) -> SyncRun:
    return SyncRun(id=os.urandom(8).hex(), channel=channel.name, trigger=trigger, started_at=at)


def _window(start: datetime, end: datetime) -> TimeWindow:
    try:
        return TimeWindow(start=start, end=end)
    except ValueError as exc:
        raise InvalidInput("replay window", [FieldError("window", str(exc), None)]) from None


def _split(window: TimeWindow, step: timedelta) -> list[TimeWindow]:
    windows: list[TimeWindow] = []
    start = window.start
    while start < window.end:
        end = min(start + step, window.end)
        windows.append(TimeWindow(start=start, end=end))
        start = end
    return windows
