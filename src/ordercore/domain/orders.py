"""The canonical order: every channel's shape is mapped onto these models.

An :class:`Order` is an aggregate: its status only changes through
:meth:`Order.transition_to`, which enforces the state machine and records each
change in ``status_history``. Values (money, address, contact, lines) are frozen.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ordercore.errors import FieldError, IllegalTransition, InvalidOrder

__all__ = [
    "TRANSITIONS",
    "Address",
    "Contact",
    "Money",
    "Order",
    "OrderLine",
    "OrderStatus",
    "StatusChange",
    "parse_order",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
NonEmpty = Annotated[str, Field(min_length=1)]


class Money(BaseModel):
    """An amount in one currency; Decimal, never float."""

    model_config = _FROZEN

    amount: Decimal
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "CNY"

    @field_validator("amount")
    @classmethod
    def _not_negative(cls, value: Decimal) -> Decimal:
        if value < 0:
            raise ValueError("must be >= 0")
        return value

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __mul__(self, factor: int) -> Money:
        return Money(amount=self.amount * factor, currency=self.currency)


class Address(BaseModel):
    """A receiver address. ``masked`` marks data the platform handed over masked or encrypted."""

    model_config = _FROZEN

    country: str = "CN"
    province: str = ""
    city: str = ""
    district: str = ""
    street: str = ""
    detail: str = ""
    postal_code: str = ""
    masked: bool = False

    def one_line(self) -> str:
        """The address as one string, largest region first (the Chinese order)."""
        parts = (self.province, self.city, self.district, self.street, self.detail)
        return "".join(part for part in parts if part)


class Contact(BaseModel):
    """A person to reach: the receiver of an order."""

    model_config = _FROZEN

    name: str = ""
    phone: str = ""
    email: str = ""
    masked: bool = False


class OrderLine(BaseModel):
    """One SKU of an order. ``warehouse`` is empty until the order is routed."""

    model_config = _FROZEN

    sku: NonEmpty
    quantity: Annotated[int, Field(gt=0)]
    unit_price: Money = Money(amount=Decimal(0))
    title: str = ""
    warehouse: str = ""
    external_line_id: str = ""

    @property
    def total(self) -> Money:
        """Unit price times quantity."""
        return self.unit_price * self.quantity


class OrderStatus(StrEnum):
    """Where an order is in its life."""

    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    ALLOCATED = "allocated"
    SHIPPED = "shipped"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ON_HOLD = "on_hold"


_S = OrderStatus
TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    _S.PENDING_PAYMENT: frozenset({_S.PAID, _S.CANCELLED, _S.ON_HOLD}),
    _S.PAID: frozenset({_S.ALLOCATED, _S.CANCELLED, _S.ON_HOLD}),
    _S.ALLOCATED: frozenset({_S.SHIPPED, _S.CANCELLED, _S.ON_HOLD}),
    _S.SHIPPED: frozenset({_S.COMPLETED}),
    _S.COMPLETED: frozenset(),
    _S.CANCELLED: frozenset(),
    # A hold is released back to the status the order had before it (see transition_to).
    _S.ON_HOLD: frozenset({_S.PENDING_PAYMENT, _S.PAID, _S.ALLOCATED, _S.CANCELLED}),
}
"""The order state machine: status -> statuses it may move to."""


class StatusChange(BaseModel):
    """One recorded status change of an order."""

    model_config = _FROZEN

    from_status: OrderStatus | None
    to_status: OrderStatus
    at: datetime
    reason: str = ""


class Order(BaseModel):
    """The canonical order, whatever channel it came from.

    ``id`` is ours; ``(channel, external_id)`` is the platform's key and the dedup key.
    ``version`` counts stored revisions for optimistic concurrency.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, validate_assignment=True)

    id: NonEmpty
    channel: NonEmpty = "direct"
    external_id: NonEmpty
    buyer_id: str = ""
    status: OrderStatus = OrderStatus.PENDING_PAYMENT
    lines: Annotated[tuple[OrderLine, ...], Field(min_length=1)]
    receiver: Contact = Contact()
    address: Address = Address()
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "CNY"
    shipping_fee: Money = Money(amount=Decimal(0))
    remark: str = ""
    created_at: datetime
    updated_at: datetime
    status_history: tuple[StatusChange, ...] = ()
    version: Annotated[int, Field(ge=0)] = 0
    source_modified_at: datetime | None = None
    """The platform's modification time of the version we hold (newest version wins)."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for line in self.lines:
            if line.unit_price.currency != self.currency:
                raise ValueError(
                    f"line {line.sku!r} is priced in {line.unit_price.currency}, "
                    f"the order in {self.currency}"
                )
        if self.created_at.tzinfo is None or self.updated_at.tzinfo is None:
            raise ValueError("created_at and updated_at must be timezone-aware (UTC)")
        return self

    @property
    def total(self) -> Money:
        """Sum of line totals plus the shipping fee."""
        total = self.shipping_fee
        for line in self.lines:
            total = total + line.total
        return total

    def allowed_next(self) -> frozenset[OrderStatus]:
        """The statuses this order may move to now."""
        allowed = TRANSITIONS[self.status]
        if self.status is OrderStatus.ON_HOLD:
            held_from = self._status_before_hold()
            return frozenset({OrderStatus.CANCELLED} | ({held_from} if held_from else set()))
        return allowed

    def transition_to(self, target: OrderStatus, at: datetime, reason: str = "") -> Order:
        """Return this order moved to ``target``; raise IllegalTransition if not allowed.

        Releasing a hold returns the order to the status it was held from.
        """
        allowed = self.allowed_next()
        if target not in allowed:
            raise IllegalTransition(self.id, self.status, target, sorted(allowed))
        change = StatusChange(from_status=self.status, to_status=target, at=at, reason=reason)
        return self.model_copy(
            update={
                "status": target,
                "updated_at": max(at, self.updated_at),
                "status_history": (*self.status_history, change),
            }
        )

    def _status_before_hold(self) -> OrderStatus | None:
        for change in reversed(self.status_history):
            if change.to_status is OrderStatus.ON_HOLD:
                return change.from_status
        return None


def parse_order(data: Mapping[str, object]) -> Order:
    """Validate raw data into an Order, raising InvalidOrder that lists every bad field."""
    try:
        return Order.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(
                field=".".join(str(part) for part in error["loc"]) or "order",
                message=error["msg"],
                value=error.get("input"),
            )
            for error in exc.errors()
        ]
        raise InvalidOrder(errors) from None
