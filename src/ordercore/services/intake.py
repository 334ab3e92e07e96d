"""Channel intake: incremental sync runs, webhooks, exactly-once storage, the sync ledger.

A sync run of one channel:

1. checks its credentials (an expired channel pauses: the run is recorded as PAUSED and
   ChannelAuthExpired is raised for the caller's scheduler, other channels go on);
2. plans windows from the stored cursor (:func:`ordercore.domain.windows.plan_windows`);
3. per window, oldest first: fetches every page, dedups on (order id, modified time),
   checks the count against the platform's total and re-scans a short window; a window
   still short fails closed: the run stops and the cursor stays before it;
4. maps each record (a record that does not map is kept as a reject, whole, for replay),
   merges it with the stored order (newest platform version wins) and upserts the batch
   **in the same unit of work** that advances the cursor to the window's end;
5. reserves stock for new orders and releases it for cancelled ones: the run's new
   orders together when it ends (or once 10,000 wait), so that ``reserve_many`` holds
   each SKU's orders in few transactions; before any release, so an order created and
   cancelled within one run is reserved, then released;
6. records the run in the ledger with its counts, cursors and masked errors.

Webhooks are a hint: a verified delivery is stored through the same path (without
moving the cursor); the poll remains the source of truth.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ordercore.config import Settings
from ordercore.domain.channels import CredentialState, RawRecord, TimeWindow
from ordercore.domain.health import ReviewEntry, score_order
from ordercore.domain.intake import (
    Cursor,
    Feed,
    RejectedRecord,
    RunStatus,
    SyncRun,
    UpsertOutcome,
    merge_platform_version,
)
from ordercore.domain.inventory import ReservationLine
from ordercore.domain.orders import Order, OrderStatus
from ordercore.domain.privacy import mask_text
from ordercore.domain.windows import plan_windows
from ordercore.errors import (
    ChannelAuthExpired,
    ChannelUnavailable,
    InvalidOrder,
    OrderCoreError,
    ReservationNotFound,
    ReservationStateConflict,
    SignatureInvalid,
)
from ordercore.ports.channels import ChannelPort
from ordercore.ports.clock import Clock
from ordercore.ports.storage import Storage, UnitOfWork
from ordercore.services.credentials import CredentialService
from ordercore.services.push_hints import resolve_push_hints
from ordercore.services.reservations import InventoryService, ReserveRequest

__all__ = [
    "Guard",
    "IncompleteWindow",
    "IntakeService",
    "StoreHook",
    "StoreReport",
    "Versioning",
    "WebhookReport",
]

_RESERVABLE = (OrderStatus.PENDING_PAYMENT, OrderStatus.PAID)
_RESERVE_AFTER = 10_000
"""A sync run reserves its new orders when it ends, or sooner once this many wait.

Reserving many orders at once lets ``reserve_many`` take each (SKU, warehouse) group in
one transaction of up to ``coalesce_batch_size``: measured on 10,000 orders of 50 SKUs,
one call costs about half of two calls of 5,000 on PostgreSQL (per-transaction cost
dominates there). The bound caps the memory a backlog holds and how long a new order
waits for its stock: at the measured intake rates, a few seconds.
"""
_log = logging.getLogger("ordercore.intake")


class Versioning(Protocol):
    """Sets an incoming order's version from the stored one (None when new)."""

    def __call__(self, stored: Order | None, incoming: Order) -> Order: ...


class Guard(Protocol):
    """Runs in the last unit of a store; False rolls that unit back."""

    async def __call__(self, uow: UnitOfWork) -> bool: ...


class StoreHook(Protocol):
    """Runs in each batch's unit of work after its upsert (e.g. to write domain events)."""

    async def __call__(
        self, uow: UnitOfWork, orders: Sequence[Order], outcomes: Sequence[UpsertOutcome], /
    ) -> None: ...


class IncompleteWindow(ChannelUnavailable):
    """A window returned fewer orders than the platform said it holds, even after re-scans."""


@dataclass
class StoreReport:
    """What storing one batch of records did."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    rejected: int = 0
    queued_for_review: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: StoreReport) -> None:
        """Add another batch's counts to this one."""
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.stale += other.stale
        self.rejected += other.rejected
        self.queued_for_review += other.queued_for_review
        self.errors.extend(other.errors)


@dataclass
class _StockChanges:
    """New orders to reserve and cancelled ones to release, collected across stores.

    A sync run collects them over several windows so that they are reserved together:
    ``reserve_many`` groups them by SKU and location, so fewer, larger reservation
    transactions do the same work. It keeps the requests and order ids, not the orders.
    """

    reserve: list[ReserveRequest] = field(default_factory=list)
    release: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WebhookReport:
    """What one verified webhook delivery did."""

    message_id: str
    replayed: bool
    stored: StoreReport


class IntakeService:
    """Sync runs and webhook intake over the storage. Reached as ``core.intake``."""

    def __init__(
        self, storage: Storage, clock: Clock, settings: Settings, inventory: InventoryService
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._settings = settings
        self._inventory = inventory
        self.on_cancelled: Callable[[str], Awaitable[object]] | None = None
        """Called with each order a platform cancelled, after its stock is released."""

    # -- polling ---------------------------------------------------------------------------

    async def sync(
        self,
        channel: ChannelPort,
        *,
        trigger: str = "poll",
        first_sync_from: datetime | None = None,
    ) -> SyncRun:
        """Run one incremental sync of a channel's orders; return its ledger entry."""
        started = self._clock.now()
        run = SyncRun(
            id=os.urandom(8).hex(), channel=channel.name, trigger=trigger, started_at=started
        )
        async with self._storage.unit_of_work() as uow:
            cursor = await uow.intake.cursor(channel.name, Feed.ORDERS)
        before = cursor.position if cursor else None
        totals = StoreReport()
        counts = {"windows": 0, "pages": 0, "fetched": 0}
        position = before
        state: CredentialState | None = None
        status = RunStatus.SUCCEEDED
        stock = _StockChanges()
        try:
            state = await self._check_credentials(channel)
            plan = plan_windows(
                cursor=before,
                platform_now=await channel.platform_time(),
                limits=channel.limits,
                first_sync_from=first_sync_from,
            )
            if plan.gap is not None:
                totals.errors.append(
                    f"history gap: changes between {plan.gap.start} and {plan.gap.end} are "
                    "older than the platform keeps and could not be fetched"
                )
            for window in plan.windows:
                records, pages, rescans = await self.fetch_window(channel, window)
                orders, warnings, rejects, errors = self.map_records(channel, records, run.id)
                counts["pages"] += pages
                counts["fetched"] += len(records)
                report = await self._store(
                    channel.name,
                    orders,
                    rejects,
                    stock,
                    advance_to=window.end,
                    retries=rescans,
                    warnings=warnings,
                )
                assert report is not None  # no guard: always stored
                report.errors[:0] = errors
                totals.add(report)
                counts["windows"] += 1
                position = window.end
                if stock.release or len(stock.reserve) >= _RESERVE_AFTER:
                    await self._apply_stock(stock, totals)
        except ChannelAuthExpired as exc:
            status = RunStatus.PAUSED
            state = CredentialState.EXPIRED
            totals.errors.append(mask_text(str(exc)))
            await self._settle(stock, totals)
            await self._finish(run, status, totals, counts, before, position, state)
            raise
        except OrderCoreError as exc:
            status = RunStatus.PARTIAL if position != before else RunStatus.FAILED
            totals.errors.append(mask_text(f"{type(exc).__name__}: {exc}"))
        if not await self._settle(stock, totals) and status is RunStatus.SUCCEEDED:
            status = RunStatus.PARTIAL
        return await self._finish(run, status, totals, counts, before, position, state)

    async def _settle(self, stock: _StockChanges, totals: StoreReport) -> bool:
        """Apply the stock changes a run still holds; False (error noted) when storage failed.

        The orders are stored and the cursor is past them either way: a failure here
        leaves them unreserved, as a failure right after a window's store always could.
        """
        try:
            await self._apply_stock(stock, totals)
        except OrderCoreError as exc:
            totals.errors.append(mask_text(f"{type(exc).__name__}: {exc}"))
            return False
        return True

    async def _check_credentials(self, channel: ChannelPort) -> CredentialState:
        # Saved tokens first (a restart, another process), then refresh-and-save if expired.
        credentials = CredentialService(self._storage, self._clock)
        return await credentials.check(channel, self._settings.credential_warning)

    async def fetch_window(
        self, channel: ChannelPort, window: TimeWindow
    ) -> tuple[list[RawRecord], int, int]:
        """A window's records, deduplicated and checked against the platform's total.

        Returns (records, pages read, re-scans needed).
        """
        pages_read = 0
        for attempt in range(self._settings.window_rescans + 1):
            seen: dict[tuple[str, datetime], RawRecord] = {}
            totals: set[int] = set()
            token: str | None = None
            while True:
                page = await channel.fetch_orders(window, token)
                pages_read += 1
                if page.total is not None:
                    totals.add(page.total)
                for record in page.records:
                    if window.contains(record.modified_at):
                        seen.setdefault(record.version_key, record)
                token = page.next_page
                if token is None:
                    break
            expected = max(totals) if totals else None
            distinct = len({key[0] for key in seen})
            if expected is None or (len(totals) == 1 and distinct >= expected):
                return list(seen.values()), pages_read, attempt
            if attempt == self._settings.window_rescans:
                raise IncompleteWindow(
                    f"channel {channel.name!r} window {window.start}..{window.end}: fetched "
                    f"{distinct} orders, the platform reports {sorted(totals)} after "
                    f"{attempt + 1} scans; the cursor stays before this window"
                )
        raise AssertionError("unreachable")  # pragma: no cover

    # -- storing ---------------------------------------------------------------------------

    def map_records(
        self, channel: ChannelPort, records: Sequence[RawRecord], run_id: str | None
    ) -> tuple[list[Order], dict[str, tuple[str, ...]], list[RejectedRecord], list[str]]:
        """Map the newest version of each record: (orders, warnings, rejects, errors)."""
        now = self._clock.now()
        newest: dict[str, RawRecord] = {}
        for record in records:
            kept = newest.get(record.external_id)
            if kept is None or record.modified_at > kept.modified_at:
                newest[record.external_id] = record
        mapped: list[Order] = []
        warnings: dict[str, tuple[str, ...]] = {}
        rejects: list[RejectedRecord] = []
        errors: list[str] = []
        for record in newest.values():
            try:
                result = channel.map_order(record)
            except InvalidOrder as exc:
                reason = mask_text(str(exc))
                errors.append(reason)
                rejects.append(_reject(record, reason, run_id, now))
                continue
            order = result.order
            warnings[order.external_id] = result.warnings
            if order.source_modified_at != record.modified_at:
                order = order.model_copy(update={"source_modified_at": record.modified_at})
            mapped.append(order)
        return mapped, warnings, rejects, errors

    async def store_orders(
        self,
        channel: str,
        orders: Sequence[Order],
        rejects: Sequence[RejectedRecord] = (),
        *,
        advance_to: datetime | None = None,
        retries: int = 0,
        warnings: Mapping[str, tuple[str, ...]] | None = None,
        versioning: Versioning | None = None,
        guard: Guard | None = None,
        on_stored: StoreHook | None = None,
    ) -> StoreReport | None:
        """Store canonical orders of one channel exactly once; the path every intake shares.

        Orders (the last one per external id wins) are merged with what is stored (the
        newest platform version wins: ``source_modified_at``), upserted in batches of
        ``settings.intake_batch_size``, each batch's weak orders queued for review in the
        same unit. The last unit also keeps ``rejects``, advances the cursor to
        ``advance_to`` and runs ``guard``: when the guard returns False, that unit is
        rolled back and None is returned (earlier batches are idempotent upserts).
        Afterwards new orders reserve stock and newly cancelled ones release it.
        ``versioning`` may set each incoming order's version from the stored one.
        ``on_stored`` runs in each batch's unit with the merged orders and their outcomes.
        """
        stock = _StockChanges()
        report = await self._store(
            channel,
            orders,
            rejects,
            stock,
            advance_to=advance_to,
            retries=retries,
            warnings=warnings,
            versioning=versioning,
            guard=guard,
            on_stored=on_stored,
        )
        if report is not None:
            await self._apply_stock(stock, report)
        return report

    async def _store(
        self,
        channel: str,
        orders: Sequence[Order],
        rejects: Sequence[RejectedRecord],
        stock: _StockChanges,
        *,
        advance_to: datetime | None = None,
        retries: int = 0,
        warnings: Mapping[str, tuple[str, ...]] | None = None,
        versioning: Versioning | None = None,
        guard: Guard | None = None,
        on_stored: StoreHook | None = None,
    ) -> StoreReport | None:
        """:meth:`store_orders` without the stock step: what it would do is added to ``stock``."""
        now = self._clock.now()
        report = StoreReport(rejected=len(rejects))
        latest: dict[str, Order] = {}
        for order in orders:
            latest[order.external_id] = order
        pending = list(latest.values())
        created, cancelled = stock.reserve, stock.release
        warehouse = self._settings.default_warehouse
        size = self._settings.intake_batch_size
        for start in range(0, max(len(pending), 1), size):
            batch = pending[start : start + size]
            last = start + size >= len(pending)
            async with self._storage.unit_of_work() as uow:
                stored = await uow.orders.get_many_by_external(
                    channel, [order.external_id for order in batch]
                )
                merged = []
                for order in batch:
                    previous = stored.get(order.external_id)
                    versioned = versioning(previous, order) if versioning else order
                    merged.append(merge_platform_version(previous, versioned, now))
                outcomes = await uow.orders.upsert_many(merged) if merged else []
                reviews = self._reviews(merged, outcomes, warnings or {}, retries, now)
                if reviews:
                    await uow.intake.enqueue_reviews(reviews)
                if on_stored is not None:
                    await on_stored(uow, merged, outcomes)
                if last:
                    if guard is not None and not await guard(uow):
                        return None
                    if rejects:
                        await uow.intake.add_rejects(rejects)
                    if advance_to is not None:
                        await uow.intake.advance_cursor(
                            Cursor(
                                channel=channel,
                                feed=Feed.ORDERS,
                                position=advance_to,
                                updated_at=now,
                            )
                        )
                await uow.commit()
            report.queued_for_review += len(reviews)
            for order, outcome in zip(merged, outcomes, strict=True):
                _count(report, outcome)
                if outcome is UpsertOutcome.CREATED and order.status in _RESERVABLE:
                    created.append(_request(order, warehouse))
                elif outcome is UpsertOutcome.UPDATED and order.status is OrderStatus.CANCELLED:
                    cancelled.append(order.id)
        return report

    async def _apply_stock(self, changes: _StockChanges, report: StoreReport) -> None:
        """Reserve the collected new orders, then release the cancelled ones; empty it.

        Reservations go first: an order created in one window and cancelled in a later
        one is reserved, then released, as if each window had been applied at once.
        Orders that cannot be reserved or released are named in ``report.errors``.
        """
        reserve, release = changes.reserve[:], changes.release[:]
        changes.reserve.clear()
        changes.release.clear()
        await self._reserve(reserve, report)
        await self._release(release, report)

    def _reviews(
        self,
        orders: Sequence[Order],
        outcomes: Sequence[UpsertOutcome],
        warnings: Mapping[str, tuple[str, ...]],
        retries: int,
        now: datetime,
    ) -> list[ReviewEntry]:
        """Score the orders this batch created or updated; those below the bar go to review."""
        policy = self._settings.health_policy
        entries: list[ReviewEntry] = []
        for order, outcome in zip(orders, outcomes, strict=True):
            if outcome not in (UpsertOutcome.CREATED, UpsertOutcome.UPDATED):
                continue
            health = score_order(
                order,
                ingested_at=now,
                retries=retries,
                warnings=warnings.get(order.external_id, ()),
                policy=policy,
            )
            if health.needs_review(policy):
                entries.append(
                    ReviewEntry(
                        order_id=order.id,
                        channel=order.channel,
                        score=health.score,
                        reasons=health.reasons,
                        entered_at=now,
                    )
                )
        return entries

    async def reserve_unreserved(self, orders: Sequence[Order]) -> list[str]:
        """Reserve those of ``orders`` that should hold stock and have no reservation at all.

        Stock for new orders is reserved after they are stored; a process that stopped in
        between leaves stored orders without a reservation. Reconciliation calls this
        for the orders it sees, so such orders get their stock. An order whose reservation
        was released, committed or expired has one and is left alone. Returns the ids
        reserved; orders that cannot be (no stock) are left for the review of stock.
        """
        waiting = [order for order in orders if order.status in _RESERVABLE]
        if not waiting:
            return []
        async with self._storage.unit_of_work() as uow:
            held = await uow.inventory.reservations([order.id for order in waiting])
        warehouse = self._settings.default_warehouse
        requests = [_request(order, warehouse) for order in waiting if order.id not in held]
        if not requests:
            return []
        outcomes = await self._inventory.reserve_many(requests)
        return [
            request.order_id
            for request, outcome in zip(requests, outcomes, strict=True)
            if not isinstance(outcome, OrderCoreError)
        ]

    async def _reserve(self, requests: Sequence[ReserveRequest], report: StoreReport) -> None:
        if not requests:
            return
        outcomes = await self._inventory.reserve_many(requests)
        for request, outcome in zip(requests, outcomes, strict=True):
            if isinstance(outcome, OrderCoreError):
                report.errors.append(
                    mask_text(f"order {request.order_id}: not reserved: {outcome}")
                )

    async def _release(self, order_ids: Sequence[str], report: StoreReport) -> None:
        for order_id in order_ids:
            try:
                await self._inventory.release(order_id)
            except (ReservationNotFound, ReservationStateConflict) as exc:
                report.errors.append(mask_text(f"order {order_id}: not released: {exc}"))
            if self.on_cancelled is not None:  # core.shipments.intercept: stop its parcels
                try:
                    await self.on_cancelled(order_id)
                except OrderCoreError as exc:
                    report.errors.append(mask_text(f"order {order_id}: not intercepted: {exc}"))

    async def _finish(
        self,
        run: SyncRun,
        status: RunStatus,
        totals: StoreReport,
        counts: Mapping[str, int],
        before: datetime | None,
        after: datetime | None,
        state: CredentialState | None,
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
                "cursor_before": before,
                "cursor_after": after,
                "credential_state": state,
                "errors": tuple(totals.errors),
                **counts,
            }
        )
        async with self._storage.unit_of_work() as uow:
            await uow.intake.save_run(finished)
            await uow.commit()
        return finished

    # -- webhooks --------------------------------------------------------------------------

    async def ingest_webhook(
        self, channel: ChannelPort, headers: Mapping[str, str], body: bytes
    ) -> WebhookReport:
        """Verify a push (SignatureInvalid: logged, nothing stored) and store its orders once."""
        try:
            delivery = channel.verify_webhook(headers, body, self._clock.now())
        except SignatureInvalid as exc:
            _log.warning(
                "webhook rejected",
                extra={"channel": channel.name, "reason": mask_text(str(exc)), "bytes": len(body)},
            )
            raise
        async with self._storage.unit_of_work() as uow:
            fresh = await uow.intake.remember_deliveries(
                channel.name, [delivery.message_id], self._clock.now()
            )
            await uow.commit()
        if delivery.message_id not in fresh:
            return WebhookReport(delivery.message_id, True, StoreReport())
        looked_up, missing, lookup_errors = await resolve_push_hints(
            channel, delivery, self._clock.now()
        )
        records = [*delivery.records, *looked_up]
        orders, warnings, rejects, errors = self.map_records(channel, records, None)
        stored = await self.store_orders(
            channel.name, orders, [*rejects, *missing], warnings=warnings
        )
        assert stored is not None  # no guard: always stored
        stored.errors[:0] = [*lookup_errors, *errors]
        return WebhookReport(delivery.message_id, False, stored)

    # -- the ledger ------------------------------------------------------------------------

    async def runs(self, channel: str | None = None, *, limit: int = 50) -> list[SyncRun]:
        """Ledger entries, newest first."""
        async with self._storage.unit_of_work() as uow:
            return await uow.intake.runs(channel, limit=limit)

    async def review_queue(
        self, channel: str | None = None, *, limit: int = 100
    ) -> list[ReviewEntry]:
        """Orders whose health score fell under the review threshold, lowest first."""
        async with self._storage.unit_of_work() as uow:
            return await uow.intake.review_queue(channel, limit=limit)

    async def resolve_review(self, order_id: str) -> bool:
        """Take an order off the review queue (a person checked it)."""
        async with self._storage.unit_of_work() as uow:
            resolved = await uow.intake.resolve_review(order_id, self._clock.now())
            await uow.commit()
        return resolved

    async def rejects(self, channel: str | None = None) -> list[RejectedRecord]:
        """Unresolved rejected payloads, oldest first."""
        async with self._storage.unit_of_work() as uow:
            return await uow.intake.rejects(channel)


def _count(report: StoreReport, outcome: UpsertOutcome) -> None:
    if outcome is UpsertOutcome.CREATED:
        report.created += 1
    elif outcome is UpsertOutcome.UPDATED:
        report.updated += 1
    elif outcome is UpsertOutcome.UNCHANGED:
        report.unchanged += 1
    else:
        report.stale += 1


def _request(order: Order, warehouse: str) -> ReserveRequest:
    """The reservation of a new order: each line in its warehouse, or the default one."""
    return ReserveRequest(
        order.id,
        [
            ReservationLine(line.sku, line.warehouse or warehouse, line.quantity)
            for line in order.lines
        ],
        buyer_id=order.buyer_id,
    )


def _reject(record: RawRecord, reason: str, run_id: str | None, at: datetime) -> RejectedRecord:
    return RejectedRecord(
        id=os.urandom(8).hex(),
        channel=record.channel,
        kind=record.kind,
        external_id=record.external_id,
        modified_at=record.modified_at,
        payload=record.payload,
        reason=reason,
        run_id=run_id,
        rejected_at=at,
    )
