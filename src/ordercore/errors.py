"""The error vocabulary of ordercore.

Every failure a caller can cause raises a subclass of :class:`OrderCoreError`
whose message names the field, the value and the rule that was broken. Storage
adapters translate their driver's exceptions into this tree at the boundary, so
callers never catch a SQLAlchemy or httpx type.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "BuyerLimitExceeded",
    "ChannelAuthExpired",
    "ChannelUnavailable",
    "ConcurrencyConflict",
    "DuplicateOrder",
    "FieldError",
    "IllegalTransition",
    "InsufficientStock",
    "InvalidInput",
    "InvalidOrder",
    "InvalidReservation",
    "OrderCoreError",
    "OrderNotFound",
    "ReservationNotFound",
    "ReservationStateConflict",
    "SaleCapReached",
    "SignatureInvalid",
    "StockAdjustmentConflict",
    "StorageError",
    "StorageUnavailable",
    "UnknownAdapter",
    "UnknownSku",
]


class OrderCoreError(Exception):
    """Base class of every error ordercore raises on purpose."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One rule broken by one field of an input: ``lines[2].quantity: must be > 0 (got 0)``."""

    field: str
    message: str
    value: object = None

    def __str__(self) -> str:
        return f"{self.field}: {self.message} (got {self.value!r})"


class InvalidInput(OrderCoreError, ValueError):
    """An input broke one or more validation rules; ``errors`` lists each of them."""

    def __init__(self, subject: str, errors: Iterable[FieldError]) -> None:
        self.subject = subject
        self.errors: tuple[FieldError, ...] = tuple(errors)
        details = "; ".join(str(error) for error in self.errors)
        super().__init__(f"invalid {subject}: {details}")


class InvalidOrder(InvalidInput):
    """An order failed validation."""

    def __init__(self, errors: Iterable[FieldError], subject: str = "order") -> None:
        super().__init__(subject, errors)


class InvalidReservation(InvalidInput):
    """A reservation request failed validation (empty, non-positive quantity, ...)."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        super().__init__("reservation request", errors)


class UnknownSku(OrderCoreError, LookupError):
    """No stock level exists for this SKU in this warehouse."""

    def __init__(self, sku: str, warehouse: str) -> None:
        self.sku = sku
        self.warehouse = warehouse
        super().__init__(f"unknown SKU {sku!r} in warehouse {warehouse!r}: receive stock first")


class InsufficientStock(OrderCoreError):
    """The sellable quantity cannot cover the request; nothing was reserved."""

    def __init__(self, sku: str, warehouse: str, requested: int, available: int) -> None:
        self.sku = sku
        self.warehouse = warehouse
        self.requested = requested
        self.available = available
        super().__init__(
            f"insufficient stock for SKU {sku!r} in warehouse {warehouse!r}: "
            f"requested {requested}, sellable {available}"
        )


class SaleCapReached(InsufficientStock):
    """The flash sale of this SKU has sold its cap; nothing was reserved."""

    def __init__(self, sku: str, requested: int, remaining: int) -> None:
        super().__init__(sku, "*", requested, remaining)
        self.args = (
            f"flash-sale cap reached for SKU {sku!r}: requested {requested}, "
            f"remaining under the cap {remaining}",
        )


class BuyerLimitExceeded(OrderCoreError):
    """The buyer would pass the per-buyer limit of a flash sale; nothing was reserved."""

    def __init__(self, sku: str, buyer_id: str, requested: int, limit: int) -> None:
        self.sku = sku
        self.buyer_id = buyer_id
        self.requested = requested
        self.limit = limit
        super().__init__(
            f"per-buyer limit for SKU {sku!r} is {limit}: buyer {buyer_id!r} asked for "
            f"{requested} more than that allows"
        )


class OrderNotFound(OrderCoreError, LookupError):
    """No order has this id."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        super().__init__(f"unknown order {order_id!r}")


class ReservationNotFound(OrderCoreError, LookupError):
    """No reservation exists for this order."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        super().__init__(f"no reservation for order {order_id!r}")


class ReservationStateConflict(OrderCoreError):
    """The reservation is in a state that forbids the requested change."""

    def __init__(self, order_id: str, status: str, wanted: str) -> None:
        self.order_id = order_id
        self.status = status
        self.wanted = wanted
        super().__init__(
            f"cannot {wanted} the reservation of order {order_id!r}: it is already {status}"
        )


class StockAdjustmentConflict(OrderCoreError):
    """A stock change would leave on_hand below what is reserved or below zero."""

    def __init__(self, sku: str, warehouse: str, message: str) -> None:
        self.sku = sku
        self.warehouse = warehouse
        super().__init__(f"stock of SKU {sku!r} in warehouse {warehouse!r}: {message}")


class IllegalTransition(OrderCoreError):
    """An order status change that the state machine does not allow."""

    def __init__(self, order_id: str, current: str, target: str, allowed: Sequence[str]) -> None:
        self.order_id = order_id
        self.current = current
        self.target = target
        self.allowed = tuple(allowed)
        allowed_text = ", ".join(self.allowed) or "none (final state)"
        super().__init__(
            f"order {order_id!r} cannot go from {current} to {target}; allowed: {allowed_text}"
        )


class DuplicateOrder(OrderCoreError):
    """An order with this id, or this channel and external id, is already stored."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"order {key} is already stored")


class ConcurrencyConflict(OrderCoreError):
    """Another writer changed the record since it was read (optimistic version check)."""

    def __init__(self, what: str, expected_version: int) -> None:
        self.what = what
        self.expected_version = expected_version
        super().__init__(f"{what} was changed concurrently (expected version {expected_version})")


class UnknownAdapter(OrderCoreError, LookupError):
    """No adapter is registered under this name or URL scheme."""

    def __init__(self, group: str, name: str, known: Iterable[str]) -> None:
        self.group = group
        self.name = name
        self.known = tuple(sorted(known))
        super().__init__(
            f"no {group} adapter named {name!r}; known: {', '.join(self.known) or 'none'}"
        )


class StorageError(OrderCoreError):
    """The storage failed in a way the caller did not cause."""


class StorageUnavailable(StorageError):
    """The storage could not be reached (a transient condition worth retrying)."""


class SignatureInvalid(OrderCoreError):
    """A webhook or callback signature did not verify."""


class ChannelAuthExpired(OrderCoreError):
    """A channel's credentials expired; the channel pauses until re-authorized."""


class ChannelUnavailable(OrderCoreError):
    """A channel's platform could not be reached or answered with a transient error."""
