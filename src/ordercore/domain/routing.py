"""Warehouse routing: which warehouse ships which line of an order.

A :class:`RoutingPolicy` turns a :class:`RoutingRequest` (the order's lines, where the
receiver is, the candidate warehouses and what each can sell) into an
:class:`Allocation`: a warehouse per line, plus :class:`Transfer` legs where no single
warehouse can fill a line (or splitting is not allowed). :func:`build_plan` makes the
stored :class:`FulfilmentPlan` out of it.

Lines are the unit of a split: a line is never divided between two packages. A line
that no warehouse can fill alone is shipped from one warehouse with the shortfall
moved in by transfer requests.

Policies are pluggable: implement the protocol and :func:`register_policy` it; the
built-in ones are ``nearest``, ``priority`` and ``fewest_splits``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field

from ordercore.domain.geo import Region, distance_km
from ordercore.domain.inventory import Reservation, ReservationLine, ReservationStatus
from ordercore.domain.warehouses import Warehouse
from ordercore.errors import (
    FieldError,
    InvalidReservation,
    ReservationNotFound,
    ReservationStateConflict,
    UnknownAdapter,
    Unroutable,
)

__all__ = [
    "Allocation",
    "FewestSplitsPolicy",
    "FulfilmentPlan",
    "NearestPolicy",
    "Package",
    "PlanLine",
    "PriorityPolicy",
    "RouteLine",
    "RoutingPolicy",
    "RoutingRequest",
    "Transfer",
    "TransferRequest",
    "TransferStatus",
    "build_plan",
    "check_relocation",
    "policy_named",
    "policy_names",
    "register_policy",
    "relocation_deltas",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


# -- what a policy gets and gives ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteLine:
    """One order line to place: its index in ``order.lines``, SKU and quantity."""

    index: int
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class RoutingRequest:
    """Everything a policy decides on; ``sellable`` is keyed by (sku, warehouse code).

    ``region`` is None when the receiver address could not be placed: distances are then
    unknown and count as farther than any known one.
    """

    order_id: str
    lines: tuple[RouteLine, ...]
    region: Region | None
    warehouses: tuple[Warehouse, ...]
    sellable: Mapping[tuple[str, str], int]

    def distance(self, warehouse: Warehouse) -> float:
        """km from the receiver to ``warehouse`` (infinity when the receiver is unplaced)."""
        if self.region is None:
            return math.inf
        return distance_km(self.region, warehouse.region)

    def demand(self) -> dict[str, int]:
        """Units wanted per SKU over all lines."""
        totals: dict[str, int] = {}
        for line in self.lines:
            totals[line.sku] = totals.get(line.sku, 0) + line.quantity
        return totals

    def fills(self, warehouse: str, lines: Iterable[RouteLine]) -> bool:
        """True when ``warehouse`` alone can sell every unit of ``lines``."""
        wanted: dict[str, int] = {}
        for line in lines:
            wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
        return all(self.sellable.get((sku, warehouse), 0) >= q for sku, q in wanted.items())


@dataclass(frozen=True, slots=True)
class Transfer:
    """Move ``quantity`` of the SKU of line ``line`` from ``source`` to ``target``."""

    line: int
    sku: str
    quantity: int
    source: str
    target: str


@dataclass(frozen=True, slots=True)
class Allocation:
    """A policy's answer: ``assignments[i]`` ships ``request.lines[i]``; transfers top up."""

    assignments: tuple[str, ...]
    transfers: tuple[Transfer, ...] = ()


class RoutingPolicy(Protocol):
    """Chooses warehouses for an order. Must not mutate the request."""

    name: str

    def allocate(self, request: RoutingRequest) -> Allocation:
        """Place every line (raise Unroutable when the network cannot fill one)."""
        ...


# -- the built-in policies ----------------------------------------------------------------


class _RankedPolicy:
    """Rank warehouses; the first that fills the whole order wins; otherwise split."""

    name = "ranked"

    def __init__(self, *, allow_split: bool = True) -> None:
        self.allow_split = allow_split

    def rank(self, request: RoutingRequest) -> list[Warehouse]:
        """Candidate warehouses, most preferred first."""
        raise NotImplementedError

    def allocate(self, request: RoutingRequest) -> Allocation:
        """Whole order from one warehouse if any can; else split or transfer."""
        _check_network(request)
        ranked = self.rank(request)
        for warehouse in ranked:
            if request.fills(warehouse.code, request.lines):
                return Allocation(tuple(warehouse.code for _ in request.lines))
        if self.allow_split:
            return self._split(request, ranked)
        return _single_target(request, ranked)

    def _split(self, request: RoutingRequest, ranked: list[Warehouse]) -> Allocation:
        remaining = dict(request.sellable)
        chosen: dict[int, str] = {}
        for line in request.lines:
            for warehouse in ranked:
                if remaining.get((line.sku, warehouse.code), 0) >= line.quantity:
                    chosen[line.index] = warehouse.code
                    remaining[line.sku, warehouse.code] -= line.quantity
                    break
        return _finish(request, ranked, chosen, remaining)


class NearestPolicy(_RankedPolicy):
    """The nearest warehouse that can fill the whole order (ties: priority, then code)."""

    name = "nearest"

    def rank(self, request: RoutingRequest) -> list[Warehouse]:
        """By distance, then priority, then code."""
        return sorted(request.warehouses, key=lambda w: (request.distance(w), w.priority, w.code))


class PriorityPolicy(_RankedPolicy):
    """The most preferred warehouse (lowest ``priority``) that can fill the whole order.

    ``order``: an explicit list of warehouse codes, first preferred, overriding the
    warehouses' own priorities; codes not in it come after, by priority. Ties: distance.
    """

    name = "priority"

    def __init__(self, order: Sequence[str] = (), *, allow_split: bool = True) -> None:
        super().__init__(allow_split=allow_split)
        self.order = tuple(order)

    def rank(self, request: RoutingRequest) -> list[Warehouse]:
        """By position in ``order``, then priority, then distance, then code."""
        position = {code: index for index, code in enumerate(self.order)}
        return sorted(
            request.warehouses,
            key=lambda w: (
                position.get(w.code, len(position)),
                w.priority,
                request.distance(w),
                w.code,
            ),
        )


class FewestSplitsPolicy(NearestPolicy):
    """As few warehouses as possible (greedy set cover), ties broken by distance."""

    name = "fewest_splits"

    def _split(self, request: RoutingRequest, ranked: list[Warehouse]) -> Allocation:
        remaining = dict(request.sellable)
        chosen: dict[int, str] = {}
        open_lines = list(request.lines)
        while open_lines:
            best: tuple[Warehouse, list[RouteLine]] | None = None
            for warehouse in ranked:  # a later one must cover strictly more to win
                covered = _coverable(warehouse.code, open_lines, remaining)
                if covered and (best is None or len(covered) > len(best[1])):
                    best = (warehouse, covered)
            if best is None:
                break
            warehouse, covered = best
            for line in covered:
                chosen[line.index] = warehouse.code
                remaining[line.sku, warehouse.code] -= line.quantity
            open_lines = [line for line in open_lines if line.index not in chosen]
        return _finish(request, ranked, chosen, remaining)


def _coverable(
    warehouse: str, lines: Sequence[RouteLine], remaining: Mapping[tuple[str, str], int]
) -> list[RouteLine]:
    """The lines ``warehouse`` can fill together, taken in order while they fit."""
    left = {key: value for key, value in remaining.items() if key[1] == warehouse}
    taken = []
    for line in lines:
        key = (line.sku, warehouse)
        if left.get(key, 0) >= line.quantity:
            left[key] -= line.quantity
            taken.append(line)
    return taken


def _check_network(request: RoutingRequest) -> None:
    """Unroutable when all candidate warehouses together cannot sell a SKU's demand."""
    codes = {w.code for w in request.warehouses}
    for sku, wanted in request.demand().items():
        total = sum(q for (s, w), q in request.sellable.items() if s == sku and w in codes)
        if total < wanted:
            raise Unroutable(request.order_id, sku, wanted, total)


def _single_target(request: RoutingRequest, ranked: list[Warehouse]) -> Allocation:
    """No split: one warehouse ships all, the one needing the fewest units moved in."""

    def shortfall(warehouse: Warehouse) -> int:
        missing = 0
        for sku, wanted in request.demand().items():
            missing += max(0, wanted - request.sellable.get((sku, warehouse.code), 0))
        return missing

    target = min(ranked, key=lambda w: (shortfall(w), ranked.index(w)))
    chosen = {line.index: target.code for line in request.lines}
    remaining = dict(request.sellable)
    transfers = []
    for line in request.lines:
        transfers.extend(_top_up(request, line, target.code, ranked, remaining))
    return Allocation(tuple(chosen[line.index] for line in request.lines), tuple(transfers))


def _finish(
    request: RoutingRequest,
    ranked: list[Warehouse],
    chosen: dict[int, str],
    remaining: dict[tuple[str, str], int],
) -> Allocation:
    """Lines no warehouse fills alone ship from the most used (then best ranked) one."""
    transfers: list[Transfer] = []
    used = list(chosen.values())
    for line in request.lines:
        if line.index in chosen:
            continue
        target = _target_for(line, ranked, used)
        chosen[line.index] = target
        used.append(target)
        transfers.extend(_top_up(request, line, target, ranked, remaining))
    return Allocation(tuple(chosen[line.index] for line in request.lines), tuple(transfers))


def _target_for(line: RouteLine, ranked: list[Warehouse], used: list[str]) -> str:
    order = {w.code: index for index, w in enumerate(ranked)}
    if used:
        return min(set(used), key=lambda code: (-used.count(code), order[code]))
    return ranked[0].code


def _top_up(
    request: RoutingRequest,
    line: RouteLine,
    target: str,
    ranked: list[Warehouse],
    remaining: dict[tuple[str, str], int],
) -> list[Transfer]:
    """Take what ``target`` has for the line, then move the rest in from others by rank."""
    here = min(max(remaining.get((line.sku, target), 0), 0), line.quantity)
    remaining[line.sku, target] = remaining.get((line.sku, target), 0) - here
    missing = line.quantity - here
    transfers = []
    for warehouse in ranked:
        if missing == 0:
            break
        if warehouse.code == target:
            continue
        key = (line.sku, warehouse.code)
        take = min(max(remaining.get(key, 0), 0), missing)
        if take:
            remaining[key] -= take
            missing -= take
            transfers.append(Transfer(line.index, line.sku, take, warehouse.code, target))
    if missing:  # several lines of one SKU drained the network between them
        raise Unroutable(request.order_id, line.sku, line.quantity, line.quantity - missing)
    return transfers


# -- the registry -------------------------------------------------------------------------

PolicyFactory = Callable[[], RoutingPolicy]

_POLICIES: dict[str, PolicyFactory] = {
    "nearest": NearestPolicy,
    "priority": PriorityPolicy,
    "fewest_splits": FewestSplitsPolicy,
    "nearest_no_split": lambda: NearestPolicy(allow_split=False),
}


def register_policy(name: str, factory: PolicyFactory) -> None:
    """Make a policy available by name (replaces one registered under the same name)."""
    if not name:
        raise ValueError("a routing policy needs a name")
    _POLICIES[name] = factory


def policy_names() -> list[str]:
    """The registered policy names, sorted."""
    return sorted(_POLICIES)


def policy_named(name: str) -> RoutingPolicy:
    """A new instance of the policy registered as ``name``; UnknownAdapter lists the known."""
    factory = _POLICIES.get(name)
    if factory is None:
        raise UnknownAdapter("routing policy", name, _POLICIES)
    return factory()


# -- moving a reservation ------------------------------------------------------------------


def _sku_totals(lines: Sequence[ReservationLine]) -> dict[str, int]:
    """Units per SKU over some reservation lines."""
    totals: dict[str, int] = {}
    for line in lines:
        totals[line.sku] = totals.get(line.sku, 0) + line.quantity
    return totals


def relocation_deltas(
    old: Sequence[ReservationLine], new: Sequence[ReservationLine]
) -> list[tuple[str, str, int]]:
    """Net change of ``reserved`` per (sku, warehouse), sorted (the lock order), zeros out."""
    deltas: dict[tuple[str, str], int] = {}
    for line in old:
        key = (line.sku, line.warehouse)
        deltas[key] = deltas.get(key, 0) - line.quantity
    for line in new:
        key = (line.sku, line.warehouse)
        deltas[key] = deltas.get(key, 0) + line.quantity
    return [(sku, warehouse, delta) for (sku, warehouse), delta in sorted(deltas.items()) if delta]


def check_relocation(
    order_id: str, old: Reservation | None, new: Sequence[ReservationLine]
) -> Reservation:
    """The reservation to relocate, or the typed error saying why it cannot be."""
    if old is None:
        raise ReservationNotFound(order_id)
    if old.status != ReservationStatus.ACTIVE:
        raise ReservationStateConflict(order_id, old.status, "relocate")
    if _sku_totals(old.lines) != _sku_totals(new):
        raise InvalidReservation(
            [
                FieldError(
                    "lines",
                    "a relocation must keep each SKU's total units",
                    sorted(_sku_totals(new).items()),
                )
            ]
        )
    return old


# -- the stored plan ----------------------------------------------------------------------


class TransferStatus(StrEnum):
    """Where a transfer between warehouses is."""

    REQUESTED = "requested"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class TransferRequest(BaseModel):
    """Units to move between warehouses so that an order ships in one package."""

    model_config = _FROZEN

    id: Annotated[str, Field(min_length=1)]
    order_id: Annotated[str, Field(min_length=1)]
    sku: Annotated[str, Field(min_length=1)]
    quantity: Annotated[int, Field(gt=0)]
    from_warehouse: Annotated[str, Field(min_length=1)]
    to_warehouse: Annotated[str, Field(min_length=1)]
    status: TransferStatus = TransferStatus.REQUESTED
    created_at: datetime
    updated_at: datetime


class PlanLine(BaseModel):
    """An order line in a package: its index in ``order.lines``, SKU and quantity."""

    model_config = _FROZEN

    index: Annotated[int, Field(ge=0)]
    sku: str
    quantity: Annotated[int, Field(gt=0)]


class Package(BaseModel):
    """The lines one warehouse ships; ``distance_km`` to the receiver when known."""

    model_config = _FROZEN

    warehouse: str
    lines: tuple[PlanLine, ...]
    distance_km: float | None = None


class FulfilmentPlan(BaseModel):
    """How one order ships: its packages (one per warehouse) and transfers into them."""

    model_config = _FROZEN

    order_id: Annotated[str, Field(min_length=1)]
    policy: str
    packages: tuple[Package, ...]
    transfers: tuple[TransferRequest, ...] = ()
    region: Region | None = None
    created_at: datetime

    @property
    def is_split(self) -> bool:
        """True when more than one warehouse ships."""
        return len(self.packages) > 1

    def warehouse_of(self, index: int) -> str:
        """The warehouse shipping line ``index`` (KeyError when it is in no package)."""
        for package in self.packages:
            if any(line.index == index for line in package.lines):
                return package.warehouse
        raise KeyError(index)


def build_plan(
    request: RoutingRequest,
    allocation: Allocation,
    *,
    policy: str,
    now: datetime,
    new_id: Callable[[], str],
) -> FulfilmentPlan:
    """The plan an allocation describes (packages in first-line order)."""
    if len(allocation.assignments) != len(request.lines):
        raise ValueError(
            f"policy {policy!r} placed {len(allocation.assignments)} of {len(request.lines)} lines"
        )
    known = {w.code: w for w in request.warehouses}
    grouped: dict[str, list[PlanLine]] = {}
    for line, code in zip(request.lines, allocation.assignments, strict=True):
        if code not in known:
            raise ValueError(f"policy {policy!r} chose warehouse {code!r}, not a candidate")
        grouped.setdefault(code, []).append(
            PlanLine(index=line.index, sku=line.sku, quantity=line.quantity)
        )
    packages = []
    for code, lines in grouped.items():
        distance = request.distance(known[code])
        packages.append(
            Package(
                warehouse=code,
                lines=tuple(lines),
                distance_km=None if math.isinf(distance) else round(distance, 1),
            )
        )
    transfers = tuple(
        TransferRequest(
            id=new_id(),
            order_id=request.order_id,
            sku=leg.sku,
            quantity=leg.quantity,
            from_warehouse=leg.source,
            to_warehouse=leg.target,
            created_at=now,
            updated_at=now,
        )
        for leg in allocation.transfers
    )
    return FulfilmentPlan(
        order_id=request.order_id,
        policy=policy,
        packages=tuple(packages),
        transfers=transfers,
        region=request.region,
        created_at=now,
    )
