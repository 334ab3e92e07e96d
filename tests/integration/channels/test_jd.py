"""The JD (JOS) adapter over real HTTP against a fake JOS gateway on 127.0.0.1."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import stamina
from _shared import RefreshingChannelSuite, TokenChannelSuite

from fakes.jos_server import (
    ACCESS_TOKEN,
    APP_KEY,
    APP_SECRET,
    REFRESH_TOKEN,
    FakeJosServer,
    jd_time,
)
from ordercore.domain.channels import RawRecord, TimeWindow
from ordercore.domain.orders import OrderStatus
from ordercore.errors import InvalidInput, InvalidOrder
from ordercore.ports.clock import ManualClock
from ordercore.testing.channel_contract import ChannelContract, ChannelUnderTest, fetch_window
from ordercore_adapters.channels.jd import (
    JD_STATUSES,
    JdChannel,
    JdPushNotSupported,
    JdRateLimited,
    JosApiError,
    map_jd_order,
    param_json,
)
from ordercore_adapters.channels.taobao import sign_top, signing_string

ATTEMPTS = 3
SECRETS = (APP_SECRET, ACCESS_TOKEN)


@pytest.fixture(autouse=True)
def _retries_without_waiting() -> Iterator[None]:
    """stamina retries up to ATTEMPTS times, without sleeping between them."""
    with stamina.set_testing(True, attempts=ATTEMPTS, cap=True):
        yield


def config(server: FakeJosServer, **overrides: object) -> dict[str, object]:
    """A channel config pointing at the fake gateway."""
    base: dict[str, object] = {
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "access_token": ACCESS_TOKEN,
        "access_token_expires_at": (server.now() + timedelta(days=30)).isoformat(),
        "gateway_url": server.url,
        "page_size": 20,
        "requests_per_second": 1000,
        "timeout": 2.0,
        "rate_limit_wait": 0.2,
    }
    base.update(overrides)
    return base


@pytest.fixture
def server() -> Iterator[FakeJosServer]:
    with FakeJosServer() as fake:
        yield fake


@pytest.fixture
async def channel(server: FakeJosServer) -> AsyncIterator[JdChannel]:
    async with JdChannel("jd-flagship", config(server)) as opened:
        yield opened


def past_window(server: FakeJosServer, length: timedelta = timedelta(hours=1)) -> TimeWindow:
    """A whole-second window ending ten minutes behind the fake's clock."""
    end = server.now().replace(microsecond=0) - timedelta(minutes=10)
    return TimeWindow(start=end - length, end=end)


class TestJdContract(ChannelContract):
    """JdChannel against the ChannelPort contract suite, over HTTP."""

    @pytest.fixture
    async def channel_under_test(self) -> AsyncIterator[ChannelUnderTest]:
        with FakeJosServer() as fake:
            async with JdChannel("jd-flagship", config(fake)) as opened:
                yield opened, fake


# -- signing -------------------------------------------------------------------------------

JOS_EXAMPLE = {
    "method": "jingdong.pop.order.search",
    "app_key": "JDFAKEAPPKEY0001",
    "access_token": "token-1",
    "timestamp": "2026-11-11 08:00:00",
    "format": "json",
    "v": "2.0",
    "sign_method": "md5",
    "360buy_param_json": '{"page":"1","page_size":"100"}',
}


def test_the_signing_string_is_the_sorted_concatenation_with_the_json_param() -> None:
    """Worked example: 360buy_param_json sorts first; every name is followed by its value."""
    assert signing_string(JOS_EXAMPLE) == (
        '360buy_param_json{"page":"1","page_size":"100"}access_tokentoken-1'
        "app_keyJDFAKEAPPKEY0001formatjsonmethodjingdong.pop.order.search"
        "sign_methodmd5timestamp2026-11-11 08:00:00v2.0"
    )
    assert sign_top(JOS_EXAMPLE, "secret", "md5") == "DFFA8B3C2FBB517669CFBEAA44754A66"


def test_the_signature_matches_the_pyjos_sdk() -> None:
    """Our md5 signature equals pyjos's (ASCII only: pyjos encodes latin-1 on Python 3)."""
    sdk = pytest.importorskip("pyjos.client")
    client = sdk.JdClient()
    client.app_secret = APP_SECRET
    params = {
        **JOS_EXAMPLE,
        "360buy_param_json": param_json({"order_state": "FINISHED_L", "page": "2"}),
    }
    assert sign_top(params, APP_SECRET, "md5") == client.generate_sign(params)


def test_business_params_travel_as_one_compact_sorted_json_string() -> None:
    """param_json: sorted keys, no spaces, Chinese kept as UTF-8 (not \\u escapes)."""
    assert param_json({"page_size": "20", "order_state": "已完成"}) == (
        '{"order_state":"已完成","page_size":"20"}'
    )


@pytest.mark.anyio
async def test_a_request_carries_the_system_params_and_the_json_param(
    server: FakeJosServer, channel: JdChannel
) -> None:
    """The gateway sees app_key, access_token, Shanghai timestamp, v=2.0 and the JSON."""
    await channel.fetch_orders(past_window(server), None)
    (sent,) = server.requests
    assert set(sent) == {
        "method",
        "app_key",
        "access_token",
        "timestamp",
        "format",
        "v",
        "sign_method",
        "360buy_param_json",
        "sign",
    }
    assert json.loads(sent["360buy_param_json"])["order_state"].split(",") == list(JD_STATUSES)
    stamp = datetime.strptime(sent["timestamp"], "%Y-%m-%d %H:%M:%S")
    shanghai_now = (server.now() + timedelta(hours=8)).replace(tzinfo=None)
    assert abs(stamp - shanghai_now) < timedelta(seconds=5)


@pytest.mark.anyio
async def test_a_wrong_app_secret_is_refused_and_not_retried(server: FakeJosServer) -> None:
    """A bad signature (code 14) raises JosApiError after one request."""
    async with JdChannel("shop", config(server, app_secret="not-the-secret")) as channel:
        with pytest.raises(JosApiError, match="14") as caught:
            await channel.fetch_orders(past_window(server), None)
    assert caught.value.code == "14"
    assert len(server.requests) == 1


# -- windows -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_half_open_window_is_sent_as_inclusive_shanghai_seconds(
    server: FakeJosServer, channel: JdChannel
) -> None:
    """[start, end) UTC asks JOS for start .. end - 1 s, Asia/Shanghai wall clock."""
    window = past_window(server)
    await channel.fetch_orders(window, None)
    sent = server.search_params[-1]
    assert sent["start_date"] == jd_time(window.start)
    assert sent["end_date"] == jd_time(window.end - timedelta(seconds=1))
    assert jd_time(datetime(2026, 11, 11, 10, 0, tzinfo=UTC)) == "2026-11-11 18:00:00"


@pytest.mark.anyio
async def test_sub_second_window_edges_lose_and_double_no_second(
    server: FakeJosServer, channel: JdChannel
) -> None:
    """Windows cut at .5 s: each whole-second order lands in exactly one of them."""
    base = past_window(server).start
    for offset in range(1, 4):
        server.add_order(f"7000{offset}", base + timedelta(seconds=offset))
    half = timedelta(milliseconds=500)
    cuts = [base + half + timedelta(seconds=n) for n in range(4)]
    seen: list[str] = []
    for start, end in itertools.pairwise(cuts):
        pages = await fetch_window(channel, TimeWindow(start=start, end=end))
        seen.extend(record.external_id for page in pages for record in page.records)
    assert seen == ["70001", "70002", "70003"]
    before = len(server.requests)
    page = await channel.fetch_orders(TimeWindow(start=base + half, end=base + half * 1.5), None)
    assert (page.records, page.total, len(server.requests)) == ((), 0, before)


@pytest.mark.anyio
async def test_a_window_longer_than_a_day_is_refused_and_not_retried(
    server: FakeJosServer, channel: JdChannel
) -> None:
    """A two-day window: JOS's apiResult refusal becomes JosApiError, one request."""
    assert channel.limits.max_window == timedelta(days=1)
    with pytest.raises(JosApiError, match="1天"):
        await channel.fetch_orders(past_window(server, timedelta(days=2)), None)
    assert len(server.requests) == 1


# -- forward paging ------------------------------------------------------------------------


def fill(server: FakeJosServer, window: TimeWindow, count: int) -> list[str]:
    """``count`` orders a minute apart inside ``window``; their ids."""
    ids = [str(8_000_000 + index) for index in range(count)]
    for index, order_id in enumerate(ids):
        server.add_order(order_id, window.start + timedelta(minutes=1 + index))
    return ids


@pytest.mark.anyio
async def test_pages_are_read_forward_with_the_total_on_each(
    server: FakeJosServer, channel: JdChannel
) -> None:
    """45 orders in pages of 20: pages 1, 2, 3, each with orderTotal 45."""
    window = past_window(server)
    ids = fill(server, window, 45)
    pages = await fetch_window(channel, window)
    assert server.search_pages == [1, 2, 3]
    assert [page.total for page in pages] == [45, 45, 45]
    assert [page.next_page for page in pages] == ["2", "3", None]
    assert [r.external_id for page in pages for r in page.records] == ids


@pytest.mark.anyio
async def test_an_order_modified_while_paging_shows_in_the_totals(
    server: FakeJosServer, channel: JdChannel
) -> None:
    """An order leaving the window after page 1: a row is skipped, and the totals differ."""
    window = past_window(server)
    ids = fill(server, window, 45)
    server.modify_during_paging(ids[0], after_pages=1)
    pages = await fetch_window(channel, window)
    fetched = {r.external_id for page in pages for r in page.records}
    assert len(fetched) == 44  # one row slid onto page 1, already read
    assert [page.total for page in pages] == [45, 44, 44]  # so the intake re-scans


# -- rate limits and transient failures ----------------------------------------------------


class TestJdGateway(TokenChannelSuite):
    """The shared gateway behaviours (``_shared``), for JdChannel."""

    rate_limited = JdRateLimited
    rate_limit_order_id = "5000001"
    transient_order_id = "6000001"

    api_error = JosApiError
    refused_length = timedelta(days=3)
    secrets = SECRETS
    echoed = "请重新授权访问"

    def echoing_server(self) -> FakeJosServer:
        return FakeJosServer(echo_secrets_in_errors=True)

    def bad_secret_config(self) -> None:
        JdChannel("shop", {"app_secret": 12345, "access_token": [ACCESS_TOKEN]})

    sync_sku = "TEE-2026-BLK-M"
    sync_step = timedelta(minutes=5)

    def server_on(self, clock: ManualClock) -> FakeJosServer:
        return FakeJosServer(clock=clock.now)

    def flagship(self, server: Any, clock: ManualClock) -> JdChannel:
        return JdChannel("jd-flagship", config(server), clock=clock)

    def fill(self, server: Any, window: TimeWindow, count: int) -> list[str]:
        return fill(server, window, count)

    def changed_at(self, server: Any, order_id: str) -> datetime:
        changed: datetime = server.modified[order_id]
        return changed

    def open_channel(self, server: Any, **overrides: object) -> JdChannel:
        return JdChannel("shop", config(server, **overrides))

    def window(self, server: Any, length: timedelta | None = None) -> TimeWindow:
        return past_window(server) if length is None else past_window(server, length)


class TestJdRefresh(RefreshingChannelSuite):
    """Token refresh through JD's OAuth host (``_shared``), for JdChannel."""

    def open_refreshing(self, server: Any, **overrides: object) -> JdChannel:
        settings = {"refresh_token": REFRESH_TOKEN, "oauth_url": server.oauth_url, **overrides}
        return JdChannel("shop", config(server, **settings))

    def window(self, server: Any, length: timedelta | None = None) -> TimeWindow:
        return past_window(server) if length is None else past_window(server, length)

    def sent_token(self, server: Any) -> str:
        return str(server.requests[-1]["access_token"])

    def echo_secrets(self, server: Any) -> None:
        server.echo_secrets_in_errors = True


def test_webhooks_are_refused_because_pushes_come_through_jmq() -> None:
    """verify_webhook raises JdPushNotSupported naming JMQ."""
    channel = JdChannel(
        "shop",
        {
            "app_key": APP_KEY,
            "app_secret": APP_SECRET,
            "access_token": ACCESS_TOKEN,
            "gateway_url": "http://127.0.0.1:9/routerjson",
        },
    )
    with pytest.raises(JdPushNotSupported, match="JMQ"):
        channel.verify_webhook({}, b"{}", datetime.now(UTC))


def test_config_problems_are_named_together() -> None:
    """Missing keys, bad values and unknown keys are reported in one InvalidInput."""
    with pytest.raises(InvalidInput) as caught:
        JdChannel(
            "shop",
            {
                "app_key": APP_KEY,
                "app_secert": APP_SECRET,
                "gateway_url": "http://127.0.0.1:9/routerjson",
                "page_size": 500,
                "access_token_expires_at": "2027-01-01T00:00:00",
            },
        )
    fields = {error.field for error in caught.value.errors}
    assert fields == {
        "app_secert",
        "app_secret",
        "access_token",
        "page_size",
        "access_token_expires_at",
    }


# -- mapping -------------------------------------------------------------------------------


def realistic_order() -> dict[str, Any]:
    """A JD POP order: masked consignee, two lines, one without outerSkuId."""
    return {
        "orderId": "298765432101",
        "orderState": "WAIT_SELLER_STOCK_OUT",
        "orderStartTime": "2026-11-11 00:00:05",
        "modified": "2026-11-11 00:01:10",
        "pin": "jd_4f7a****b21c",
        "orderRemark": "工作日送货",
        "freightPrice": "6.00",
        "consigneeInfo": {
            "fullname": "李*",
            "mobile": "139****1234",
            "telephone": "",
            "province": "北京",
            "city": "北京市",
            "county": "朝阳区",
            "town": "建外街道",
            "fullAddress": "北京朝阳区建国路****号",
        },
        "itemInfoList": [
            {
                "skuId": "100012345678",
                "outerSkuId": "TEE-2026-BLK-M",
                "skuName": "纯棉短袖T恤 黑色 M",
                "itemTotal": "2",
                "jdPrice": "59.00",
            },
            {
                "skuId": "100012345999",
                "outerSkuId": "",
                "skuName": "赠品",
                "itemTotal": "1",
                "jdPrice": "0.00",
            },
        ],
    }


def as_record(order: dict[str, Any]) -> RawRecord:
    return RawRecord(
        channel="jd-flagship",
        external_id=str(order["orderId"]),
        modified_at=datetime(2026, 11, 10, 16, 1, 10, tzinfo=UTC),
        payload=order,
    )


def test_a_realistic_order_maps_with_the_right_warnings() -> None:
    """Shanghai times in UTC, masked consignee marked, skuId fallback warned, yuan exact."""
    mapped = map_jd_order(as_record(realistic_order()))
    order = mapped.order
    assert (order.external_id, order.status) == ("298765432101", OrderStatus.PAID)
    assert order.created_at == datetime(2026, 11, 10, 16, 0, 5, tzinfo=UTC)
    assert order.source_modified_at == datetime(2026, 11, 10, 16, 1, 10, tzinfo=UTC)
    assert (order.receiver.name, order.receiver.phone, order.receiver.masked) == (
        "李*",
        "139****1234",
        True,
    )
    assert order.address.one_line() == "北京北京市朝阳区建外街道北京朝阳区建国路****号"
    assert order.address.masked
    assert order.shipping_fee.amount == Decimal("6.00")
    assert [(line.sku, line.quantity, line.unit_price.amount) for line in order.lines] == [
        ("TEE-2026-BLK-M", 2, Decimal("59.00")),
        ("100012345999", 1, Decimal("0.00")),
    ]
    assert mapped.warnings == (
        "receiver data is masked by the platform",
        "address data is masked by the platform",
        "itemInfoList[1]: no outerSkuId, SKU taken from JD's skuId 100012345999",
    )


def test_encrypted_consignee_data_is_marked_as_such() -> None:
    """``~..~`` ciphertext marks the receiver as masked and says encrypted."""
    order = realistic_order()
    order["consigneeInfo"] = {**order["consigneeInfo"], "fullname": "~AgAAAAPjOLkx9P0=~0~"}
    mapped = map_jd_order(as_record(order))
    assert mapped.order.receiver.masked
    assert "receiver data is encrypted by the platform" in mapped.warnings


@pytest.mark.parametrize(("state", "status"), sorted(JD_STATUSES.items()))
def test_every_jd_state_maps(state: str, status: OrderStatus) -> None:
    """Each orderState of the table maps to its canonical status."""
    order = {**realistic_order(), "orderState": state}
    assert map_jd_order(as_record(order)).order.status is status


def test_an_unknown_state_names_the_field_and_value() -> None:
    """An unlisted orderState fails the mapping naming channel, order, field and value."""
    with pytest.raises(InvalidOrder) as caught:
        map_jd_order(as_record({**realistic_order(), "orderState": "ON_THE_MOON"}))
    message = str(caught.value)
    assert "jd-flagship order 298765432101" in message
    assert "orderState" in message
    assert "ON_THE_MOON" in message
