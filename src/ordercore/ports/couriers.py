"""The courier port: create and cancel waybills, optionally track parcels.

Small on purpose (STYLE.md rule 2): an adapter translates one courier's API. Timeouts
beyond its own HTTP timeout, retries, the breaker, the bulkhead and failover to a backup
courier wrap it from outside (:func:`ordercore.resilience.resilient`,
:class:`ordercore.resilience.Failover`); see docs/couriers.md.

Errors an adapter raises:

* :class:`~ordercore.errors.CourierUnavailable` (transient: timeouts, connection
  errors, 5xx, the courier's "busy" codes): retried, counted by the breaker, failed over;
* :class:`~ordercore.errors.CourierAuthFailed` (permanent: bad app key or signature):
  not retried, counted by the breaker, failed over;
* :class:`~ordercore.errors.CourierRejected` (business: the request itself was refused,
  e.g. an address the courier does not serve): not retried, not counted, not failed over
  by default.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ordercore.domain.couriers import TrackingEvent, Waybill, WaybillRequest

__all__ = ["CourierPort"]


@runtime_checkable
class CourierPort(Protocol):
    """One courier account."""

    code: str
    """The courier's short code (``zto``, ``sf``); it names the courier in a chain."""

    async def create_waybill(self, request: WaybillRequest) -> Waybill:
        """Create the waybill of one package, idempotent per ``request.key``.

        Asking again with the same key returns the waybill made the first time (the
        courier dedups by its client order number) instead of making a second one.
        """
        ...

    async def cancel_waybill(self, key: str) -> bool:
        """Cancel the waybill made under idempotency ``key``; False when there is none."""
        ...

    async def track(self, tracking_number: str) -> list[TrackingEvent]:
        """The parcel's scans, oldest first (NotImplementedError where not offered)."""
        ...
