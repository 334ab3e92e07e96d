"""After-sales: refunds, returns, exchanges and resends, and the inspection of returned goods.

An :class:`AfterSale` is what a channel's after-sales API reports about one request of a
buyer (退款 / 退货退款 / 换货 / 补寄), mapped onto one vocabulary. The platform owns its
status: every newer platform version (``source_modified_at``) replaces what we hold, the
way orders are merged. We own the link to our order (``order_id``: set when the order is
stored, kept across platform versions) and the inspection of returned goods.

The status vocabulary and its state machine (:data:`TRANSITIONS`) describe the usual life
of a request; a platform version that jumps against it is still stored (the platform is
the source of truth) and reported as irregular by :func:`is_regular`.

An :class:`Inspection` grades the units that came back, per SKU: ``sellable`` (back to
stock), ``defective`` (kept, apart and unsellable) and ``scrap`` (written off). One
inspection per after-sale; :func:`check_inspection` holds it against the returned lines.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ordercore.domain.orders import Money
from ordercore.errors import FieldError, InvalidInput

__all__ = [
    "RESTOCKING_KINDS",
    "TRANSITIONS",
    "AfterSale",
    "AfterSaleKind",
    "AfterSaleLine",
    "AfterSaleStatus",
    "Inspection",
    "InspectionLine",
    "after_sale_id",
    "check_inspection",
    "is_regular",
    "merge_after_sale",
    "parse_after_sale",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
NonEmpty = Annotated[str, Field(min_length=1)]
Count = Annotated[int, Field(ge=0)]


class AfterSaleKind(StrEnum):
    """What the buyer asked for."""

    REFUND_ONLY = "refund_only"
    """Money back, no goods back (仅退款): not shipped, or not worth returning."""
    RETURN_REFUND = "return_refund"
    """Goods back, then money back (退货退款)."""
    EXCHANGE = "exchange"
    """Goods back, other goods out (换货)."""
    RESEND = "resend"
    """Goods out again, nothing back (补寄: lost or missing in the parcel)."""


RESTOCKING_KINDS = frozenset({AfterSaleKind.RETURN_REFUND, AfterSaleKind.EXCHANGE})
"""The kinds whose goods come back and can be inspected."""


class AfterSaleStatus(StrEnum):
    """Where a request is, in the channel's view, mapped onto one vocabulary."""

    REQUESTED = "requested"
    """The buyer asked; the seller has not answered."""
    APPROVED = "approved"
    """The seller agreed (for returns: the buyer may send the goods)."""
    REJECTED = "rejected"
    """The seller refused."""
    RETURNING = "returning"
    """The buyer sent the goods back; they are on their way."""
    RECEIVED = "received"
    """The seller confirmed the goods arrived."""
    REFUNDED = "refunded"
    """The money went back (for exchanges and resends: the request is done)."""
    CLOSED = "closed"
    """Withdrawn by the buyer or closed by the platform without a refund."""


_S = AfterSaleStatus
TRANSITIONS: Mapping[AfterSaleStatus, frozenset[AfterSaleStatus]] = {
    _S.REQUESTED: frozenset({_S.APPROVED, _S.REJECTED, _S.REFUNDED, _S.CLOSED}),
    _S.APPROVED: frozenset({_S.RETURNING, _S.RECEIVED, _S.REFUNDED, _S.CLOSED}),
    # A buyer may appeal a refusal (the request goes back to the seller) or give up.
    _S.REJECTED: frozenset({_S.REQUESTED, _S.APPROVED, _S.REFUNDED, _S.CLOSED}),
    _S.RETURNING: frozenset({_S.RECEIVED, _S.REJECTED, _S.REFUNDED, _S.CLOSED}),
    _S.RECEIVED: frozenset({_S.REFUNDED, _S.REJECTED, _S.CLOSED}),
    _S.REFUNDED: frozenset(),
    _S.CLOSED: frozenset(),
}
"""The usual life of a request: status -> statuses it moves to next."""


def is_regular(before: AfterSaleStatus, after: AfterSaleStatus) -> bool:
    """True when ``after`` is ``before`` or a step the state machine allows from it."""
    return before is after or after in TRANSITIONS[before]


def after_sale_id(channel: str, external_id: str) -> str:
    """Our id of a channel's after-sale: stable, so re-polls and replays agree on it."""
    return f"{channel}:{external_id}"


class AfterSaleLine(BaseModel):
    """One SKU of a request: how many units it concerns."""

    model_config = _FROZEN

    sku: NonEmpty
    quantity: Annotated[int, Field(gt=0)]
    external_line_id: str = ""
    """The platform's sub-order id (Taobao ``oid``), when the request names one."""


class AfterSale(BaseModel):
    """A refund, return, exchange or resend request of one order on one channel.

    ``(channel, external_id)`` is the dedup key; ``order_external_id`` names the order on
    the platform and ``order_id`` is our order once linked (None until that order is
    stored). ``refund`` is what the buyer gets back (zero for exchanges and resends).
    """

    model_config = _FROZEN

    id: NonEmpty
    channel: NonEmpty
    external_id: NonEmpty
    order_external_id: NonEmpty
    order_id: str | None = None
    kind: AfterSaleKind
    status: AfterSaleStatus
    platform_status: str = ""
    """The platform's own status text, kept for operators (``WAIT_SELLER_AGREE``)."""
    lines: tuple[AfterSaleLine, ...] = ()
    """Empty when the platform does not say which units (a whole-order refund)."""
    refund: Money = Money(amount=Decimal(0))
    reason: str = ""
    description: str = ""
    tracking_number: str = ""
    """The buyer's return parcel, when the platform gives it."""
    created_at: datetime
    source_modified_at: datetime
    """The platform's modification time of this version (the newest version wins)."""
    updated_at: datetime
    version: Count = 0
    handed_over_at: datetime | None = None
    """When a refund of an order not yet shipped was handed to interception (storage-owned)."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for name in ("created_at", "source_modified_at", "updated_at"):
            if getattr(self, name).tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware (UTC)")
        return self

    @property
    def returns_goods(self) -> bool:
        """True for kinds whose goods come back (returns and exchanges)."""
        return self.kind in RESTOCKING_KINDS

    @property
    def is_final(self) -> bool:
        """True once refunded or closed: nothing further happens on the platform."""
        return not TRANSITIONS[self.status]

    def returned_units(self) -> Counter[str]:
        """Units per SKU this request sends back (none for refund-only and resends)."""
        units: Counter[str] = Counter()
        if self.returns_goods:
            for line in self.lines:
                units[line.sku] += line.quantity
        return units


def parse_after_sale(data: Mapping[str, object]) -> AfterSale:
    """Validate raw data into an AfterSale, raising InvalidInput that lists every bad field."""
    try:
        return AfterSale.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(
                field=".".join(str(part) for part in error["loc"]) or "after_sale",
                message=error["msg"],
                value=error.get("input"),
            )
            for error in exc.errors()
        ]
        raise InvalidInput("after-sale", errors) from None


def merge_after_sale(stored: AfterSale | None, incoming: AfterSale) -> AfterSale:
    """The after-sale to store when a platform sends ``incoming`` and we hold ``stored``.

    A newer platform version replaces the platform's data but keeps our id, our link to
    the order (``order_id``), our version and when we first saw it. An older or equal
    version changes nothing (the storage reports it as stale or unchanged).
    """
    if stored is None:
        return incoming
    if incoming.source_modified_at <= stored.source_modified_at:
        return stored
    return incoming.model_copy(
        update={
            "id": stored.id,
            "order_id": stored.order_id or incoming.order_id,
            "version": stored.version,
            "handed_over_at": stored.handed_over_at,
            "created_at": stored.created_at,
            "updated_at": max(stored.updated_at, incoming.updated_at),
        }
    )


class InspectionLine(BaseModel):
    """The grades of one SKU's returned units."""

    model_config = _FROZEN

    sku: NonEmpty
    sellable: Count = 0
    """Back to stock, sellable again."""
    defective: Count = 0
    """Kept apart (the defective warehouse), never sold."""
    scrap: Count = 0
    """Written off."""
    warehouse: str = ""
    """Where the sellable units go back to; empty: the default warehouse."""

    @model_validator(mode="after")
    def _some_units(self) -> Self:
        if self.sellable + self.defective + self.scrap == 0:
            raise ValueError(f"SKU {self.sku!r}: grade at least one unit")
        return self

    @property
    def units(self) -> int:
        """Every unit graded."""
        return self.sellable + self.defective + self.scrap


class Inspection(BaseModel):
    """The warehouse's inspection of one after-sale's returned goods (one per after-sale)."""

    model_config = _FROZEN

    after_sale_id: NonEmpty
    lines: Annotated[tuple[InspectionLine, ...], Field(min_length=1)]
    inspected_by: NonEmpty
    inspected_at: datetime
    defective_warehouse: NonEmpty
    """Where the defective units were put (recorded: the setting may change later)."""
    note: str = ""

    def same_grades(self, other: Inspection) -> bool:
        """True when ``other`` grades the same units the same way (a retried call)."""
        return _grades(self.lines) == _grades(other.lines)

    def totals(self) -> tuple[int, int, int]:
        """(sellable, defective, scrap) units in all."""
        return (
            sum(line.sellable for line in self.lines),
            sum(line.defective for line in self.lines),
            sum(line.scrap for line in self.lines),
        )


def _grades(lines: Sequence[InspectionLine]) -> dict[tuple[str, str], tuple[int, int, int]]:
    return {
        (line.sku, line.warehouse): (line.sellable, line.defective, line.scrap) for line in lines
    }


def check_inspection(after_sale: AfterSale, lines: Sequence[InspectionLine]) -> None:
    """Raise InvalidInput when these grades do not fit the request's returned goods.

    Only returns and exchanges are inspected; not after they were rejected or closed
    without a refund, nor before the seller approved them. Each SKU must have come back
    (it is on the request, or the request names no lines) and no more units may be graded
    than the request returns. A SKU may appear once per warehouse.
    """
    errors: list[FieldError] = []
    if not after_sale.returns_goods:
        errors.append(
            FieldError("kind", "only returns and exchanges send goods back", after_sale.kind)
        )
    if after_sale.status in (_S.REQUESTED, _S.REJECTED, _S.CLOSED):
        errors.append(
            FieldError(
                "status",
                "goods are inspected once a request is approved and not rejected or closed",
                after_sale.status,
            )
        )
    expected = after_sale.returned_units()
    graded: Counter[str] = Counter()
    seen: set[tuple[str, str]] = set()
    for index, line in enumerate(lines):
        key = (line.sku, line.warehouse)
        if key in seen:
            errors.append(FieldError(f"lines[{index}].sku", "graded twice", line.sku))
        seen.add(key)
        graded[line.sku] += line.units
    if expected:
        for sku, units in sorted(graded.items()):
            if sku not in expected:
                errors.append(FieldError(f"lines[{sku}]", "is not on the request", sku))
            elif units > expected[sku]:
                errors.append(
                    FieldError(
                        f"lines[{sku}]",
                        f"grades more units than the request returns ({expected[sku]})",
                        units,
                    )
                )
    if errors:
        raise InvalidInput(f"inspection of after-sale {after_sale.id!r}", errors)
