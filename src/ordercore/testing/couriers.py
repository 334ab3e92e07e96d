"""A fake courier and the courier port's contract suite.

:class:`FakeCourier` is an in-memory :class:`~ordercore.ports.couriers.CourierPort`:
it dedups by idempotency key like a real courier's client order number, and can fail,
hang or slow down on demand, so waybill and failover tests run without a network.

:class:`CourierContract` is what every courier adapter must do. In your tests::

    class TestMyCourier(CourierContract):
        @pytest.fixture
        async def courier(self):
            with FakeMyCourierApi() as api:            # a local fake of the courier
                adapter = MyCourier("my", {"base_url": api.url, ...})
                yield adapter
                await adapter.aclose()

This module imports pytest: import it from tests only.
"""

from __future__ import annotations

from decimal import Decimal

import anyio
import pytest

from ordercore.domain.couriers import (
    Package,
    PackageItem,
    Party,
    TrackingEvent,
    Waybill,
    WaybillRequest,
)
from ordercore.domain.orders import Address, Contact
from ordercore.ports.couriers import CourierPort

__all__ = ["CourierContract", "FakeCourier", "sample_request"]


def sample_request(order_id: str = "o-1", package_id: str = "1") -> WaybillRequest:
    """A complete waybill request (made-up people in Shanghai and Hangzhou)."""
    return WaybillRequest(
        order_id=order_id,
        package=Package(
            id=package_id,
            items=(PackageItem(sku="TEA-01", quantity=2, title="Longjing tea"),),
            weight_grams=800,
            declared_value=Decimal("128.00"),
        ),
        sender=Party(
            contact=Contact(name="仓库甲", phone="13800000001"),
            address=Address(
                province="上海市", city="上海市", district="青浦区", detail="华新镇 88 号"
            ),
        ),
        receiver=Party(
            contact=Contact(name="李四", phone="13900000002"),
            address=Address(
                province="浙江省", city="杭州市", district="西湖区", detail="文三路 1 号"
            ),
        ),
    )


class FakeCourier:
    """An in-memory courier. ``fail_next`` queues errors; ``hang`` makes calls wait.

    ``waybills`` holds one live waybill per key; ``calls`` counts create calls.
    """

    def __init__(self, code: str = "fake", *, prefix: str = "FK") -> None:
        self.code = code
        self.prefix = prefix
        self.waybills: dict[str, Waybill] = {}
        self.cancelled: dict[str, Waybill] = {}
        self.calls = 0
        self.delay = 0.0
        self.hang = False
        self._failures: list[BaseException] = []
        self._counter = 0
        self._released = anyio.Event()

    def fail_next(self, *errors: BaseException) -> None:
        """The next calls raise these errors, in order."""
        self._failures.extend(errors)

    def recover(self) -> None:
        """Stop hanging and slowing down; calls hanging now go on (and succeed)."""
        self.hang = False
        self.delay = 0.0
        self._released.set()
        self._released = anyio.Event()

    async def _enter(self) -> None:
        self.calls += 1
        if self.hang:
            await self._released.wait()
        if self.delay:
            await anyio.sleep(self.delay)
        if self._failures:
            raise self._failures.pop(0)

    async def create_waybill(self, request: WaybillRequest) -> Waybill:
        """The waybill of ``request.key``: the existing one, or a new one."""
        await self._enter()
        existing = self.waybills.get(request.key)
        if existing is not None:
            return existing
        self._counter += 1
        number = f"{self.prefix}{self._counter:08d}"
        waybill = Waybill(
            courier=self.code,
            tracking_number=number,
            key=request.key,
            label_ref=f"memory://{self.code}/{number}",
        )
        self.waybills[request.key] = waybill
        return waybill

    async def cancel_waybill(self, key: str) -> bool:
        """Cancel the waybill of ``key``; False when there is none."""
        await self._enter()
        waybill = self.waybills.pop(key, None)
        if waybill is None:
            return False
        self.cancelled[key] = waybill
        return True

    async def track(self, tracking_number: str) -> list[TrackingEvent]:
        """No scans: the fake parcel never moves."""
        await self._enter()
        return []


class CourierContract:
    """What every courier adapter does; provide a ``courier`` fixture (see module docs)."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def courier(self) -> CourierPort:
        raise NotImplementedError("provide a courier fixture yielding the adapter under test")

    @pytest.mark.anyio
    async def test_create_returns_a_waybill_of_this_courier(self, courier: CourierPort) -> None:
        """A waybill names the courier's code, a tracking number and the request's key."""
        waybill = await courier.create_waybill(sample_request())
        assert waybill.courier == courier.code
        assert waybill.tracking_number
        assert waybill.key == "o-1:1"

    @pytest.mark.anyio
    async def test_the_same_key_gives_the_same_waybill(self, courier: CourierPort) -> None:
        """Asking again with the same key returns the first waybill, not a second one."""
        first = await courier.create_waybill(sample_request())
        again = await courier.create_waybill(sample_request())
        assert again.tracking_number == first.tracking_number

    @pytest.mark.anyio
    async def test_each_package_gets_its_own_waybill(self, courier: CourierPort) -> None:
        """Two packages of one order get two different tracking numbers."""
        one = await courier.create_waybill(sample_request(package_id="1"))
        two = await courier.create_waybill(sample_request(package_id="2"))
        assert one.tracking_number != two.tracking_number

    @pytest.mark.anyio
    async def test_cancel_is_true_once_then_false(self, courier: CourierPort) -> None:
        """Cancelling a waybill answers True; cancelling it again, or an unknown key, False."""
        await courier.create_waybill(sample_request())
        assert await courier.cancel_waybill("o-1:1")
        assert not await courier.cancel_waybill("o-1:1")
        assert not await courier.cancel_waybill("never:1")

    @pytest.mark.anyio
    async def test_the_port_is_implemented(self, courier: CourierPort) -> None:
        """The adapter satisfies the CourierPort protocol."""
        assert isinstance(courier, CourierPort)
        assert courier.code
