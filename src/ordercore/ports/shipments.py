"""The recall port: stop a parcel at the warehouse when its order is intercepted.

When a platform reports a refund or cancellation before the parcel left, the core
cancels the order, releases its stock and writes a ``shipment.recall`` task; the task's
handler asks a :class:`RecallPort` (a WMS adapter: "do not ship this parcel", or put it
back on the shelf) and, where the courier is known, cancels the waybill too.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ordercore.domain.shipments import RecallRequest

__all__ = ["RecallPort"]


@runtime_checkable
class RecallPort(Protocol):
    """A warehouse that can stop a parcel it was handed (拦截 / 取消出库)."""

    async def recall(self, request: RecallRequest) -> bool:
        """Stop the parcel; True when stopped, False when the warehouse has no such parcel.

        Called at least once per request: use ``request.key`` as the idempotency key.
        Raise a transient error (ChannelUnavailable, TimeoutError) to be retried, an
        OrderCoreError for a refusal (the parcel already left): the task is dead at once.
        """
        ...
