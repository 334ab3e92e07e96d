"""Helpers of the waybill tests: couriers that lose answers, a chain of fakes, a sender."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from ordercore.core import OrderCore
from ordercore.domain.couriers import Party, Waybill, WaybillRequest
from ordercore.domain.orders import Address, Contact
from ordercore.errors import CourierUnavailable
from ordercore.resilience import ServicePolicy
from ordercore.services.waybills import WaybillService
from ordercore.testing.couriers import FakeCourier
from ordercore_adapters.couriers import CourierChain, courier_chain

__all__ = ["POLICY", "SENDERS", "LosingCourier", "live_waybills", "waybill_service"]

POLICY = ServicePolicy(
    timeout=timedelta(seconds=2),
    attempts=1,
    fail_max=3,
    reset_timeout=timedelta(minutes=5),
    slow_call_threshold=None,
)
"""No retry on the same courier: a lost answer fails over at once."""

SENDERS = {
    "": Party(
        contact=Contact(name="发货仓", phone="02100000000"),
        address=Address(province="上海市", city="上海市", district="青浦区", detail="1 号库"),
    )
}


class LosingCourier(FakeCourier):
    """A fake courier whose next ``lose`` creates succeed but whose answers get lost.

    The waybill exists at the courier, the caller sees a transient error: a timeout
    after the courier did the work.
    """

    def __init__(self, code: str, *, prefix: str, lose: int = 0) -> None:
        super().__init__(code, prefix=prefix)
        self.lose = lose

    async def create_waybill(self, request: WaybillRequest) -> Waybill:
        waybill = await super().create_waybill(request)
        if self.lose > 0:
            self.lose -= 1
            raise CourierUnavailable(self.code, "create_waybill", "answer lost (read timeout)")
        return waybill


def waybill_service(
    core: OrderCore, couriers: Sequence[FakeCourier]
) -> tuple[WaybillService, CourierChain]:
    """A WaybillService over ``couriers`` (first = primary) behind the courier pipelines."""
    chain = courier_chain(list(couriers), policy=POLICY)
    return WaybillService(core.storage, core.clock, chain.failover, SENDERS), chain


def live_waybills(couriers: Sequence[FakeCourier]) -> dict[str, list[str]]:
    """Idempotency key -> the courier codes holding a live waybill for it."""
    found: dict[str, list[str]] = {}
    for courier in couriers:
        for key in courier.waybills:
            found.setdefault(key, []).append(courier.code)
    return found
