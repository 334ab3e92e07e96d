"""The inventory repository of the memory storage: the atomic stock primitives.

Every primitive runs while its unit of work holds the storage's lock and contains no
``await``, so its check and its change are one atomic step. It checks before it changes
anything (undoing its own partial work if a later check fails), then appends one entry
to the unit's undo log that reverses exactly what it did. Rolling a unit back runs those
entries newest first, so each one finds the state its change left behind.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from ordercore.domain.inventory import (
    BatchResult,
    Drift,
    FlashSale,
    Reservation,
    ReservationLine,
    ReservationStatus,
    StockLevel,
    batch_key,
    safety_units,
)
from ordercore.errors import (
    BuyerLimitExceeded,
    FieldError,
    InsufficientStock,
    InvalidInput,
    InvalidReservation,
    SaleCapReached,
    StockAdjustmentConflict,
    UnknownSku,
)

from ._audit import find_drift
from ._state import Level, MemoryRepository, Movement, Sale, UndoLog

__all__ = ["MemoryInventory"]

_ACTIVE = ReservationStatus.ACTIVE
_COMMITTED = ReservationStatus.COMMITTED
_RELEASED = ReservationStatus.RELEASED
_EXPIRED = ReservationStatus.EXPIRED

Marks = tuple[str | None, ...]
"""Per line of a reservation: the flash-sale id it was counted under, or None."""

_LevelSnapshot = tuple[int, int, int, int | None, int]


def _snapshot(level: Level) -> _LevelSnapshot:
    return (level.on_hand, level.reserved, level.safety, level.safety_bp, level.moved)


def _conflict(
    sku: str, warehouse: str, on_hand: int, reserved: int, delta: int
) -> StockAdjustmentConflict:
    result = on_hand + delta
    floor = "zero" if result < 0 else f"reserved {reserved}"
    return StockAdjustmentConflict(
        sku,
        warehouse,
        f"on_hand {on_hand} with delta {delta:+d} would be {result}, below {floor} "
        f"(reserved {reserved})",
    )


def _sale_view(sku: str, sale: Sale) -> FlashSale:
    return FlashSale(sku, sale.sale_id, sale.cap, sale.per_buyer_limit, sale.sold)


class MemoryInventory(MemoryRepository):
    """Stock levels, reservations and flash sales of a memory unit of work.

    Implements :class:`ordercore.ports.storage.InventoryRepository`; see it for the
    contract of each method.
    """

    __slots__ = ()

    def _level(self, sku: str, warehouse: str) -> Level | None:
        by_warehouse = self._state.levels.get(sku)
        return None if by_warehouse is None else by_warehouse.get(warehouse)

    # -- stock levels ---------------------------------------------------------------------

    async def receive(
        self, sku: str, warehouse: str, delta: int, now: datetime, *, reason: str, reference: str
    ) -> StockLevel:
        """Add ``delta`` to on_hand (creating the level for delta >= 0) and record it."""
        log = self._log()
        level = self._level(sku, warehouse)
        if level is None:
            if delta < 0:
                raise UnknownSku(sku, warehouse)
        elif level.on_hand + delta < level.reserved or level.on_hand + delta < 0:
            raise _conflict(sku, warehouse, level.on_hand, level.reserved, delta)
        return self._move(log, sku, warehouse, level, delta, reason, reference, now)

    async def count(
        self, sku: str, warehouse: str, on_hand: int, now: datetime, *, reference: str
    ) -> StockLevel:
        """Set on_hand to a counted figure; the difference is a "stocktake" movement."""
        log = self._log()
        level = self._level(sku, warehouse)
        current, reserved = (0, 0) if level is None else (level.on_hand, level.reserved)
        if on_hand < reserved or on_hand < 0:
            raise _conflict(sku, warehouse, current, reserved, on_hand - current)
        return self._move(
            log, sku, warehouse, level, on_hand - current, "stocktake", reference, now
        )

    def _move(
        self,
        log: UndoLog,
        sku: str,
        warehouse: str,
        level: Level | None,
        delta: int,
        reason: str,
        reference: str,
        now: datetime,
    ) -> StockLevel:
        state = self._state
        if level is None:
            level = Level()
            state.levels.setdefault(sku, {})[warehouse] = level
            log.append((self._undo_level, sku, warehouse, None, len(state.movements)))
        else:
            log.append((self._undo_level, sku, warehouse, _snapshot(level), len(state.movements)))
        level.on_hand += delta
        level.moved += delta
        if level.safety_bp is not None:
            level.safety = safety_units(level.on_hand, level.safety, level.safety_bp)
        state.movements.append(Movement(sku, warehouse, delta, reason, reference, now))
        return level.view(sku, warehouse)

    def _undo_level(
        self, sku: str, warehouse: str, before: _LevelSnapshot | None, movements: int
    ) -> None:
        state = self._state
        del state.movements[movements:]
        by_warehouse = state.levels[sku]
        if before is None:
            del by_warehouse[warehouse]
            if not by_warehouse:
                del state.levels[sku]
            return
        level = by_warehouse[warehouse]
        level.on_hand, level.reserved, level.safety, level.safety_bp, level.moved = before

    async def set_safety(
        self, sku: str, warehouse: str, *, units: int | None, basis_points: int | None
    ) -> StockLevel:
        """Hold back ``units`` absolute, or ``basis_points`` of on_hand rounded up."""
        log = self._log()
        if (units is None) == (basis_points is None):
            raise InvalidInput(
                "safety stock",
                [
                    FieldError(
                        "units/basis_points", "give exactly one of them", (units, basis_points)
                    )
                ],
            )
        level = self._level(sku, warehouse)
        if level is None:
            raise UnknownSku(sku, warehouse)
        log.append((self._undo_level, sku, warehouse, _snapshot(level), len(self._state.movements)))
        if units is not None:
            level.safety, level.safety_bp = units, None
        elif basis_points is not None:
            level.safety_bp = basis_points
            level.safety = safety_units(level.on_hand, 0, basis_points)
        return level.view(sku, warehouse)

    async def stock_levels(
        self, sku: str | None = None, warehouse: str | None = None
    ) -> list[StockLevel]:
        """Stock levels, filtered by SKU and/or warehouse, sorted by (sku, warehouse)."""
        self._log()
        levels = self._state.levels
        skus = sorted(levels) if sku is None else [sku] if sku in levels else []
        found: list[StockLevel] = []
        for name in skus:
            by_warehouse = levels[name]
            if warehouse is not None:
                level = by_warehouse.get(warehouse)
                if level is not None:
                    found.append(level.view(name, warehouse))
                continue
            found.extend(by_warehouse[place].view(name, place) for place in sorted(by_warehouse))
        return found

    # -- taking and giving back stock -----------------------------------------------------

    def _take(self, lines: tuple[ReservationLine, ...], buyer_id: str) -> Marks | None:
        """Hold every line (and count flash-sale lines) or raise having changed nothing.

        Errors, first found first: a non-positive quantity or an unknown SKU
        (UnknownSku wins over a shortage on an earlier line), then InsufficientStock in
        line order, then the flash-sale cap and per-buyer limit per SKU in sorted order.
        """
        levels = self._state.levels
        held = 0
        try:
            for line in lines:
                quantity = line.quantity
                if quantity <= 0:
                    field = f"lines[{lines.index(line)}].quantity"
                    raise InvalidReservation([FieldError(field, "must be > 0", quantity)])
                by_warehouse = levels.get(line.sku)
                level = None if by_warehouse is None else by_warehouse.get(line.warehouse)
                if level is None:
                    raise UnknownSku(line.sku, line.warehouse)
                sellable = level.on_hand - level.reserved - level.safety
                if sellable < quantity:
                    self._raise_unknown(lines)  # an unknown SKU is the error to report first
                    raise InsufficientStock(line.sku, line.warehouse, quantity, max(sellable, 0))
                level.reserved += quantity
                held += 1
            return self._count_sale_lines(lines, buyer_id) if self._state.sales else None
        except BaseException:
            for line in lines[:held]:
                levels[line.sku][line.warehouse].reserved -= line.quantity
            raise

    def _raise_unknown(self, lines: tuple[ReservationLine, ...]) -> None:
        """Raise UnknownSku for the first line without a stock level, if there is one."""
        for line in lines:
            if self._level(line.sku, line.warehouse) is None:
                raise UnknownSku(line.sku, line.warehouse)

    def _count_sale_lines(self, lines: tuple[ReservationLine, ...], buyer_id: str) -> Marks | None:
        """Check, then count, the lines of SKUs on a flash sale; their sale ids per line."""
        sales = self._state.sales
        totals: dict[str, int] = {}
        for line in lines:
            if line.sku in sales:
                totals[line.sku] = totals.get(line.sku, 0) + line.quantity
        if not totals:
            return None
        purchases = self._state.purchases
        for sku in sorted(totals):
            sale, quantity = sales[sku], totals[sku]
            if sale.cap is not None and sale.sold + quantity > sale.cap:
                raise SaleCapReached(sku, quantity, max(0, sale.cap - sale.sold))
            limit = sale.per_buyer_limit
            if limit is not None:
                if not buyer_id:
                    message = f"required: SKU {sku!r} has a per-buyer limit"
                    raise InvalidReservation([FieldError("buyer_id", message, "")])
                bought = purchases.get(sku, {}).get(buyer_id, 0)
                if bought + quantity > limit:
                    raise BuyerLimitExceeded(sku, buyer_id, quantity, limit)
        for sku, quantity in totals.items():
            sales[sku].sold += quantity
            if buyer_id:
                by_buyer = purchases.setdefault(sku, {})
                by_buyer[buyer_id] = by_buyer.get(buyer_id, 0) + quantity
        return tuple(sales[line.sku].sale_id if line.sku in totals else None for line in lines)

    def _count_sales(self, record: Reservation, marks: Marks, sign: int) -> None:
        """Add (sign 1) or remove (-1) the record's units under the SKUs' running sales."""
        sales = self._state.sales
        purchases = self._state.purchases
        buyer = record.buyer_id
        for line, mark in zip(record.lines, marks, strict=True):
            sale = sales.get(line.sku) if mark is not None else None
            if sale is None or sale.sale_id != mark:
                continue
            quantity = sign * line.quantity
            sale.sold += quantity
            if buyer:
                by_buyer = purchases.setdefault(line.sku, {})
                left = by_buyer.get(buyer, 0) + quantity
                if left:
                    by_buyer[buyer] = left
                else:
                    del by_buyer[buyer]
                    if not by_buyer:
                        del purchases[line.sku]

    def _unhold(self, record: Reservation, marks: Marks | None) -> None:
        """Give back what a record holds: reserved units and its running-sale counts."""
        levels = self._state.levels
        for line in record.lines:
            levels[line.sku][line.warehouse].reserved -= line.quantity
        if marks is not None:
            self._count_sales(record, marks, -1)

    def _rehold(self, record: Reservation, marks: Marks | None) -> None:
        """The inverse of :meth:`_unhold`, without checks (undo only)."""
        levels = self._state.levels
        for line in record.lines:
            levels[line.sku][line.warehouse].reserved += line.quantity
        if marks is not None:
            self._count_sales(record, marks, 1)

    # -- reservations ---------------------------------------------------------------------

    async def reserve(self, draft: Reservation) -> tuple[Reservation, bool]:
        """Hold every line of ``draft`` or nothing; an order's existing one is returned."""
        log = self._log()
        state = self._state
        order_id = draft.order_id
        existing = state.reservations.get(order_id)
        if existing is not None:
            return existing, False
        if draft.status is not _ACTIVE:
            if draft.status != _ACTIVE:
                raise ValueError(f"a reservation draft must be active, not {draft.status!r}")
            draft = replace(draft, status=_ACTIVE)  # a plain "active" string
        marks = self._take(draft.lines, draft.buyer_id)
        state.reservations[order_id] = draft
        if marks is not None:
            state.sale_marks[order_id] = marks
        if draft.expires_at is not None:
            heapq.heappush(state.expiry, (draft.expires_at, order_id))
        log.append((self._undo_reserve, draft))
        return draft, True

    async def reserve_batch(self, drafts: Sequence[Reservation]) -> BatchResult:
        """Grant one-line drafts of one (sku, warehouse) in order while they fit.

        Refusals of the same quantity share one InsufficientStock (see the port).
        """
        key = batch_key(drafts)
        level = self._level(*key)
        if level is None or key[0] in self._state.sales:
            outcomes = await self._reserve_each(drafts)
        else:
            outcomes = self._reserve_plain(self._log(), key, level, drafts)
        sellable = 0 if level is None else max(0, level.on_hand - level.reserved - level.safety)
        sale = self._state.sales.get(key[0])
        if sale is not None and sale.cap is not None:
            sellable = min(sellable, max(0, sale.cap - sale.sold))
        return BatchResult(tuple(outcomes), sellable)

    async def _reserve_each(self, drafts: Sequence[Reservation]) -> list[Reservation | Exception]:
        """The general batch: each draft through reserve() (flash-sale limits, unknown SKU)."""
        outcomes: list[Reservation | Exception] = []
        for draft in drafts:
            try:
                outcomes.append((await self.reserve(draft))[0])
            except (InsufficientStock, UnknownSku, BuyerLimitExceeded, InvalidReservation) as exc:
                outcomes.append(exc)
        return outcomes

    def _reserve_plain(
        self,
        log: UndoLog,
        key: tuple[str, str],
        level: Level,
        drafts: Sequence[Reservation],
    ) -> list[Reservation | Exception]:
        """A batch on a level without a flash sale: one pass, one counter update, one undo."""
        reservations, expiry = self._state.reservations, self._state.expiry
        push = heapq.heappush
        outcomes: list[Reservation | Exception] = []
        granted: list[Reservation] = []
        refusals: dict[tuple[int, int], Exception] = {}
        sellable = level.on_hand - level.reserved - level.safety
        total = 0
        for draft in drafts:
            order_id = draft.order_id
            existing = reservations.get(order_id)
            if existing is not None:  # also a repeat of an order granted earlier in the batch
                outcomes.append(existing)
                continue
            quantity = draft.lines[0].quantity
            if quantity <= 0 or quantity > sellable:
                outcomes.append(self._refusal(refusals, key, quantity, sellable))
                continue
            if draft.status is not _ACTIVE:
                draft = self._active(draft)
            sellable -= quantity
            total += quantity
            reservations[order_id] = draft
            granted.append(draft)
            outcomes.append(draft)
            if draft.expires_at is not None:
                push(expiry, (draft.expires_at, order_id))
        if granted:
            level.reserved += total
            log.append((self._undo_plain, level, granted, total))
        return outcomes

    @staticmethod
    def _refusal(
        refusals: dict[tuple[int, int], Exception],
        key: tuple[str, str],
        quantity: int,
        sellable: int,
    ) -> Exception:
        if quantity <= 0:
            return InvalidReservation([FieldError("lines[0].quantity", "must be > 0", quantity)])
        available = max(sellable, 0)
        refusal = refusals.get((quantity, available))
        if refusal is None:
            refusal = InsufficientStock(*key, quantity, available)
            refusals[quantity, available] = refusal
        return refusal

    @staticmethod
    def _active(draft: Reservation) -> Reservation:
        if draft.status != _ACTIVE:
            raise ValueError(f"a reservation draft must be active, not {draft.status!r}")
        return replace(draft, status=_ACTIVE)  # a plain "active" string

    def _undo_plain(self, level: Level, granted: list[Reservation], total: int) -> None:
        reservations = self._state.reservations
        for draft in granted:
            del reservations[draft.order_id]
        level.reserved -= total

    async def reservations(self, order_ids: Sequence[str]) -> dict[str, Reservation]:
        """The reservations of the orders that have one."""
        self._log()
        stored = self._state.reservations
        return {order_id: stored[order_id] for order_id in order_ids if order_id in stored}

    def _undo_reserve(self, draft: Reservation) -> None:
        state = self._state
        del state.reservations[draft.order_id]
        self._unhold(draft, state.sale_marks.pop(draft.order_id, None))

    async def reservation(self, order_id: str) -> Reservation | None:
        """The reservation of an order, whatever its status."""
        self._log()
        return self._state.reservations.get(order_id)

    async def transition(
        self, order_id: str, target: ReservationStatus, now: datetime
    ) -> tuple[Reservation, bool] | None:
        """Move an active reservation to released, committed or expired, exactly once."""
        log = self._log()
        if target not in (_RELEASED, _COMMITTED, _EXPIRED):
            raise ValueError(f"a reservation cannot be moved to {target!r}")
        current = self._state.reservations.get(order_id)
        if current is None:
            return None
        if current.status is not _ACTIVE:
            return current, False
        if target == _COMMITTED:
            return self._ship(log, current, now), True
        return self._end(log, current, ReservationStatus(target), now), True

    def _end(
        self, log: UndoLog, current: Reservation, status: ReservationStatus, now: datetime
    ) -> Reservation:
        """Release or expire an active reservation: its counts go back."""
        state = self._state
        updated = replace(current, status=status, updated_at=now)
        state.reservations[current.order_id] = updated
        self._unhold(current, state.sale_marks.get(current.order_id))
        log.append((self._undo_end, current))
        return updated

    def _undo_end(self, previous: Reservation) -> None:
        state = self._state
        state.reservations[previous.order_id] = previous
        self._rehold(previous, state.sale_marks.get(previous.order_id))

    def _ship(self, log: UndoLog, current: Reservation, now: datetime) -> Reservation:
        """Commit an active reservation: on_hand and reserved drop, a movement per line."""
        state = self._state
        order_id = current.order_id
        updated = replace(current, status=_COMMITTED, updated_at=now, expires_at=None)
        state.reservations[order_id] = updated
        log.append((self._undo_ship, current, len(state.movements)))
        levels, movements = state.levels, state.movements
        for line in current.lines:
            level = levels[line.sku][line.warehouse]
            quantity = line.quantity
            level.on_hand -= quantity
            level.reserved -= quantity
            level.moved -= quantity
            if level.safety_bp is not None:
                level.safety = safety_units(level.on_hand, level.safety, level.safety_bp)
            movements.append(
                Movement(line.sku, line.warehouse, -quantity, "shipment", order_id, now)
            )
        return updated

    def _undo_ship(self, previous: Reservation, movements: int) -> None:
        state = self._state
        levels = state.levels
        for line in previous.lines:
            level = levels[line.sku][line.warehouse]
            quantity = line.quantity
            level.on_hand += quantity
            level.reserved += quantity
            level.moved += quantity
            if level.safety_bp is not None:
                level.safety = safety_units(level.on_hand, level.safety, level.safety_bp)
        del state.movements[movements:]
        state.reservations[previous.order_id] = previous

    def _undo_replace(self, previous: Reservation) -> None:
        self._state.reservations[previous.order_id] = previous

    async def begin_payment(self, order_id: str, deadline: datetime, now: datetime) -> bool:
        """Hold an active reservation off the expiry sweep until ``deadline``."""
        log = self._log()
        current = self._state.reservations.get(order_id)
        if current is None or current.status is not _ACTIVE:
            return False
        updated = replace(current, payment_deadline=deadline, updated_at=now)
        self._state.reservations[order_id] = updated
        log.append((self._undo_replace, current))
        return True

    async def mark_paid(self, order_id: str, now: datetime) -> bool:
        """Mark an active reservation paid; it no longer expires."""
        log = self._log()
        current = self._state.reservations.get(order_id)
        if current is None or current.status is not _ACTIVE:
            return False
        updated = replace(
            current, paid=True, expires_at=None, payment_deadline=None, updated_at=now
        )
        self._state.reservations[order_id] = updated
        log.append((self._undo_replace, current))
        return True

    async def reactivate(
        self, order_id: str, now: datetime, expires_at: datetime | None, *, paid: bool
    ) -> Reservation | None:
        """Take stock again for an expired reservation, all or nothing, like reserve()."""
        log = self._log()
        state = self._state
        current = state.reservations.get(order_id)
        if current is None or current.status is not _EXPIRED:
            return None
        marks = self._take(current.lines, current.buyer_id)
        updated = replace(
            current,
            status=_ACTIVE,
            updated_at=now,
            expires_at=expires_at,
            paid=paid,
            payment_deadline=None,
        )
        state.reservations[order_id] = updated
        old_marks = state.sale_marks.pop(order_id, None)
        if marks is not None:
            state.sale_marks[order_id] = marks
        if expires_at is not None:
            heapq.heappush(state.expiry, (expires_at, order_id))
        log.append((self._undo_reactivate, current, old_marks))
        return updated

    def _undo_reactivate(self, previous: Reservation, old_marks: Marks | None) -> None:
        state = self._state
        order_id = previous.order_id
        self._unhold(previous, state.sale_marks.pop(order_id, None))
        if old_marks is not None:
            state.sale_marks[order_id] = old_marks
        state.reservations[order_id] = previous

    async def expire_due(self, now: datetime, limit: int) -> list[Reservation]:
        """Expire up to ``limit`` due reservations, earliest ``expires_at`` first.

        Pops the expiry heap instead of scanning: an entry that no longer matches its
        reservation is dropped, and a due one whose payment is in flight moves to the
        ``paying`` heap until its deadline. The pops are undone with the unit.
        """
        log = self._log()
        expired: list[Reservation] = []
        if limit <= 0:
            return expired
        state = self._state
        reservations, expiry, paying = state.reservations, state.expiry, state.paying
        popped: list[tuple[datetime, str]] = []
        popped_paying: list[tuple[datetime, datetime, str]] = []
        log.append((self._undo_pops, popped, popped_paying))
        while paying and paying[0][0] <= now:
            entry = heapq.heappop(paying)
            popped_paying.append(entry)
            _deadline, expires_at, order_id = entry
            found = reservations.get(order_id)
            if found is not None and found.status is _ACTIVE and found.expires_at == expires_at:
                heapq.heappush(expiry, (expires_at, order_id))
        while expiry and len(expired) < limit and expiry[0][0] <= now:
            expires_at, order_id = key = heapq.heappop(expiry)
            popped.append(key)
            found = reservations.get(order_id)
            if found is None or found.status is not _ACTIVE or found.expires_at != expires_at:
                continue  # stale: paid, finished, given a new expiry, or rolled back
            deadline = found.payment_deadline
            if deadline is not None and deadline > now:
                heapq.heappush(paying, (deadline, expires_at, order_id))
                continue
            expired.append(self._end(log, found, _EXPIRED, now))
        return expired

    def _undo_pops(
        self,
        popped: list[tuple[datetime, str]],
        popped_paying: list[tuple[datetime, datetime, str]],
    ) -> None:
        # Entries pushed meanwhile stay: a duplicate is dropped as stale when popped.
        for key in popped:
            heapq.heappush(self._state.expiry, key)
        for entry in popped_paying:
            heapq.heappush(self._state.paying, entry)

    # -- flash sales ----------------------------------------------------------------------

    async def set_flash_sale(
        self, sku: str, *, cap: int | None, per_buyer_limit: int | None
    ) -> FlashSale:
        """Start a sale (new sale id, nothing sold) or change the running sale's limits."""
        log = self._log()
        sales = self._state.sales
        sale = sales.get(sku)
        if sale is None:
            sale = sales[sku] = Sale(uuid.uuid4().hex, cap, per_buyer_limit)
            log.append((self._undo_new_sale, sku))
        else:
            if cap is not None and cap < sale.sold:
                message = f"must be >= the {sale.sold} units already sold under this sale"
                raise InvalidInput("flash sale", [FieldError("cap", message, cap)])
            log.append((self._undo_sale_limits, sale, sale.cap, sale.per_buyer_limit))
            sale.cap, sale.per_buyer_limit = cap, per_buyer_limit
        return _sale_view(sku, sale)

    def _undo_new_sale(self, sku: str) -> None:
        del self._state.sales[sku]

    @staticmethod
    def _undo_sale_limits(sale: Sale, cap: int | None, per_buyer_limit: int | None) -> None:
        sale.cap, sale.per_buyer_limit = cap, per_buyer_limit

    async def end_flash_sale(self, sku: str) -> None:
        """End the sale of a SKU, dropping its sold count and per-buyer counts."""
        log = self._log()
        sale = self._state.sales.pop(sku, None)
        bought = self._state.purchases.pop(sku, None)
        if sale is not None or bought is not None:
            log.append((self._undo_end_sale, sku, sale, bought))

    def _undo_end_sale(self, sku: str, sale: Sale | None, bought: dict[str, int] | None) -> None:
        if sale is not None:
            self._state.sales[sku] = sale
        if bought is not None:
            self._state.purchases[sku] = bought

    async def flash_sale(self, sku: str) -> FlashSale | None:
        """The running flash sale of a SKU, if any."""
        self._log()
        sale = self._state.sales.get(sku)
        return None if sale is None else _sale_view(sku, sale)

    # -- audit ----------------------------------------------------------------------------

    async def verify(self) -> list[Drift]:
        """Recompute each counter from the records (not the counters) and report drift."""
        self._log()
        return find_drift(self._state)
