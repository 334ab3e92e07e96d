"""Hot-SKU group commit: concurrent one-line reservations of one location share a transaction.

Requests for one (sku, warehouse) wait in an in-process lane. The first to arrive leads:
it takes up to ``batch_size`` waiting requests (after an optional ``window`` to gather
more), runs them through the storage's ``reserve_batch`` in one unit of work (one row
lock, one UPDATE, one multi-row INSERT), answers every request in the batch, then hands
the lead to the oldest request still waiting. While one batch is in the database the
next one fills up, so the row is locked once per batch instead of once per buyer.

Each request still gets its own all-or-nothing answer, in arrival order. Across
processes, batches serialise on the row lock like single requests do, so totals never
oversell. Once a batch sees the location sold out, the lane answers from the
:class:`SoldOutBoard` with one read per batch (so a retried order that already holds a
reservation still gets it back) and never touches the stock row.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Sequence
from typing import TypeAlias

import anyio

from ordercore.domain.inventory import BatchResult, Reservation
from ordercore.errors import InsufficientStock, UnknownSku
from ordercore.ports.storage import Storage
from ordercore.services.sold_out import SoldOutBoard

__all__ = ["ReservationCoalescer"]

Outcome: TypeAlias = Reservation | Exception


class _Request:
    __slots__ = ("abandoned", "done", "draft", "lead", "outcome")

    def __init__(self, draft: Reservation) -> None:
        self.draft = draft
        self.done = anyio.Event()
        self.outcome: Outcome | None = None
        self.lead = False
        self.abandoned = False


class _Lane:
    __slots__ = ("busy", "pending")

    def __init__(self) -> None:
        self.pending: deque[_Request] = deque()
        self.busy = False


class ReservationCoalescer:
    """Groups one-line reservations per (sku, warehouse); see the module docs."""

    def __init__(
        self,
        storage: Storage,
        board: SoldOutBoard,
        *,
        batch_size: int,
        window: float,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._storage = storage
        self._board = board
        self._batch_size = batch_size
        self._window = window
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._on_batch = on_batch

    async def reserve(self, draft: Reservation) -> Reservation:
        """Reserve a one-line draft through its location's lane; raise its own error."""
        line = draft.lines[0]
        key = (line.sku, line.warehouse)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane()
        request = _Request(draft)
        lane.pending.append(request)
        if lane.busy:
            try:
                await request.done.wait()
            except BaseException:
                request.abandoned = True
                if request.lead and request.outcome is None:
                    self._hand_off(lane)
                raise
        else:
            lane.busy = True
        if request.outcome is None:  # we lead: first in, or handed the lead
            await self._lead(key, lane, request)
        outcome = request.outcome
        if isinstance(outcome, Exception):
            raise outcome
        assert outcome is not None
        return outcome

    async def _lead(self, key: tuple[str, str], lane: _Lane, me: _Request) -> None:
        try:
            while me.outcome is None:
                if self._window > 0:
                    await anyio.sleep(self._window)
                batch = self._take(lane)
                if not batch:  # only abandoned requests were left, ours among them
                    return
                with anyio.CancelScope(shield=True):
                    await self._run(key, batch)
        except BaseException:
            me.abandoned = True
            raise
        finally:
            self._hand_off(lane)

    def _take(self, lane: _Lane) -> list[_Request]:
        batch: list[_Request] = []
        pending = lane.pending
        while pending and len(batch) < self._batch_size:
            request = pending.popleft()
            if not request.abandoned:  # a caller that gave up before its turn takes nothing
                batch.append(request)
        return batch

    def _hand_off(self, lane: _Lane) -> None:
        pending = lane.pending
        while pending:
            successor = pending[0]
            if successor.abandoned:
                pending.popleft()
                continue
            successor.lead = True
            successor.done.set()
            return
        lane.busy = False

    async def _run(self, key: tuple[str, str], batch: list[_Request]) -> None:
        drafts = [request.draft for request in batch]
        outcomes: Sequence[Outcome]
        try:
            if self._board.is_sold_out(*key):
                outcomes = await self._refuse(drafts)
            else:
                result = await self._reserve(drafts)
                outcomes = result.outcomes
                if result.sellable == 0 and not isinstance(outcomes[0], UnknownSku):
                    self._board.mark(*key)
        except Exception as exc:  # the storage failed: every request in the batch learns why
            outcomes = [copy.copy(exc) for _ in batch]
        for request, outcome in zip(batch, outcomes, strict=True):
            request.outcome = outcome
            request.done.set()
        if self._on_batch is not None:
            self._on_batch(len(batch))

    async def _reserve(self, drafts: list[Reservation]) -> BatchResult:
        async with self._storage.unit_of_work() as uow:
            result = await uow.inventory.reserve_batch(drafts)
            await uow.commit()
        return result

    async def _refuse(self, drafts: list[Reservation]) -> list[Outcome]:
        """Sold out: refuse each new order; orders that hold a reservation get it back."""
        async with self._storage.unit_of_work() as uow:
            held = await uow.inventory.reservations([draft.order_id for draft in drafts])
        outcomes: list[Outcome] = []
        for draft in drafts:
            line = draft.lines[0]
            known = held.get(draft.order_id)
            outcomes.append(
                known
                if known is not None
                else InsufficientStock(line.sku, line.warehouse, line.quantity, 0)
            )
        return outcomes
