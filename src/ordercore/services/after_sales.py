"""After-sales: refunds, returns, exchanges and resends pulled from channels, and inspections.

Reached as ``core.after_sales``. A sync run of one channel's after-sales feed follows the
order intake step for step, on its own cursor (``Feed.AFTER_SALES``):

1. credentials are checked (an expired channel pauses: recorded, ChannelAuthExpired);
2. windows are planned from the feed's cursor with the adapter's ``after_sales_limits``
   (:func:`ordercore.domain.windows.plan_windows`);
3. each window is read completely (:func:`~ordercore.services.feed_windows.
   fetch_complete_window`: dedup, count check, re-scans, fail closed);
4. records are mapped (a record that does not map is kept whole as a reject), linked to
   the stored order of the same platform order, merged with the stored request (the
   newest platform version wins) and upserted exactly once per (channel, external id)
   **in the same unit of work** that advances the cursor to the window's end;
5. agreed refunds (approved or refunded) that take back every unit of a linked order
   that has not shipped are handed to interception (``core.shipments.intercept``);
6. the run is recorded in the sync ledger with ``feed=after_sales``.

A request whose order is not stored yet is kept unlinked and counted in the run's
errors; :meth:`AfterSalesService.link_pending` links it once the order arrives (every
sync run calls it for its channel first).

:meth:`AfterSalesService.inspect` grades the returned units and restocks them in one
unit of work, once per request: sellable units are received back into their warehouse,
defective ones into ``settings.defective_warehouse`` (on hand, never sellable: 100 %
safety stock there) and scrap is recorded in the inspection only.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from opentelemetry import trace

from ordercore.config import Settings
from ordercore.domain.after_sales import (
    AfterSale,
    AfterSaleKind,
    AfterSaleStatus,
    Inspection,
    InspectionLine,
    check_inspection,
    merge_after_sale,
)
from ordercore.domain.channels import CredentialState, RawRecord
from ordercore.domain.intake import Cursor, Feed, RejectedRecord, RunStatus, SyncRun, UpsertOutcome
from ordercore.domain.orders import Order, OrderStatus
from ordercore.domain.privacy import mask_text
from ordercore.domain.windows import plan_windows
from ordercore.errors import (
    AfterSaleNotFound,
    ChannelAuthExpired,
    FieldError,
    InspectionConflict,
    InvalidInput,
    OrderCoreError,
)
from ordercore.ports.channels import AfterSalesPort, ChannelPort
from ordercore.ports.clock import Clock
from ordercore.ports.storage import Storage, UnitOfWork
from ordercore.services.credentials import CredentialService
from ordercore.services.feed_windows import fetch_complete_window
from ordercore.services.reservations import InventoryService

__all__ = ["AfterSalesService", "InspectionReport", "Interceptor", "LinkReport"]

_log = logging.getLogger("ordercore.after_sales")
tracer = trace.get_tracer("ordercore")

_REFUNDS = frozenset({AfterSaleKind.REFUND_ONLY, AfterSaleKind.RETURN_REFUND})
_AGREED = frozenset({AfterSaleStatus.APPROVED, AfterSaleStatus.REFUNDED})
"""A refund stops an unshipped order once agreed: a mere request may still be refused."""
_UNSHIPPED = frozenset(
    {OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.ALLOCATED, OrderStatus.ON_HOLD}
)
_FULL_SAFETY_BP = 10_000
_NAMED = 20
"""How many unlinked requests a run's ledger entry names (the rest are counted)."""


class Interceptor(Protocol):
    """Stops an order that has not shipped (``core.shipments.intercept``).

    Must be idempotent per order: a refund seen again (a newer version, a retry after a
    crash between the call and its record) may hand the same order over twice.
    """

    def __call__(self, order_id: str, reason: str) -> Awaitable[object]: ...


@dataclass(frozen=True, slots=True)
class InspectionReport:
    """The recorded inspection, and whether this call recorded it (False: a retry)."""

    inspection: Inspection
    created: bool


@dataclass
class LinkReport:
    """What a linking pass did."""

    linked: int = 0
    handed_over: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Totals:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    unlinked: list[str] = field(default_factory=list)

    def count(self, outcome: UpsertOutcome) -> None:
        if outcome is UpsertOutcome.CREATED:
            self.created += 1
        elif outcome is UpsertOutcome.UPDATED:
            self.updated += 1
        elif outcome is UpsertOutcome.UNCHANGED:
            self.unchanged += 1
        else:
            self.stale += 1


class AfterSalesService:
    """After-sales sync, linking, interception hand-over and inspection restock."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        settings: Settings,
        inventory: InventoryService,
        *,
        intercept: Interceptor | None = None,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._settings = settings
        self._inventory = inventory
        self.intercept: Interceptor | None = intercept
        """Where refunds of unshipped orders go; None: they wait (see :meth:`pending_handover`)."""

    # -- sync --------------------------------------------------------------------------------

    async def sync(
        self,
        channel: ChannelPort,
        *,
        trigger: str = "poll",
        first_sync_from: datetime | None = None,
    ) -> SyncRun:
        """Run one incremental sync of a channel's after-sales; return its ledger entry.

        Raises InvalidInput when the channel's adapter has no after-sales feed, and
        ChannelAuthExpired (after recording a paused run) when its credentials expired.
        """
        with tracer.start_as_current_span(
            "ordercore.after_sales.sync", attributes={"ordercore.channel": channel.name}
        ) as span:
            run = await self._sync(channel, trigger, first_sync_from)
            span.set_attribute("ordercore.after_sales.fetched", run.fetched)
            span.set_attribute("ordercore.after_sales.created", run.created)
            span.set_attribute("ordercore.after_sales.updated", run.updated)
            return run

    async def _sync(
        self, channel: ChannelPort, trigger: str, first_sync_from: datetime | None
    ) -> SyncRun:
        if not isinstance(channel, AfterSalesPort):
            raise InvalidInput(
                "after-sales sync",
                [
                    FieldError(
                        "channel",
                        f"its {channel.kind} adapter has no after-sales feed "
                        "(fetch_after_sales, map_after_sale)",
                        channel.name,
                    )
                ],
            )
        run = SyncRun(
            id=os.urandom(8).hex(),
            channel=channel.name,
            feed=Feed.AFTER_SALES,
            trigger=trigger,
            started_at=self._clock.now(),
        )
        async with self._storage.unit_of_work() as uow:
            cursor = await uow.intake.cursor(channel.name, Feed.AFTER_SALES)
        before = cursor.position if cursor else None
        position = before
        totals = _Totals()
        counts = {"windows": 0, "pages": 0, "fetched": 0}
        state: CredentialState | None = None
        status = RunStatus.SUCCEEDED
        handover: list[AfterSale] = []
        try:
            state = await CredentialService(self._storage, self._clock).check(
                channel, self._settings.credential_warning
            )
            linked = await self.link_pending(channel.name)
            totals.errors.extend(linked.errors)
            plan = plan_windows(
                cursor=before,
                platform_now=await channel.platform_time(),
                limits=channel.after_sales_limits,
                first_sync_from=first_sync_from,
            )
            if plan.gap is not None:
                totals.errors.append(
                    f"history gap: after-sales changed between {plan.gap.start} and "
                    f"{plan.gap.end} are older than the platform keeps and could not be fetched"
                )
            for window in plan.windows:
                fetched = await fetch_complete_window(
                    channel.fetch_after_sales,
                    window,
                    rescans=self._settings.window_rescans,
                    what=f"channel {channel.name!r} after-sales",
                )
                counts["pages"] += fetched.pages
                counts["fetched"] += len(fetched.records)
                mapped, rejects = self._map(channel, fetched.records, run.id, totals)
                handover.extend(
                    await self._store(channel.name, mapped, rejects, window.end, totals)
                )
                counts["windows"] += 1
                position = window.end
        except ChannelAuthExpired as exc:
            totals.errors.append(mask_text(str(exc)))
            await self._finish(
                run, RunStatus.PAUSED, totals, counts, before, position, CredentialState.EXPIRED
            )
            raise
        except OrderCoreError as exc:
            status = RunStatus.PARTIAL if position != before else RunStatus.FAILED
            totals.errors.append(mask_text(f"{type(exc).__name__}: {exc}"))
        await self._hand_over(handover, totals.errors)
        return await self._finish(run, status, totals, counts, before, position, state)

    def _map(
        self,
        channel: AfterSalesPort,
        records: Sequence[RawRecord],
        run_id: str,
        totals: _Totals,
    ) -> tuple[list[AfterSale], list[RejectedRecord]]:
        """The newest version of each record, mapped; those that do not map as rejects."""
        now = self._clock.now()
        newest: dict[str, RawRecord] = {}
        for record in records:
            kept = newest.get(record.external_id)
            if kept is None or record.modified_at > kept.modified_at:
                newest[record.external_id] = record
        mapped: list[AfterSale] = []
        rejects: list[RejectedRecord] = []
        for record in newest.values():
            try:
                after_sale = channel.map_after_sale(record)
            except InvalidInput as exc:
                reason = mask_text(str(exc))
                totals.errors.append(reason)
                rejects.append(
                    RejectedRecord(
                        id=os.urandom(8).hex(),
                        channel=record.channel,
                        kind=record.kind,
                        external_id=record.external_id,
                        modified_at=record.modified_at,
                        payload=record.payload,
                        reason=reason,
                        run_id=run_id,
                        rejected_at=now,
                    )
                )
                continue
            if after_sale.source_modified_at != record.modified_at:
                after_sale = after_sale.model_copy(
                    update={"source_modified_at": record.modified_at}
                )
            mapped.append(after_sale)
        return mapped, rejects

    async def _store(
        self,
        channel: str,
        after_sales: Sequence[AfterSale],
        rejects: Sequence[RejectedRecord],
        advance_to: datetime,
        totals: _Totals,
    ) -> list[AfterSale]:
        """Link, merge and upsert one window; advance the cursor in the last unit.

        Returns the requests this window created or changed (for the hand-over).
        """
        now = self._clock.now()
        size = self._settings.intake_batch_size
        changed: list[AfterSale] = []
        totals.rejected += len(rejects)
        for start in range(0, max(len(after_sales), 1), size):
            batch = after_sales[start : start + size]
            last = start + size >= len(after_sales)
            async with self._storage.unit_of_work() as uow:
                stored = await uow.after_sales.get_many_by_external(
                    channel, [item.external_id for item in batch]
                )
                orders = await uow.orders.get_many_by_external(
                    channel, sorted({item.order_external_id for item in batch})
                )
                merged = []
                for item in batch:
                    order = orders.get(item.order_external_id)
                    if order is not None and item.order_id is None:
                        item = item.model_copy(update={"order_id": order.id})
                    previous = stored.get(item.external_id)
                    if previous is not None and not _is_newer(item, previous):
                        # Sent as it came, so the storage reports it stale or unchanged.
                        merged.append(item.model_copy(update={"id": previous.id}))
                    else:
                        merged.append(merge_after_sale(previous, item))
                outcomes = await uow.after_sales.upsert_many(merged) if merged else []
                if last:
                    if rejects:
                        await uow.intake.add_rejects(rejects)
                    await uow.intake.advance_cursor(
                        Cursor(
                            channel=channel,
                            feed=Feed.AFTER_SALES,
                            position=advance_to,
                            updated_at=now,
                        )
                    )
                await uow.commit()
            for item, outcome in zip(merged, outcomes, strict=True):
                totals.count(outcome)
                if outcome in (UpsertOutcome.CREATED, UpsertOutcome.UPDATED):
                    changed.append(item)
                    if item.order_id is None:
                        totals.unlinked.append(item.external_id)
        return changed

    async def _finish(
        self,
        run: SyncRun,
        status: RunStatus,
        totals: _Totals,
        counts: dict[str, int],
        before: datetime | None,
        after: datetime | None,
        state: CredentialState | None,
    ) -> SyncRun:
        if totals.unlinked:
            shown = ", ".join(totals.unlinked[:_NAMED])
            more = len(totals.unlinked) - _NAMED
            totals.errors.append(
                f"{len(totals.unlinked)} after-sales wait for their order (not stored yet; "
                f"linked when it arrives): {shown}{f' and {more} more' if more > 0 else ''}"
            )
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

    # -- linking and interception ------------------------------------------------------------

    async def link_pending(self, channel: str | None = None, *, limit: int = 1000) -> LinkReport:
        """Link unlinked requests whose order is stored now; hand over unshipped refunds."""
        report = LinkReport()
        async with self._storage.unit_of_work() as uow:
            pending = await uow.after_sales.list(channel=channel, unlinked_only=True, limit=limit)
            by_channel: dict[str, set[str]] = {}
            for item in pending:
                by_channel.setdefault(item.channel, set()).add(item.order_external_id)
            linked_ids: list[str] = []
            for name, external_ids in sorted(by_channel.items()):
                orders = await uow.orders.get_many_by_external(name, sorted(external_ids))
                for external_id, order in sorted(orders.items()):
                    report.linked += await uow.after_sales.link(name, external_id, order.id)
                linked_ids.extend(
                    item.id
                    for item in pending
                    if item.channel == name and item.order_external_id in orders
                )
            await uow.commit()
        if linked_ids:
            async with self._storage.unit_of_work() as uow:
                now_linked = [await uow.after_sales.get(item_id) for item_id in linked_ids]
            report.handed_over = await self._hand_over(
                [item for item in now_linked if item is not None], report.errors
            )
        return report

    def _wants_interception(self, item: AfterSale) -> bool:
        return (
            item.kind in _REFUNDS
            and item.status in _AGREED
            and item.order_id is not None
            and item.handed_over_at is None
        )

    async def _hand_over(self, items: Sequence[AfterSale], errors: list[str]) -> int:
        """Hand refunds of linked, unshipped orders to interception; count those handed."""
        candidates = [item for item in items if self._wants_interception(item)]
        if not candidates or self.intercept is None:
            return 0
        handed = 0
        for item in candidates:
            assert item.order_id is not None
            async with self._storage.unit_of_work() as uow:
                order = await uow.orders.get(item.order_id)
            if order is None or order.status not in _UNSHIPPED:
                continue
            if not _covers(item, order):
                errors.append(
                    f"after-sale {item.external_id}: refunds part of unshipped order "
                    f"{item.order_id}; not intercepted (ship the rest or cancel it by hand)"
                )
                continue
            try:
                await self.intercept(
                    item.order_id, f"{item.kind.value} {item.external_id} on {item.channel}"
                )
            except OrderCoreError as exc:
                errors.append(mask_text(f"after-sale {item.external_id}: not intercepted: {exc}"))
                continue
            async with self._storage.unit_of_work() as uow:
                claimed = await uow.after_sales.claim_handover(item.id, self._clock.now())
                await uow.commit()
            handed += int(claimed)
        return handed

    async def pending_handover(self, *, limit: int = 100) -> list[AfterSale]:
        """Live refunds of linked orders that have not shipped and were not handed over.

        With interception wired (``core.shipments``) this stays empty after each sync;
        without it, this is the list an operator (or an integration) must stop by hand.
        """
        async with self._storage.unit_of_work() as uow:
            chosen = []
            for item in await uow.after_sales.list(limit=10 * limit):
                if not self._wants_interception(item):
                    continue
                assert item.order_id is not None
                order = await uow.orders.get(item.order_id)
                if order is not None and order.status in _UNSHIPPED and _covers(item, order):
                    chosen.append(item)
                if len(chosen) >= limit:
                    break
        return chosen

    # -- reading ------------------------------------------------------------------------------

    async def get(self, after_sale_id: str) -> AfterSale:
        """The request with this id (AfterSaleNotFound otherwise)."""
        async with self._storage.unit_of_work() as uow:
            found = await uow.after_sales.get(after_sale_id)
        if found is None:
            raise AfterSaleNotFound(after_sale_id)
        return found

    async def list(
        self,
        *,
        channel: str | None = None,
        order_id: str | None = None,
        status: AfterSaleStatus | None = None,
        unlinked_only: bool = False,
        limit: int = 100,
    ) -> list[AfterSale]:
        """Requests, most recently changed on the platform first."""
        async with self._storage.unit_of_work() as uow:
            return await uow.after_sales.list(
                channel=channel,
                order_id=order_id,
                status=status,
                unlinked_only=unlinked_only,
                limit=limit,
            )

    async def inspection(self, after_sale_id: str) -> Inspection | None:
        """The request's inspection, if it was inspected."""
        async with self._storage.unit_of_work() as uow:
            return await uow.after_sales.inspection(after_sale_id)

    # -- inspection ---------------------------------------------------------------------------

    async def inspect(
        self,
        after_sale_id: str,
        results: Sequence[InspectionLine],
        by: str,
        *,
        note: str = "",
    ) -> InspectionReport:
        """Grade a return's units and restock them, exactly once, in one unit of work.

        Sellable units are received back into the line's warehouse (or the default one);
        defective units into ``settings.defective_warehouse`` with 100 % safety stock
        there (counted, never sold); scrap is recorded in the inspection only. Calling
        again with the same grades returns the recorded inspection and changes nothing;
        other grades raise InspectionConflict. Raises AfterSaleNotFound, and InvalidInput
        when the grades do not fit the request (see
        :func:`~ordercore.domain.after_sales.check_inspection`).
        """
        if not isinstance(by, str) or not by.strip():
            raise InvalidInput("inspection", [FieldError("by", "must not be empty", by)])
        with tracer.start_as_current_span(
            "ordercore.after_sales.inspect", attributes={"ordercore.after_sale.id": after_sale_id}
        ) as span:
            report = await self._inspect(after_sale_id, tuple(results), by, note)
            span.set_attribute("ordercore.after_sales.restocked", report.created)
            return report

    async def _inspect(
        self, after_sale_id: str, lines: tuple[InspectionLine, ...], by: str, note: str
    ) -> InspectionReport:
        now = self._clock.now()
        default = self._settings.default_warehouse
        defective_at = self._settings.defective_warehouse
        async with self._storage.unit_of_work() as uow:
            after_sale = await uow.after_sales.get(after_sale_id)
            if after_sale is None:
                raise AfterSaleNotFound(after_sale_id)
            draft = Inspection(
                after_sale_id=after_sale_id,
                lines=lines,
                inspected_by=by.strip(),
                inspected_at=now,
                defective_warehouse=defective_at,
                note=note,
            )
            previous = await uow.after_sales.inspection(after_sale_id)
            if previous is not None:
                return self._replayed(previous, draft)
            check_inspection(after_sale, lines)
            stored, created = await uow.after_sales.add_inspection(draft)
            if not created:
                return self._replayed(stored, draft)
            await self._restock(uow, after_sale, lines, default, defective_at, now)
            await uow.commit()
        self._inventory.sold_out.clear(*{line.sku for line in lines})
        sellable, defective, scrap = stored.totals()
        _log.info(
            "after-sale inspected",
            extra={
                "after_sale_id": after_sale_id,
                "sellable": sellable,
                "defective": defective,
                "scrap": scrap,
            },
        )
        return InspectionReport(stored, True)

    @staticmethod
    def _replayed(stored: Inspection, draft: Inspection) -> InspectionReport:
        if not stored.same_grades(draft):
            raise InspectionConflict(stored.after_sale_id, stored.inspected_by)
        return InspectionReport(stored, False)

    @staticmethod
    async def _restock(
        uow: UnitOfWork,
        after_sale: AfterSale,
        lines: Sequence[InspectionLine],
        default: str,
        defective_at: str,
        now: datetime,
    ) -> None:
        reference = f"after-sale {after_sale.id}"
        for line in sorted(lines, key=lambda item: (item.sku, item.warehouse)):
            if line.sellable:
                await uow.inventory.receive(
                    line.sku,
                    line.warehouse or default,
                    line.sellable,
                    now,
                    reason="return: sellable",
                    reference=reference,
                )
            if line.defective:
                await uow.inventory.receive(
                    line.sku,
                    defective_at,
                    line.defective,
                    now,
                    reason="return: defective",
                    reference=reference,
                )
                await uow.inventory.set_safety(
                    line.sku, defective_at, units=None, basis_points=_FULL_SAFETY_BP
                )


def _covers(item: AfterSale, order: Order) -> bool:
    """True when the refund takes back every unit of the order (no lines: the whole order)."""
    if not item.lines:
        return True
    refunded: Counter[str] = Counter()
    for line in item.lines:
        refunded[line.sku] += line.quantity
    ordered: Counter[str] = Counter()
    for order_line in order.lines:
        ordered[order_line.sku] += order_line.quantity
    return all(refunded[sku] >= units for sku, units in ordered.items())


def _is_newer(incoming: AfterSale, stored: AfterSale) -> bool:
    return incoming.source_modified_at > stored.source_modified_at
