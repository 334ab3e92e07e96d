"""The error vocabulary of ordercore.

Every failure a caller can cause raises a subclass of :class:`OrderCoreError`
whose message names the field, the value and the rule that was broken. Storage
adapters translate their driver's exceptions into this tree at the boundary, so
callers never catch a SQLAlchemy or httpx type.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "AfterSaleNotFound",
    "BulkheadFull",
    "BuyerLimitExceeded",
    "CallTimedOut",
    "ChannelAuthExpired",
    "ChannelUnavailable",
    "CircuitOpen",
    "ConcurrencyConflict",
    "CourierAuthFailed",
    "CourierRejected",
    "CourierUnavailable",
    "DuplicateOrder",
    "EventPublishFailed",
    "FieldError",
    "IllegalTransition",
    "InspectionConflict",
    "InsufficientStock",
    "InvalidInput",
    "InvalidOrder",
    "InvalidOutboxTask",
    "InvalidReservation",
    "NoFallbackLeft",
    "OrderCoreError",
    "OrderIntercepted",
    "OrderNotFound",
    "OrderNotOnHold",
    "OrderOnHold",
    "OutboxTaskNotFound",
    "RateLimited",
    "ReservationNotFound",
    "ReservationStateConflict",
    "SaleCapReached",
    "ShipmentNotFound",
    "ShipmentPushRefused",
    "ShipmentStateConflict",
    "SignatureInvalid",
    "StockAdjustmentConflict",
    "StorageError",
    "StorageUnavailable",
    "TicketNotFound",
    "TicketStateConflict",
    "TooLateToIntercept",
    "UnknownAdapter",
    "UnknownSku",
    "UnknownTaskKind",
    "UnknownWarehouse",
    "UnresolvedAddress",
    "Unroutable",
    "WarehouseFeedError",
    "WaybillDeferred",
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


class CircuitOpen(OrderCoreError):
    """A service's circuit breaker is open (or its half-open trials are taken): not called."""

    def __init__(self, service: str, state: str, retry_at: datetime | None = None) -> None:
        self.service = service
        self.state = state
        self.retry_at = retry_at
        when = f"until {retry_at.isoformat()}" if retry_at else "until a trial call succeeds"
        super().__init__(
            f"service {service!r}: circuit breaker is {state}, calls are rejected {when}"
        )


class CallTimedOut(OrderCoreError, TimeoutError):
    """A call to an outside service took longer than its per-call timeout (transient)."""

    def __init__(self, service: str, operation: str, seconds: float) -> None:
        self.service = service
        self.operation = operation
        self.seconds = seconds
        super().__init__(f"service {service!r}: {operation} exceeded its timeout of {seconds:g}s")


class RateLimited(OrderCoreError):
    """A call would wait longer than allowed for a rate-limit token; it was not made."""

    def __init__(self, service: str, key: str, wait: float, max_wait: float) -> None:
        self.service = service
        self.key = key
        self.wait = wait
        self.max_wait = max_wait
        self.retry_after = wait
        super().__init__(
            f"service {service!r}: rate limit for key {key!r} needs a wait of {wait:.3g}s, "
            f"more than max_wait {max_wait:g}s"
        )


class BulkheadFull(OrderCoreError):
    """A service's concurrency limit and its wait queue are full; the call was not made."""

    def __init__(self, service: str, max_concurrent: int, max_waiting: int) -> None:
        self.service = service
        self.max_concurrent = max_concurrent
        self.max_waiting = max_waiting
        super().__init__(
            f"service {service!r}: bulkhead full ({max_concurrent} calls in flight, "
            f"{max_waiting} waiting): call rejected"
        )


class NoFallbackLeft(OrderCoreError):
    """Every implementation in a failover chain failed or was skipped; ``errors`` has each."""

    def __init__(self, service: str, errors: Sequence[tuple[str, BaseException]]) -> None:
        self.service = service
        self.errors = tuple(errors)
        tried = "; ".join(f"{name}: {type(error).__name__}: {error}" for name, error in errors)
        super().__init__(f"service {service!r}: every implementation failed ({tried})")


class TicketNotFound(OrderCoreError, LookupError):
    """No exception ticket has this id."""

    def __init__(self, ticket_id: str) -> None:
        self.ticket_id = ticket_id
        super().__init__(f"unknown ticket {ticket_id!r}")


class TicketStateConflict(OrderCoreError):
    """A ticket change its workflow does not allow in the ticket's current status."""

    def __init__(self, ticket_id: str, status: str, wanted: str, allowed: Sequence[str]) -> None:
        self.ticket_id = ticket_id
        self.status = status
        self.wanted = wanted
        self.allowed = tuple(allowed)
        allowed_text = ", ".join(self.allowed) or "none"
        super().__init__(
            f"ticket {ticket_id!r} is {status}: cannot {wanted}; allowed status changes: "
            f"{allowed_text}"
        )


class InvalidOutboxTask(InvalidInput):
    """An outbox task failed validation (kind, key, payload)."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        super().__init__("outbox task", errors)


class OutboxTaskNotFound(OrderCoreError, LookupError):
    """No outbox task has this id."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"unknown outbox task {task_id!r}")


class UnknownTaskKind(OrderCoreError, LookupError):
    """No handler is registered for an outbox task's kind."""

    def __init__(self, kind: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.known = tuple(sorted(known))
        super().__init__(
            f"no handler for task kind {kind!r}; registered: {', '.join(self.known) or 'none'}"
        )


class EventPublishFailed(OrderCoreError):
    """The message broker did not accept (acknowledge) an event; worth retrying."""

    transient = True
    """Retried by the outbox (see ordercore.resilience.classify)."""

    def __init__(self, event_id: str | None, reason: str) -> None:
        self.event_id = event_id
        self.reason = reason
        what = "events were" if event_id is None else f"event {event_id!r} was"
        super().__init__(f"{what} not published: {reason}")


class OrderOnHold(OrderCoreError):
    """The order is on hold (an exception rule held it): it cannot ship until released."""

    def __init__(self, order_id: str, reason: str = "") -> None:
        self.order_id = order_id
        self.reason = reason
        why = f" ({reason})" if reason else ""
        super().__init__(f"order {order_id!r} is on_hold{why}: release the hold before shipping it")


class OrderNotOnHold(OrderCoreError):
    """A hold was to be released on an order that is not on hold."""

    def __init__(self, order_id: str, status: str) -> None:
        self.order_id = order_id
        self.status = status
        super().__init__(
            f"order {order_id!r} is {status}, not on_hold: there is no hold to release"
        )


class CourierUnavailable(OrderCoreError):
    """A courier could not be reached, timed out or answered with a transient error."""

    transient = True
    """Retried, counted by a breaker and failed over (see ordercore.resilience.classify)."""

    def __init__(
        self, courier: str, operation: str, reason: str, retry_after: float | None = None
    ) -> None:
        self.courier = courier
        self.operation = operation
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(f"courier {courier!r}: {operation} failed: {reason}")


class CourierAuthFailed(OrderCoreError):
    """A courier refused our credentials or signature: fix the account config."""

    transient = False
    """Not retried; counted by a breaker and failed over."""

    def __init__(self, courier: str, operation: str, reason: str) -> None:
        self.courier = courier
        self.operation = operation
        self.reason = reason
        super().__init__(
            f"courier {courier!r}: {operation} refused the credentials ({reason}); "
            "check app_key and app_secret"
        )


class CourierRejected(OrderCoreError):
    """A courier refused the request itself (``code``: the courier's error code)."""

    def __init__(self, courier: str, operation: str, code: str, reason: str) -> None:
        self.courier = courier
        self.operation = operation
        self.code = code
        self.reason = reason
        super().__init__(f"courier {courier!r}: {operation} rejected with code {code!r}: {reason}")


class WaybillDeferred(OrderCoreError):
    """No courier in the chain can take a waybill now (every breaker is open); try later."""

    transient = True

    def __init__(self, order_id: str, reason: str, retry_after: float | None = None) -> None:
        self.order_id = order_id
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(f"waybill of order {order_id!r} deferred: {reason}")


class UnresolvedAddress(OrderCoreError, LookupError):
    """An address could not be placed on the offline region map (``value`` is masked)."""

    def __init__(self, field: str, value: str, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"cannot place {field} {value!r} offline: {reason}")


class UnknownWarehouse(OrderCoreError, LookupError):
    """No warehouse is registered under this code."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"unknown warehouse {code!r}: register it with core.warehouses.add")


class Unroutable(OrderCoreError):
    """No set of active warehouses holds enough sellable stock for a line of an order."""

    def __init__(self, order_id: str, sku: str, requested: int, available: int) -> None:
        self.order_id = order_id
        self.sku = sku
        self.requested = requested
        self.available = available
        super().__init__(
            f"order {order_id!r} cannot be routed: SKU {sku!r} needs {requested}, "
            f"the active warehouses can sell {available} in all"
        )


class WarehouseFeedError(OrderCoreError):
    """A WMS stock feed failed or answered something unusable (``transient``: retry later)."""

    def __init__(self, warehouse: str, operation: str, reason: str, *, transient: bool) -> None:
        self.warehouse = warehouse
        self.operation = operation
        self.reason = reason
        self.transient = transient
        super().__init__(f"WMS {warehouse!r}: {operation} failed: {reason}")


class ShipmentNotFound(OrderCoreError, LookupError):
    """No shipment is stored under this id."""

    def __init__(self, shipment_id: str) -> None:
        self.shipment_id = shipment_id
        super().__init__(f"no shipment {shipment_id!r}")


class ShipmentStateConflict(OrderCoreError):
    """A shipment cannot do this in its current state (``shipped`` cannot be picked...)."""

    def __init__(self, shipment_id: str, state: str, action: str) -> None:
        self.shipment_id = shipment_id
        self.state = state
        self.action = action
        super().__init__(f"shipment {shipment_id!r} is {state}: cannot {action} it")


class OrderIntercepted(OrderCoreError):
    """The order was cancelled or refunded on its platform before it shipped: it may not ship."""

    def __init__(self, order_id: str, reason: str) -> None:
        self.order_id = order_id
        self.reason = reason
        super().__init__(
            f"order {order_id!r} was intercepted ({reason or 'cancelled'}): it may not ship"
        )


class TooLateToIntercept(OrderCoreError):
    """The order already shipped: a refund now is an after-sale (a return), not an interception."""

    def __init__(self, order_id: str, status: str) -> None:
        self.order_id = order_id
        self.status = status
        super().__init__(
            f"order {order_id!r} is {status}: too late to intercept; handle it as a return"
        )


class ShipmentPushRefused(OrderCoreError):
    """The platform refused a shipment push-back for a reason a retry will not fix."""

    def __init__(self, channel: str, external_order_id: str, code: str, message: str) -> None:
        self.channel = channel
        self.external_order_id = external_order_id
        self.code = code
        super().__init__(
            f"channel {channel!r} refused the shipment of order {external_order_id!r}: "
            f"{code}: {message}"
        )


class AfterSaleNotFound(OrderCoreError, LookupError):
    """No after-sale request has this id."""

    def __init__(self, after_sale_id: str) -> None:
        self.after_sale_id = after_sale_id
        super().__init__(f"unknown after-sale {after_sale_id!r}")


class InspectionConflict(OrderCoreError):
    """The after-sale was already inspected with other grades; nothing was changed."""

    def __init__(self, after_sale_id: str, inspected_by: str) -> None:
        self.after_sale_id = after_sale_id
        self.inspected_by = inspected_by
        super().__init__(
            f"after-sale {after_sale_id!r} was already inspected by {inspected_by!r} with "
            f"other grades: an inspection is recorded once (adjust stock to correct it)"
        )
