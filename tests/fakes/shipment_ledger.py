"""What a fake platform remembers of shipment push-backs (发货回传), shared by the fakes.

A platform takes one push per (order, package): the same tracking number sent again for
the same lines is answered as success without a second record (platforms treat a
re-send of what they hold as done); another tracking number for lines already shipped
is refused. ``refuse_next`` makes the next push a business refusal; transport failures
come from the gateway's own ``fail_next`` (5xx) before a push is even read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["AcceptedPush", "PushOutcome", "ShipmentLedger"]


@dataclass(frozen=True, slots=True)
class AcceptedPush:
    """One push the platform recorded."""

    order_id: str
    company: str
    tracking_number: str
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """How the platform answers a push: accepted (new or repeated), or refused."""

    accepted: bool
    repeated: bool = False
    refusal: str = ""


@dataclass
class ShipmentLedger:
    """Accepted pushes in arrival order; the orders the platform knows; refusals to make."""

    orders: set[str] = field(default_factory=set)
    """Order ids a push may name (others are refused as unknown)."""
    companies: set[str] = field(default_factory=set)
    """Company codes the platform accepts (empty: any)."""
    accepted: list[AcceptedPush] = field(default_factory=list)
    requests: int = 0
    _refusals: list[str] = field(default_factory=list)

    def refuse_next(self, reason: str = "refused") -> None:
        """The next push is refused with ``reason`` (the fake maps it to its error code)."""
        self._refusals.append(reason)

    def take(
        self, order_id: str, company: str, tracking_number: str, lines: tuple[str, ...]
    ) -> PushOutcome:
        """Apply one push; the caller holds the server's lock."""
        self.requests += 1
        if self._refusals:
            return PushOutcome(False, refusal=self._refusals.pop(0))
        if order_id not in self.orders:
            return PushOutcome(False, refusal="unknown-order")
        if self.companies and company not in self.companies:
            return PushOutcome(False, refusal="unknown-company")
        push = AcceptedPush(order_id, company, tracking_number, lines)
        if push in self.accepted:
            return PushOutcome(True, repeated=True)
        for earlier in self.accepted:
            overlap = not lines or not earlier.lines or set(lines) & set(earlier.lines)
            if earlier.order_id == order_id and overlap:
                return PushOutcome(False, refusal="already-shipped")
        self.accepted.append(push)
        return PushOutcome(True)

    def take_extra(self, order_id: str, company: str, tracking_number: str) -> PushOutcome:
        """Add one more package to a shipped order (platforms that track packages per order)."""
        self.requests += 1
        if self._refusals:
            return PushOutcome(False, refusal=self._refusals.pop(0))
        if not any(push.order_id == order_id for push in self.accepted):
            return PushOutcome(False, refusal="not-shipped")
        if any(
            p.order_id == order_id and p.tracking_number == tracking_number for p in self.accepted
        ):
            return PushOutcome(True, repeated=True)
        self.accepted.append(AcceptedPush(order_id, company, tracking_number, ()))
        return PushOutcome(True)
