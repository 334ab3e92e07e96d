"""Exception screening: run the rules on an order and act on what they find.

Reached as ``core.exceptions``. :meth:`ExceptionService.screen` fills a
:class:`~ordercore.domain.rules.ScreeningContext` from the ports (stock and the order's
own reservation from storage, the fraud window from the screening store, payment state
from the reservation or the caller), evaluates the rules engine and applies the actions
of the findings, on the alert ladder:

* **flag** (every finding): the result is kept in the screening store (``result``,
  ``flagged``);
* **notify operations** (warning and up): one alert per screening through the notifier
  port, masked;
* **hold shipment** (high and up): the stored order moves to ``on_hold`` with the
  reasons; ``core.orders.ship`` refuses it until :meth:`release_hold`;
* **notify supervisor** (critical, and remark risk): a second alert, topic
  ``exceptions.supervisor``;
* **raise priority** (remark risk): marked on the result and on the ticket's case.

Each rule family with a finding of warning or above becomes one
:class:`~ordercore.domain.exceptions.ExceptionCase` passed to the ``open_ticket`` hook.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from ordercore.domain.exceptions import (
    ExceptionCase,
    Finding,
    RuleAction,
    ScreeningResult,
)
from ordercore.domain.inventory import ReservationStatus
from ordercore.domain.orders import Order, OrderStatus
from ordercore.domain.privacy import mask_text
from ordercore.domain.rules import (
    PaymentState,
    PaymentStatus,
    RulesConfig,
    RulesEngine,
    ScreeningContext,
    history_entry,
    summarise_history,
)
from ordercore.domain.rules.history import HistoryEntry
from ordercore.domain.severity import Severity
from ordercore.errors import OrderNotFound, OrderNotOnHold
from ordercore.ports.clock import Clock
from ordercore.ports.notifiers import Alert, NotifierPort, RecordingNotifier
from ordercore.ports.screening import (
    BatchScreeningStore,
    InMemoryScreeningStore,
    ScreeningStore,
    SharedScreeningStore,
)
from ordercore.ports.storage import Storage

__all__ = ["DelistedLookup", "ExceptionService", "TicketHook"]

TicketHook = Callable[[ExceptionCase], Awaitable[object]]
"""Called with each case that warrants a ticket (the ticket service's entry point)."""

DelistedLookup = Callable[[Sequence[str]], Awaitable[Iterable[str]]]
"""Which of these SKUs are delisted (a catalogue or channel listing lookup)."""

_PRUNE_EVERY = 5_000


class ExceptionService:
    """Screens orders with the rules engine and applies holds, alerts, flags and tickets."""

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        *,
        rules: RulesConfig | None = None,
        engine: RulesEngine | None = None,
        notifier: NotifierPort | None = None,
        store: ScreeningStore | None = None,
        open_ticket: TicketHook | None = None,
        delisted: DelistedLookup | None = None,
        payment_grace: timedelta = timedelta(minutes=15),
        salt: bytes | None = None,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self.engine = engine or RulesEngine(rules)
        """The rules engine; replace it to change rules or configuration at run time."""
        self.notifier: NotifierPort = notifier or RecordingNotifier()
        self.store: ScreeningStore = store or InMemoryScreeningStore()
        self.open_ticket = open_ticket
        """Hook for cases that warrant a ticket (wired to the ticket service by the core)."""
        self.delisted = delisted
        self._payment_grace = payment_grace
        # Without a configured salt the keys are only comparable inside this process,
        # which is all the in-memory store needs; a shared store needs a shared salt.
        # A store shared by processes keeps one (``shared_salt``); this is read once.
        self._salt = salt
        self._recorded = 0

    async def screen(
        self,
        order: Order | str,
        *,
        device: str = "",
        messages: Sequence[str] = (),
        payment: PaymentState | None = None,
    ) -> ScreeningResult:
        """Run every enabled rule on an order (or a stored order's id) and apply the actions.

        ``device`` is the buyer's device id when the channel reports one, ``messages``
        are buyer messages and seller notes besides the order's remark, ``payment`` the
        payment callback state when the caller knows it (otherwise it is read from the
        order's reservation). OrderNotFound when given an id that is not stored.
        """
        if isinstance(order, str):
            order = await self._load(order)
        [result] = await self.screen_many(
            [order],
            devices={order.id: device} if device else None,
            messages={order.id: messages} if messages else None,
            payments={order.id: payment} if payment is not None else None,
        )
        return result

    async def screen_many(
        self,
        orders: Sequence[Order],
        *,
        devices: Mapping[str, str] | None = None,
        messages: Mapping[str, Sequence[str]] | None = None,
        payments: Mapping[str, PaymentState] | None = None,
    ) -> list[ScreeningResult]:
        """Screen a batch (an intake window) as :meth:`screen` does each order, in order.

        Stock and reservations are read in one unit of work and holds written in one,
        so a batch costs far less than its orders one by one. The extra inputs are keyed
        by order id. Results are aligned with ``orders``.
        """
        if not orders:
            return []
        devices, messages, payments = devices or {}, messages or {}, payments or {}
        now = self._clock.now()
        facts = await self._storage_facts(orders)
        delisted: frozenset[str] = frozenset()
        if self.delisted is not None:
            skus = sorted({line.sku for order in orders for line in order.lines})
            delisted = frozenset(await self.delisted(skus))
        salt = self._salt if self._salt is not None else await self._resolve_salt()
        config = self.engine.config
        horizon = max(config.fraud.window, config.fraud.mismatch_window)
        evaluated: list[tuple[Order, tuple[Finding, ...]]] = []
        entries = [
            history_entry(order, at=order.created_at, device=devices.get(order.id, ""), salt=salt)
            for order in orders
        ]
        windows = await self._record(entries, [entry.at - horizon for entry in entries])
        for order, entry, recent in zip(orders, entries, windows, strict=True):
            device = devices.get(order.id, "")
            stock, derived_payment = facts[order.id]
            context = ScreeningContext(
                now=now,
                stock=stock,
                delisted=delisted,
                payment=payments.get(order.id) or derived_payment,
                history=summarise_history(entry, recent, config.fraud),
                device=device,
                messages=tuple(messages.get(order.id, ())),
            )
            evaluated.append((order, self.engine.evaluate(order, context)))
        await self._maybe_prune(now - horizon, len(orders))
        return await self._act(evaluated, now)

    async def _record(
        self, entries: Sequence[HistoryEntry], since: Sequence[datetime]
    ) -> list[list[HistoryEntry]]:
        """Record a batch's history entries: in one step where the store can."""
        if isinstance(self.store, BatchScreeningStore):
            return await self.store.record_many(entries, since)
        return [await self.store.record(e, s) for e, s in zip(entries, since, strict=True)]

    async def _resolve_salt(self) -> bytes:
        """The shared store's salt, or a random one for this process's own store."""
        store = self.store
        salt = await store.shared_salt() if isinstance(store, SharedScreeningStore) else None
        self._salt = salt if salt is not None else os.urandom(32)
        return self._salt

    async def result(self, order_id: str) -> ScreeningResult | None:
        """The latest screening result of an order (its flags), if it was screened."""
        return await self.store.result(order_id)

    async def flagged(self, *, limit: int = 100) -> Sequence[ScreeningResult]:
        """Orders whose latest screening found something, newest first."""
        return await self.store.flagged(limit=limit)

    async def release_hold(self, order_id: str, *, by: str, reason: str) -> Order:
        """Release an order's hold: it returns to the status it was held from.

        OrderNotFound when absent, OrderNotOnHold when it is not on hold.
        """
        async with self._storage.unit_of_work() as uow:
            order = await uow.orders.get(order_id)
            if order is None:
                raise OrderNotFound(order_id)
            if order.status is not OrderStatus.ON_HOLD:
                raise OrderNotOnHold(order_id, order.status)
            targets = order.allowed_next() - {OrderStatus.CANCELLED}
            if not targets:  # held with no recorded origin: the state machine decides
                raise OrderNotOnHold(order_id, order.status)
            (target,) = targets
            note = f"hold released by {by}: {reason}" if reason else f"hold released by {by}"
            saved = await uow.orders.save(order.transition_to(target, self._clock.now(), note))
            await uow.commit()
        return saved

    # -- helpers --------------------------------------------------------------------------

    async def _load(self, order_id: str) -> Order:
        async with self._storage.unit_of_work() as uow:
            found = await uow.orders.get(order_id)
        if found is None:
            raise OrderNotFound(order_id)
        return found

    async def _storage_facts(
        self, orders: Sequence[Order]
    ) -> dict[str, tuple[dict[str, int], PaymentState | None]]:
        """Per order: units available to it per SKU, and payment state from its reservation."""
        skus = sorted({line.sku for order in orders for line in order.lines})
        sellable: dict[str, int] = {}
        async with self._storage.unit_of_work() as uow:
            for sku in skus:
                levels = await uow.inventory.stock_levels(sku)
                if levels:
                    sellable[sku] = sum(level.sellable for level in levels)
            reservations = await uow.inventory.reservations([order.id for order in orders])
        facts: dict[str, tuple[dict[str, int], PaymentState | None]] = {}
        for order in orders:
            stock = {line.sku: sellable[line.sku] for line in order.lines if line.sku in sellable}
            payment = None
            reservation = reservations.get(order.id)
            if reservation is not None:
                if reservation.status in (ReservationStatus.ACTIVE, ReservationStatus.COMMITTED):
                    for line in reservation.lines:
                        if line.sku in stock:
                            stock[line.sku] += line.quantity  # already held for this order
                if reservation.paid:
                    payment = PaymentState(PaymentStatus.CONFIRMED, reservation.updated_at)
                elif reservation.payment_deadline is not None:
                    started = reservation.payment_deadline - self._payment_grace
                    payment = PaymentState(PaymentStatus.PENDING, started)
            facts[order.id] = (stock, payment)
        return facts

    async def _maybe_prune(self, before: datetime, screened: int) -> None:
        previous, self._recorded = self._recorded, self._recorded + screened
        if previous // _PRUNE_EVERY != self._recorded // _PRUNE_EVERY:
            await self.store.prune(before)

    async def _act(
        self, evaluated: Sequence[tuple[Order, tuple[Finding, ...]]], now: datetime
    ) -> list[ScreeningResult]:
        to_hold = {
            order.id: _hold_reason(findings)
            for order, findings in evaluated
            if any(RuleAction.HOLD_SHIPMENT in finding.actions for finding in findings)
        }
        held = await self._hold(to_hold) if to_hold else set()
        batch = isinstance(self.store, BatchScreeningStore)
        results = []
        for order, findings in evaluated:
            actions = frozenset(action for finding in findings for action in finding.actions)
            result = ScreeningResult(
                order_id=order.id,
                findings=findings,
                screened_at=now,
                held=order.id in held,
                priority_raised=RuleAction.RAISE_PRIORITY in actions,
            )
            if not batch and (findings or await self.store.result(order.id) is not None):
                await self.store.save_result(result)  # a clean re-screen clears the flag
            if findings:
                await self._notify(
                    order, findings, RuleAction.NOTIFY_OPERATIONS, "exceptions.operations"
                )
                await self._notify(
                    order, findings, RuleAction.NOTIFY_SUPERVISOR, "exceptions.supervisor"
                )
                if self.open_ticket is not None:
                    for case in _cases(order, findings):
                        await self.open_ticket(case)
            results.append(result)
        if isinstance(self.store, BatchScreeningStore):  # (narrows the type for mypy)
            # Flagged results are kept; a clean re-screen replaces (clears) an earlier flag.
            await self.store.save_results([r for r in results if r.findings], replace_only=False)
            await self.store.save_results([r for r in results if not r.findings], replace_only=True)
        return results

    async def _hold(self, reasons: Mapping[str, str]) -> set[str]:
        """Put stored orders on hold (those the state machine allows); return which were."""
        held: set[str] = set()
        now = self._clock.now()
        async with self._storage.unit_of_work() as uow:
            for order_id in sorted(reasons):
                stored = await uow.orders.get(order_id)
                if stored is None or OrderStatus.ON_HOLD not in stored.allowed_next():
                    continue
                await uow.orders.save(
                    stored.transition_to(OrderStatus.ON_HOLD, now, reasons[order_id])
                )
                held.add(order_id)
            await uow.commit()
        return held

    async def _notify(
        self, order: Order, findings: tuple[Finding, ...], action: RuleAction, topic: str
    ) -> None:
        selected = [finding for finding in findings if action in finding.actions]
        if not selected:
            return
        level = max(finding.severity for finding in selected)
        details = "; ".join(
            f"{finding.rule_id} ({finding.severity}): {', '.join(finding.reasons)}"
            for finding in selected
        )
        await self.notifier.send(
            Alert(
                level=level,
                topic=topic,
                message=mask_text(f"order {order.id} ({order.channel}): {details}"),
                key=f"{topic}:{order.id}:{','.join(f.rule_id for f in selected)}",
                at=self._clock.now(),
                channel=order.channel,
            )
        )


def _hold_reason(findings: Sequence[Finding]) -> str:
    return "; ".join(
        f"{finding.rule_id}: {', '.join(finding.reasons)}"
        for finding in findings
        if RuleAction.HOLD_SHIPMENT in finding.actions
    )


def _cases(order: Order, findings: tuple[Finding, ...]) -> list[ExceptionCase]:
    """One case per rule family whose findings reach warning (info only flags)."""
    by_family: dict[str, list[Finding]] = {}
    for finding in findings:
        by_family.setdefault(finding.family, []).append(finding)
    cases = []
    for family, found in by_family.items():
        severity = max(finding.severity for finding in found)
        if severity < Severity.WARNING:
            continue
        cases.append(
            ExceptionCase(
                order_id=order.id,
                channel=order.channel,
                ticket_type=family,
                severity=severity,
                reasons=tuple(reason for finding in found for reason in finding.reasons),
                rule_ids=tuple(finding.rule_id for finding in found),
            )
        )
    return cases
