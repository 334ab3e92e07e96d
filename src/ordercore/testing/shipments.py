"""Fakes for shipment push-back and recall: a platform that takes pushes, a warehouse
that stops parcels. Both record what they were asked, and can be told to fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ordercore.domain.shipments import RecallRequest
from ordercore.errors import ChannelUnavailable, ShipmentPushRefused

__all__ = ["FakeRecall", "FakeShipmentChannel", "PushCall"]


@dataclass(frozen=True, slots=True)
class PushCall:
    """One push the fake platform accepted."""

    external_order_id: str
    courier: str
    tracking_number: str
    lines: tuple[str, ...]


@dataclass
class FakeShipmentChannel:
    """A channel's push-back side (``ShipmentPushPort``), in memory.

    ``fail_next(n)`` makes the next ``n`` calls fail transiently (ChannelUnavailable);
    ``refuse_next(code)`` makes the next call a refusal (ShipmentPushRefused). A push of
    a tracking number the platform already has for that order is accepted again without
    a second record, as platforms answer "already shipped".
    """

    name: str = "fake-shop"
    accepted: list[PushCall] = field(default_factory=list)
    calls: int = 0
    _failures: int = 0
    _refusal: str | None = None

    def fail_next(self, count: int) -> None:
        """The next ``count`` pushes fail with ChannelUnavailable."""
        self._failures = count

    def refuse_next(self, code: str = "isv.logistics-invalid") -> None:
        """The next push is refused with ``code``."""
        self._refusal = code

    async def push_shipment(
        self, external_order_id: str, courier: str, tracking_number: str, lines: Sequence[str]
    ) -> None:
        """Accept (record) a push, or fail as told."""
        self.calls += 1
        if self._failures > 0:
            self._failures -= 1
            raise ChannelUnavailable(f"fake channel {self.name!r}: push failed (told to)")
        if self._refusal is not None:
            code, self._refusal = self._refusal, None
            raise ShipmentPushRefused(self.name, external_order_id, code, "refused (told to)")
        call = PushCall(external_order_id, courier, tracking_number, tuple(lines))
        if call not in self.accepted:
            self.accepted.append(call)


@dataclass
class FakeRecall:
    """A warehouse (``RecallPort``) that stops every parcel it is asked to, once per key."""

    recalled: dict[str, RecallRequest] = field(default_factory=dict)
    calls: int = 0

    async def recall(self, request: RecallRequest) -> bool:
        """Record the recall (idempotent by ``request.key``)."""
        self.calls += 1
        self.recalled.setdefault(request.key, request)
        return True
