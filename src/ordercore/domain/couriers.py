"""Waybills: what we ask a courier for, what it answers, and what we keep.

A :class:`WaybillRequest` names one package of one order: sender, receiver, contents.
Its ``key`` (our order id + package id, :func:`waybill_key`) is the idempotency key a
courier adapter sends as the courier's *client order number*: couriers reject or dedup
a second create with the same number, so a retried call never makes two waybills.

A :class:`WaybillRecord` is what the storage keeps per (order id, package id): no
names, phones or addresses, only the courier's code, tracking number and label
reference. It is written *before* the courier is called (``requested``) and filled in
after (``created``), so a retry, a second worker or a crash finds the record and either
re-asks with the same key or does nothing.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ordercore.domain.orders import Address, Contact

__all__ = [
    "KEY_SEPARATOR",
    "Package",
    "PackageItem",
    "Party",
    "TrackingEvent",
    "Waybill",
    "WaybillRecord",
    "WaybillRequest",
    "WaybillState",
    "waybill_key",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
NonEmpty = Annotated[str, Field(min_length=1, max_length=100)]
KEY_SEPARATOR = ":"


def waybill_key(order_id: str, package_id: str) -> str:
    """The idempotency key (the courier's client order number) of one package."""
    return f"{order_id}{KEY_SEPARATOR}{package_id}"


class Party(BaseModel):
    """A sender or a receiver: who, and where."""

    model_config = _FROZEN

    contact: Contact
    address: Address


class PackageItem(BaseModel):
    """One SKU in a package (couriers print it on the label, customs may want it)."""

    model_config = _FROZEN

    sku: NonEmpty
    quantity: Annotated[int, Field(gt=0)]
    title: str = ""


class Package(BaseModel):
    """One parcel of an order. ``id`` is unique within the order (``"1"`` for one parcel)."""

    model_config = _FROZEN

    id: Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_.-]+$")]
    items: tuple[PackageItem, ...] = ()
    weight_grams: Annotated[int, Field(ge=0)] = 0
    declared_value: Annotated[Decimal, Field(ge=0)] = Decimal(0)
    warehouse: str = ""


class WaybillRequest(BaseModel):
    """Ask a courier for one waybill: one package of one order."""

    model_config = _FROZEN

    order_id: NonEmpty
    package: Package
    sender: Party
    receiver: Party
    remark: str = ""
    cash_on_delivery: Annotated[Decimal, Field(ge=0)] = Decimal(0)

    @property
    def key(self) -> str:
        """The idempotency key (our order id + package id)."""
        return waybill_key(self.order_id, self.package.id)


class Waybill(BaseModel):
    """A courier's answer: its code, the tracking number, where the label can be had."""

    model_config = _FROZEN

    courier: NonEmpty
    """The courier's code in the failover chain (``zto``, ``sf``, ...)."""
    tracking_number: Annotated[str, Field(min_length=1, max_length=64)]
    key: NonEmpty
    """The idempotency key it was created under."""
    label_ref: str = ""
    """The courier's print data reference (a label URL or a print-data id); may be empty."""
    sort_code: str = ""
    """The routing code printed big on the label (大头笔), when the courier returns one."""


class TrackingEvent(BaseModel):
    """One scan of a parcel as the courier reports it."""

    model_config = _FROZEN

    at: AwareDatetime
    status: str
    description: str = ""
    location: str = ""


class WaybillState(StrEnum):
    """Where the waybill of one package is."""

    REQUESTED = "requested"
    """Recorded, courier asked (or about to be); a retry asks again with the same key."""
    CREATED = "created"
    """The courier answered; the record holds its tracking number. Final."""


class WaybillRecord(BaseModel):
    """The stored waybill of one package, unique per (order id, package id).

    No personal data: the receiver stays in the order store.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    order_id: NonEmpty
    package_id: NonEmpty
    state: WaybillState = WaybillState.REQUESTED
    attempts: Annotated[int, Field(ge=0)] = 0
    """How many times a handler began asking (the first included)."""
    courier: str | None = None
    tracking_number: str | None = None
    label_ref: str | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime

    @property
    def key(self) -> str:
        """The idempotency key the courier knows this package by."""
        return waybill_key(self.order_id, self.package_id)

    @property
    def waybill(self) -> Waybill | None:
        """The courier's waybill once created, else None."""
        if self.state is not WaybillState.CREATED or not self.courier or not self.tracking_number:
            return None
        return Waybill(
            courier=self.courier,
            tracking_number=self.tracking_number,
            key=self.key,
            label_ref=self.label_ref or "",
        )

    def created(self, waybill: Waybill, now: datetime) -> WaybillRecord:
        """This record with ``waybill`` filled in."""
        return self.model_copy(
            update={
                "state": WaybillState.CREATED,
                "courier": waybill.courier,
                "tracking_number": waybill.tracking_number,
                "label_ref": waybill.label_ref,
                "updated_at": max(now, self.updated_at),
            }
        )
