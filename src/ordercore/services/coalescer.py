"""Hot-SKU group commit: concurrent one-line reservations of one location share a transaction.

Requests for one (sku, warehouse) join batches in an in-process lane, in arrival order,
up to ``batch_size`` each. The first request of a batch leads it: when its turn comes
(at once if the lane is idle) it waits an optional ``window`` for more requests, runs
the batch through the storage's ``reserve_batch`` in one unit of work (one row lock, one
UPDATE, one multi-row INSERT), answers every request in it, then gives the turn to the
next batch's leader. While one batch is in the database the next one fills up, so the
row is locked once per batch instead of once per buyer.

A batch has two events, not one per request: its leader waits for ``turn``, everyone
else for ``done``; each request is woken once. A leader that gives up before its batch
ran passes the lead to the batch's next live request.

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
    __slots__ = ("abandoned", "draft", "outcome")

    def __init__(self, draft: Reservation) -> None:
        self.draft = draft
        self.outcome: Outcome | None = None
        self.abandoned = False


class _Batch:
    __slots__ = ("closed", "done", "leader", "requests", "turn")

    def __init__(self, leader: _Request) -> None:
        self.requests = [leader]
        self.leader: _Request | None = leader
        self.turn = anyio.Event()
        self.done = anyio.Event()
        self.closed = False
        """Taken by its leader: later requests start a new batch."""

    def next_leader(self) -> _Request | None:
        """Pass the lead to the oldest request still waiting (None: all gave up)."""
        self.leader = next((r for r in self.requests if not r.abandoned), None)
        woken, self.done = self.done, anyio.Event()
        woken.set()  # the new leader waits on ``done`` until now; the others wait again
        return self.leader


class _Lane:
    __slots__ = ("batches", "busy")

    def __init__(self) -> None:
        self.batches: deque[_Batch] = deque()
        self.busy = False


def _own(outcome: Exception) -> Exception:
    """The error for one caller: a refusal may be shared, and raising sets its traceback."""
    if outcome.__traceback__ is None:
        return outcome
    clone = type(outcome).__new__(type(outcome))
    clone.__dict__.update(outcome.__dict__)
    clone.args = outcome.args
    return clone


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
        batches = lane.batches
        batch = batches[-1] if batches else None
        if batch is None or batch.closed or len(batch.requests) >= self._batch_size:
            batch = _Batch(request)
            batches.append(batch)
        else:
            batch.requests.append(request)
            if batch.leader is None:  # everyone before us gave up: we lead
                batch.leader = request
        if not lane.busy:  # an idle lane: this request's new batch is the only one
            lane.busy = True
            batch.turn.set()
        try:
            while request.outcome is None:
                if batch.leader is request:
                    await batch.turn.wait()
                    await self._lead(key, lane, batch)
                else:
                    await batch.done.wait()
        except BaseException:
            request.abandoned = True
            if request.outcome is None and batch.leader is request:
                self._pass_lead(lane, batch)
            raise
        outcome = request.outcome
        if isinstance(outcome, Exception):
            raise _own(outcome)
        return outcome

    async def _lead(self, key: tuple[str, str], lane: _Lane, batch: _Batch) -> None:
        if self._window > 0:
            await anyio.sleep(self._window)
        batch.closed = True
        lane.batches.popleft()  # this batch: turns go in lane order
        live = [request for request in batch.requests if not request.abandoned]
        try:
            with anyio.CancelScope(shield=True):
                await self._run(key, live)
        finally:
            batch.done.set()
            self._hand_off(lane)

    def _pass_lead(self, lane: _Lane, batch: _Batch) -> None:
        """The leader gave up before its batch ran: the next live request leads it."""
        if batch.next_leader() is None and batch.turn.is_set():
            lane.batches.popleft()  # its turn had come and nobody is left to use it
            self._hand_off(lane)

    @staticmethod
    def _hand_off(lane: _Lane) -> None:
        batches = lane.batches
        while batches:
            head = batches[0]
            if head.leader is not None:
                head.turn.set()
                return
            batches.popleft()  # everyone in it gave up before its turn
        lane.busy = False

    async def _run(self, key: tuple[str, str], batch: list[_Request]) -> None:
        if not batch:
            return
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
        refusals: dict[int, InsufficientStock] = {}  # one per quantity; see _own()
        for draft in drafts:
            known = held.get(draft.order_id)
            if known is not None:
                outcomes.append(known)
                continue
            line = draft.lines[0]
            refusal = refusals.get(line.quantity)
            if refusal is None:
                refusal = InsufficientStock(line.sku, line.warehouse, line.quantity, 0)
                refusals[line.quantity] = refusal
            outcomes.append(refusal)
        return outcomes
