"""A hypothesis state machine that checks a storage adapter against a simple model.

Random receive / reserve / release / commit / begin_payment / confirm_payment / expire
steps with clock jumps; after every step the adapter must agree with the model:
on_hand is conserved, reserved equals the sum of active reservations, sellable is
never negative and ``verify()`` finds no drift.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from ordercore.config import Settings
from ordercore.core import OrderCore
from ordercore.domain.inventory import PaymentOutcome, ReservationStatus
from ordercore.errors import InsufficientStock, ReservationStateConflict, UnknownSku
from ordercore.ports.clock import ManualClock
from ordercore.ports.storage import Storage

__all__ = ["StorageStateMachine", "run_state_machine"]

SKUS = ("A", "B", "C")
TTL = timedelta(minutes=30)
GRACE = timedelta(minutes=10)
_S = ReservationStatus


@dataclass
class _ModelReservation:
    lines: dict[str, int]
    expires_at: datetime | None
    status: ReservationStatus = _S.ACTIVE
    paid: bool = False
    payment_deadline: datetime | None = None

    def is_due(self, now: datetime) -> bool:
        if self.status is not _S.ACTIVE or self.expires_at is None:
            return False
        if self.payment_deadline is not None and self.payment_deadline > now:
            return False
        return self.expires_at <= now


@dataclass
class _Model:
    on_hand: dict[str, int] = field(default_factory=dict)
    reservations: dict[str, _ModelReservation] = field(default_factory=dict)

    def reserved(self, sku: str) -> int:
        return sum(r.lines.get(sku, 0) for r in self.reservations.values() if r.status is _S.ACTIVE)

    def fits(self, lines: dict[str, int]) -> bool:
        return all(
            sku in self.on_hand and self.on_hand[sku] - self.reserved(sku) >= qty
            for sku, qty in lines.items()
        )


class StorageStateMachine(RuleBasedStateMachine):
    """Subclassed by :func:`run_state_machine` with the storage factory to test."""

    make_storage: ClassVar[Callable[[Settings], Storage]]

    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.model = _Model()
        self.clock = ManualClock()
        self.settings = Settings(reservation_ttl=TTL, payment_grace=GRACE)
        self._portal_cm = start_blocking_portal()
        self.portal: BlockingPortal = self._portal_cm.__enter__()
        self.storage = type(self).make_storage(self.settings)
        self.portal.call(self.storage.open)
        self.core = OrderCore(self.storage, self.clock, self.settings)
        self._next_order = 0

    def teardown(self) -> None:
        try:
            self.portal.call(self.storage.close)
        finally:
            self._portal_cm.__exit__(None, None, None)

    def call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self.portal.call(lambda: method(*args, **kwargs))

    @initialize()
    def stock_every_sku(self) -> None:
        for sku in SKUS:
            self.call(self.core.inventory.receive, sku, 5)
            self.model.on_hand[sku] = 5

    @rule(sku=st.sampled_from(SKUS), quantity=st.integers(1, 8))
    def receive(self, sku: str, quantity: int) -> None:
        self.call(self.core.inventory.receive, sku, quantity)
        self.model.on_hand[sku] += quantity

    @rule(
        target=orders,
        lines=st.dictionaries(st.sampled_from((*SKUS, "UNKNOWN")), st.integers(1, 4), min_size=1),
    )
    def reserve(self, lines: dict[str, int]) -> str:
        self._next_order += 1
        order_id = f"o{self._next_order}"
        if "UNKNOWN" in lines:
            # Either error may come first (lines are checked in lock order); nothing is held.
            try:
                self.call(self.core.inventory.reserve, order_id, lines)
            except (UnknownSku, InsufficientStock):
                return order_id
            raise AssertionError("a line of an unknown SKU was reserved")
        fits = self.model.fits(lines)
        try:
            self.call(self.core.inventory.reserve, order_id, lines)
        except InsufficientStock:
            assert not fits, f"{lines} fit the model but the storage refused it"
            return order_id
        assert fits, f"{lines} was reserved though the model had too little stock"
        self.model.reservations[order_id] = _ModelReservation(dict(lines), self.clock.now() + TTL)
        return order_id

    @rule(order_id=orders)
    def reserve_again(self, order_id: str) -> None:
        held = self.model.reservations.get(order_id)
        if held is None:
            return
        before = self.model.on_hand.copy(), {s: self.model.reserved(s) for s in SKUS}
        self.call(self.core.inventory.reserve, order_id, held.lines)
        assert before == (self.model.on_hand, {s: self.model.reserved(s) for s in SKUS})

    @rule(order_id=orders)
    def release(self, order_id: str) -> None:
        held = self.model.reservations.get(order_id)
        if held is None:
            return
        try:
            self.call(self.core.inventory.release, order_id)
        except ReservationStateConflict:
            assert held.status is _S.COMMITTED
            return
        assert held.status is not _S.COMMITTED
        if held.status is _S.ACTIVE:
            held.status = _S.RELEASED

    @rule(order_id=orders)
    def commit(self, order_id: str) -> None:
        held = self.model.reservations.get(order_id)
        if held is None:
            return
        try:
            self.call(self.core.inventory.commit, order_id)
        except ReservationStateConflict:
            assert held.status in (_S.RELEASED, _S.EXPIRED)
            return
        if held.status is _S.ACTIVE:
            held.status = _S.COMMITTED
            for sku, qty in held.lines.items():
                self.model.on_hand[sku] -= qty

    @rule(order_id=orders)
    def begin_payment(self, order_id: str) -> None:
        held = self.model.reservations.get(order_id)
        if held is None or held.status is not _S.ACTIVE:
            return
        self.call(self.core.inventory.begin_payment, order_id)
        held.payment_deadline = self.clock.now() + GRACE

    @rule(order_id=orders)
    def confirm_payment(self, order_id: str) -> None:
        held = self.model.reservations.get(order_id)
        if held is None:
            return
        result = self.call(self.core.inventory.confirm_payment, order_id)
        if held.status is _S.EXPIRED and self.model.fits(held.lines):
            expected = PaymentOutcome.RE_RESERVED
            held.status = _S.ACTIVE
        elif held.status in (_S.EXPIRED, _S.RELEASED):
            expected = PaymentOutcome.NEEDS_ATTENTION
        else:
            expected = PaymentOutcome.CONFIRMED
        assert result.outcome is expected, (result, held)
        if held.status is _S.ACTIVE:
            held.paid, held.expires_at, held.payment_deadline = True, None, None

    @rule(minutes=st.integers(0, 45))
    def advance_clock(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    @rule()
    def expire(self) -> None:
        now = self.clock.now()
        due = {oid for oid, r in self.model.reservations.items() if r.is_due(now)}
        report = self.call(self.core.inventory.expire)
        assert {r.order_id for r in report.expired} == due
        for order_id in due:
            self.model.reservations[order_id].status = _S.EXPIRED

    @invariant()
    def storage_agrees_with_model(self) -> None:
        levels = {level.sku: level for level in self.call(self.core.inventory.levels)}
        for sku, on_hand in self.model.on_hand.items():
            level = levels[sku]
            assert level.on_hand == on_hand, (sku, level, on_hand)
            assert level.reserved == self.model.reserved(sku), (sku, level)
            assert level.sellable >= 0
        assert self.call(self.core.inventory.verify) == []


def run_state_machine(
    make_storage: Callable[[Settings], Storage], *, max_examples: int = 50, steps: int = 40
) -> None:
    """Run the state machine against storages built by ``make_storage`` (fresh each call)."""
    machine = type(
        "BoundStorageStateMachine",
        (StorageStateMachine,),
        {"make_storage": staticmethod(make_storage)},
    )
    run_state_machine_as_test(
        machine,
        settings=hypothesis_settings(
            max_examples=max_examples, stateful_step_count=steps, deadline=None
        ),
    )
