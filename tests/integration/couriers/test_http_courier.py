"""The ZTO-style HTTP courier adapter over real HTTP against a fake courier on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from fakes.courier_server import APP_KEY, APP_SECRET, FakeCourierServer, digest
from ordercore import registry
from ordercore.errors import (
    CourierAuthFailed,
    CourierRejected,
    CourierUnavailable,
    InvalidInput,
)
from ordercore.resilience import Pipeline, RetryPolicy, resilient
from ordercore.testing.couriers import CourierContract, sample_request
from ordercore_adapters.couriers import HttpCourier, data_digest
from ordercore_adapters.couriers.http_courier import CREATE

pytestmark = pytest.mark.anyio


def config(server: FakeCourierServer, **overrides: object) -> dict[str, object]:
    """An adapter config pointing at the fake courier."""
    return {
        "base_url": server.url,
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "account_id": "test-account",
        "timeout": 0.3,
        **overrides,
    }


@pytest.fixture
def server() -> Iterator[FakeCourierServer]:
    with FakeCourierServer() as fake:
        yield fake


@pytest.fixture
async def courier(server: FakeCourierServer) -> AsyncIterator[HttpCourier]:
    adapter = HttpCourier("zto", config(server))
    yield adapter
    await adapter.aclose()


class TestHttpCourierContract(CourierContract):
    """The adapter passes the courier port's contract suite."""

    @pytest.fixture
    async def courier(self, server: FakeCourierServer) -> AsyncIterator[HttpCourier]:
        adapter = HttpCourier("zto", config(server))
        yield adapter
        await adapter.aclose()


async def test_requests_are_signed_with_the_body_digest(
    courier: HttpCourier, server: FakeCourierServer
) -> None:
    """Every request carries the app key and base64(md5(body + secret)) of its exact bytes."""
    await courier.create_waybill(sample_request())
    api, headers, body = server.requests[-1]
    lowered = {key.lower(): value for key, value in headers.items()}
    assert api == CREATE
    assert lowered["x-appkey"] == APP_KEY
    assert lowered["x-datadigest"] == digest(body) == data_digest(body, APP_SECRET)
    assert json.loads(body)["partnerOrderCode"] == "o-1:1"


async def test_a_wrong_secret_is_refused_as_an_auth_failure(server: FakeCourierServer) -> None:
    """A bad signature raises CourierAuthFailed, creates nothing and never shows the secret."""
    adapter = HttpCourier("zto", config(server, app_secret="not-the-secret-XYZZY"))
    try:
        with pytest.raises(CourierAuthFailed, match="SIGN_ERROR") as caught:
            await adapter.create_waybill(sample_request())
    finally:
        await adapter.aclose()
    assert server.creates == 0
    assert "XYZZY" not in str(caught.value)


async def test_a_repeated_key_answered_as_duplicate_reads_the_first_order_back() -> None:
    """A courier answering ORDER_DUPLICATE: the adapter reads back the first waybill."""
    with FakeCourierServer(duplicates="error") as server:
        adapter = HttpCourier("zto", config(server))
        try:
            first = await adapter.create_waybill(sample_request())
            again = await adapter.create_waybill(sample_request())
        finally:
            await adapter.aclose()
    assert again == first
    assert server.creates == 1
    assert first.label_ref.endswith(f"{first.tracking_number}.pdf")
    assert first.sort_code == "310-A01"


async def test_an_area_not_served_is_a_business_rejection(server: FakeCourierServer) -> None:
    """AREA_NOT_SERVED raises CourierRejected with the courier's code (not retried)."""
    server.unserved = ("浙江省",)
    adapter = HttpCourier("zto", config(server))
    try:
        with pytest.raises(CourierRejected) as caught:
            await adapter.create_waybill(sample_request())
    finally:
        await adapter.aclose()
    assert caught.value.code == "AREA_NOT_SERVED"


async def test_a_busy_courier_is_unavailable(
    courier: HttpCourier, server: FakeCourierServer
) -> None:
    """A SYS_BUSY answer raises CourierUnavailable (transient)."""
    server.fail_next(1, "busy")
    with pytest.raises(CourierUnavailable, match="SYS_BUSY") as caught:
        await courier.create_waybill(sample_request())
    assert caught.value.transient is True


@pytest.mark.parametrize("kind", ["5xx", "malformed"])
async def test_transport_faults_are_unavailable(
    courier: HttpCourier, server: FakeCourierServer, kind: str
) -> None:
    """A 5xx or malformed JSON answer raises CourierUnavailable."""
    server.fail_next(1, kind)
    with pytest.raises(CourierUnavailable):
        await courier.create_waybill(sample_request())


async def test_a_hanging_courier_times_out_at_the_adapter_timeout(
    courier: HttpCourier, server: FakeCourierServer
) -> None:
    """A courier that never answers costs the configured timeout, then CourierUnavailable."""
    server.set_mode("hang")
    started = time.monotonic()
    with pytest.raises(CourierUnavailable, match=r"no answer within 0\.3 s"):
        await courier.create_waybill(sample_request())
    assert time.monotonic() - started < 1.5
    server.recover()


async def test_transient_errors_are_retried_by_the_pipeline_into_one_waybill(
    courier: HttpCourier, server: FakeCourierServer
) -> None:
    """Two 5xx then success through a retrying pipeline: one waybill at the courier."""
    server.fail_next(2, "5xx")
    wrapped = resilient(
        courier,
        Pipeline(service="courier.zto", retry=RetryPolicy(attempts=3, initial=0, max_wait=0)),
    )
    waybill = await wrapped.create_waybill(sample_request())
    assert server.requests_to(CREATE) == 3
    assert [order.bill_code for order in server.live_orders()] == [waybill.tracking_number]


async def test_a_business_rejection_is_not_retried(
    courier: HttpCourier, server: FakeCourierServer
) -> None:
    """A missing receiver field (PARAM_ERROR) is asked once, even through a retrying pipeline."""
    request = sample_request()
    nobody = request.receiver.contact.model_copy(update={"phone": ""})
    bad = request.model_copy(
        update={"receiver": request.receiver.model_copy(update={"contact": nobody})}
    )
    wrapped = resilient(
        courier,
        Pipeline(service="courier.zto", retry=RetryPolicy(attempts=3, initial=0, max_wait=0)),
    )
    with pytest.raises(CourierRejected, match="PARAM_ERROR"):
        await wrapped.create_waybill(bad)
    assert server.requests_to(CREATE) == 1


async def test_tracking_lists_the_scans(courier: HttpCourier) -> None:
    """track() returns the courier's scans with UTC times and the scan site."""
    waybill = await courier.create_waybill(sample_request())
    events = await courier.track(waybill.tracking_number)
    assert [(event.status, event.location) for event in events] == [("收件", "上海")]
    assert events[0].at.utcoffset() is not None


def test_config_problems_are_named_together_and_the_secret_is_not_shown() -> None:
    """A bad config names every problem at once; a non-text secret shows as <secret>."""
    with pytest.raises(InvalidInput) as caught:
        HttpCourier("zto", {"base_url": "ftp://x", "app_secret": 12345, "timeout": 0, "bogus": 1})
    fields = {error.field for error in caught.value.errors}
    assert fields == {"base_url", "app_key", "app_secret", "timeout", "bogus"}
    assert "12345" not in str(caught.value)


def test_the_adapter_is_registered_as_zto() -> None:
    """The ordercore.couriers entry point ``zto`` names HttpCourier."""
    assert registry.load("ordercore.couriers", "zto") is HttpCourier
