"""The Pinduoduo adapter over real HTTP against a fake Pinduoduo gateway on 127.0.0.1."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import stamina
from _shared import RefreshingChannelSuite, TokenChannelSuite

from fakes.pdd_server import (
    ACCESS_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    FakePddServer,
    pdd_time,
)
from ordercore import OrderCore, Settings
from ordercore.domain.channels import RawRecord, TimeWindow
from ordercore.domain.orders import OrderStatus
from ordercore.errors import InvalidInput, InvalidOrder
from ordercore.ports.clock import ManualClock
from ordercore.testing.channel_contract import ChannelContract, ChannelUnderTest, fetch_window
from ordercore_adapters.channels.pinduoduo import (
    PDD_STATUSES,
    PddApiError,
    PddPushNotSupported,
    PddRateLimited,
    PinduoduoChannel,
    map_pdd_order,
    pdd_bounds,
    sign_pdd,
)

ATTEMPTS = 3
SECRETS = (CLIENT_SECRET, ACCESS_TOKEN)


@pytest.fixture(autouse=True)
def _retries_without_waiting() -> Iterator[None]:
    """stamina retries up to ATTEMPTS times, without sleeping between them."""
    with stamina.set_testing(True, attempts=ATTEMPTS, cap=True):
        yield


def config(server: FakePddServer, **overrides: object) -> dict[str, object]:
    """A channel config pointing at the fake gateway."""
    base: dict[str, object] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
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
def server() -> Iterator[FakePddServer]:
    with FakePddServer() as fake:
        yield fake


@pytest.fixture
async def channel(server: FakePddServer) -> AsyncIterator[PinduoduoChannel]:
    async with PinduoduoChannel("pdd-flagship", config(server)) as opened:
        yield opened


def past_window(server: FakePddServer, length: timedelta = timedelta(minutes=30)) -> TimeWindow:
    """A whole-second window ending ten minutes behind the fake's clock."""
    end = server.now().replace(microsecond=0) - timedelta(minutes=10)
    return TimeWindow(start=end - length, end=end)


class TestPinduoduoContract(ChannelContract):
    """PinduoduoChannel against the ChannelPort contract suite, over HTTP."""

    @pytest.fixture
    async def channel_under_test(self) -> AsyncIterator[ChannelUnderTest]:
        with FakePddServer() as fake:
            async with PinduoduoChannel("pdd-flagship", config(fake)) as opened:
                yield opened, fake


# -- signing -------------------------------------------------------------------------------

PDD_EXAMPLE = {
    "type": "pdd.order.number.list.increment.get",
    "client_id": "fakepddclientid0001",
    "access_token": "token-1",
    "timestamp": "1794355200",
    "data_type": "JSON",
    "version": "V1",
    "start_updated_at": "1794353400",
    "end_updated_at": "1794355199",
    "page": "1",
}


def test_the_signature_is_md5_of_the_secret_wrapped_sorted_concatenation() -> None:
    """Worked example: MD5(secret + access_token..version.. + secret), uppercase hex."""
    text = (
        "access_tokentoken-1client_idfakepddclientid0001data_typeJSON"
        "end_updated_at1794355199page1start_updated_at1794353400timestamp1794355200"
        "typepdd.order.number.list.increment.getversionV1"
    )
    expected = hashlib.md5(f"s3cret{text}s3cret".encode()).hexdigest().upper()
    assert sign_pdd(PDD_EXAMPLE, "s3cret") == expected == "49A7C0830F3DCCE3BF0EF08CC3D0B070"


def test_the_signature_matches_the_pdd_sdk() -> None:
    """Our signature equals the one of pdd-sdk (from PyPI), Chinese values included."""
    sdk = pytest.importorskip("pdd_sdk.api.base")
    params = {**PDD_EXAMPLE, "buyer_memo": "请尽快发货"}
    assert sign_pdd(params, CLIENT_SECRET) == sdk.sign(CLIENT_SECRET, params)


@pytest.mark.anyio
async def test_a_request_carries_the_system_params(
    server: FakePddServer, channel: PinduoduoChannel
) -> None:
    """type, client_id, access_token, unix timestamp, data_type=JSON and the 'all' filters."""
    await channel.fetch_orders(past_window(server), None)
    (sent,) = server.requests
    assert sent["type"] == "pdd.order.number.list.increment.get"
    assert (sent["client_id"], sent["access_token"], sent["data_type"]) == (
        CLIENT_ID,
        ACCESS_TOKEN,
        "JSON",
    )
    assert abs(int(sent["timestamp"]) - server.now().timestamp()) < 5
    assert (sent["order_status"], sent["refund_status"], sent["is_lucky_flag"]) == ("5", "5", "0")


@pytest.mark.anyio
async def test_a_wrong_client_secret_is_refused_and_not_retried(server: FakePddServer) -> None:
    """A bad signature raises PddApiError after one request."""
    async with PinduoduoChannel("shop", config(server, client_secret="nope")) as channel:
        with pytest.raises(PddApiError, match="10003"):
            await channel.fetch_orders(past_window(server), None)
    assert len(server.requests) == 1


# -- windows -------------------------------------------------------------------------------


def test_a_half_open_window_becomes_inclusive_unix_seconds() -> None:
    """[T, T+30 min) -> T .. T+1799; sub-second edges round up so no second repeats."""
    start = datetime(2026, 11, 11, 0, 0, tzinfo=UTC)
    whole = TimeWindow(start=start, end=start + timedelta(minutes=30))
    epoch = int(start.timestamp())
    assert pdd_bounds(whole) == (epoch, epoch + 1799)
    half = timedelta(milliseconds=500)
    assert pdd_bounds(TimeWindow(start=start + half, end=start + 3 * half)) == (
        epoch + 1,
        epoch + 1,
    )


@pytest.mark.anyio
async def test_adjacent_windows_lose_and_double_no_second(
    server: FakePddServer, channel: PinduoduoChannel
) -> None:
    """Windows cut at .5 s and whole seconds: each order lands in exactly one of them."""
    base = past_window(server).start
    for offset in range(1, 5):
        server.add_order(f"261111-{offset}", base + timedelta(seconds=offset))
    half = timedelta(milliseconds=500)
    cuts = [base + half + timedelta(seconds=n) for n in range(3)] + [base + timedelta(seconds=5)]
    seen: list[str] = []
    for start, end in itertools.pairwise(cuts):
        pages = await fetch_window(channel, TimeWindow(start=start, end=end))
        seen.extend(record.external_id for page in pages for record in page.records)
    assert seen == ["261111-1", "261111-2", "261111-3", "261111-4"]
    before = len(server.requests)
    page = await channel.fetch_orders(TimeWindow(start=base + half, end=base + half * 1.5), None)
    assert (page.records, page.total, len(server.requests)) == ((), 0, before)


@pytest.mark.anyio
async def test_a_window_of_thirty_minutes_is_the_most_the_platform_takes(
    server: FakePddServer, channel: PinduoduoChannel
) -> None:
    """30 minutes pass; 31 minutes are refused by the platform (PddApiError, one request)."""
    assert channel.limits.max_window == timedelta(minutes=30)
    await channel.fetch_orders(past_window(server, timedelta(minutes=30)), None)
    with pytest.raises(PddApiError, match="30分钟"):
        await channel.fetch_orders(past_window(server, timedelta(minutes=31)), None)
    assert len(server.requests) == 2


@pytest.mark.anyio
async def test_sync_honours_the_lag_behind_the_platform_clock() -> None:
    """Windows end 5 min behind pdd.time.get; a late-indexed order is stored once, later."""
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    with FakePddServer(clock=clock.now, index_delay=timedelta(minutes=3)) as server:
        server.add_order("261111-early", clock.now() - timedelta(minutes=20))
        server.add_order("261111-late", clock.now() - timedelta(minutes=2))  # not indexed yet
        async with (
            OrderCore.open("memory://", clock=clock, settings=Settings()) as core,
            PinduoduoChannel("pdd-flagship", config(server), clock=clock) as channel,
        ):
            assert channel.limits.lag == timedelta(minutes=5)
            await core.inventory.receive("TEE-2026-BLK-L", 100)
            first = await core.intake.sync(
                channel, first_sync_from=clock.now() - timedelta(hours=1)
            )
            latest_end = max(int(p["end_updated_at"]) for p in server.search_params)
            assert latest_end < (clock.now() - timedelta(minutes=5)).timestamp()
            clock.advance(timedelta(minutes=10))
            second = await core.intake.sync(channel)
            clock.advance(timedelta(minutes=10))
            third = await core.intake.sync(channel)
            orders = await core.orders.list(limit=100)
    assert (first.created, second.created, third.created) == (1, 1, 0)
    assert sorted(order.external_id for order in orders) == ["261111-early", "261111-late"]


# -- paging --------------------------------------------------------------------------------


def fill(server: FakePddServer, window: TimeWindow, count: int) -> list[str]:
    """``count`` orders ten seconds apart inside ``window``; their order_sns."""
    ids = [f"261111-{index:08d}" for index in range(count)]
    for index, order_sn in enumerate(ids):
        server.add_order(order_sn, window.start + timedelta(seconds=10 * (1 + index)))
    return ids


@pytest.mark.anyio
async def test_pages_are_read_from_the_last_to_the_first(
    server: FakePddServer, channel: PinduoduoChannel
) -> None:
    """45 orders in pages of 20: page 1 (for total_count), then pages 3, 2, 1."""
    window = past_window(server)
    ids = fill(server, window, 45)
    pages = await fetch_window(channel, window)
    assert server.search_pages == [1, 3, 2, 1]
    assert [page.total for page in pages] == [45] * 4
    assert [page.next_page for page in pages] == ["3/45", "2/45", "1/45", None]
    assert {r.external_id for page in pages for r in page.records} == set(ids)


async def forward_walk(channel: PinduoduoChannel, window: TimeWindow, pages: int) -> set[str]:
    """What paging 1, 2, 3 ... (the way the docs warn against) would have collected."""
    start, end = pdd_bounds(window)
    seen: set[str] = set()
    for page in range(1, pages + 1):
        body = await channel.client.call(
            "pdd.order.number.list.increment.get",
            {
                "start_updated_at": start,
                "end_updated_at": end,
                "is_lucky_flag": 0,
                "order_status": 5,
                "refund_status": 5,
                "page": page,
                "page_size": 20,
            },
            key="order_sn_increment_get_response",
        )
        seen.update(order["order_sn"] for order in body["order_sn_list"])
    return seen


@pytest.mark.anyio
async def test_an_order_modified_while_paging_loses_nothing(
    server: FakePddServer, channel: PinduoduoChannel
) -> None:
    """An order leaves the window after two pages: rows slide, one repeats, none is lost."""
    window = past_window(server)
    ids = fill(server, window, 45)
    server.modify_during_paging(ids[0], after_pages=2)
    pages = await fetch_window(channel, window)
    fetched = [r.external_id for page in pages for r in page.records]
    assert set(ids) - {ids[0]} <= set(fetched)
    assert len(fetched) > len(set(fetched))  # a slid row was read twice; the intake dedups
    assert [page.total for page in pages] == [45, 45, 44, 44]  # so the intake re-scans

    server.touch(ids[0], window.start + timedelta(seconds=5))  # the same setup, again
    server.modify_during_paging(ids[0], after_pages=len(server.search_pages) + 1)
    naive = await forward_walk(channel, window, 3)
    assert len(set(ids) - {ids[0]} - naive) == 1  # paging forward would have lost one


# -- rate limits and failures --------------------------------------------------------------


class TestPinduoduoGateway(TokenChannelSuite):
    """The shared gateway behaviours (``_shared``), for PinduoduoChannel."""

    rate_limited = PddRateLimited
    rate_limit_order_id = "261111-5"
    transient_order_id = "261111-6"

    api_error = PddApiError
    refused_length = timedelta(hours=3)
    secrets = SECRETS
    echoed = "access_token已过期"

    def echoing_server(self) -> FakePddServer:
        return FakePddServer(echo_secrets_in_errors=True)

    def bad_secret_config(self) -> None:
        PinduoduoChannel("shop", {"client_secret": 12345, "access_token": [ACCESS_TOKEN]})

    sync_sku = "TEE-2026-BLK-L"
    sync_step = timedelta(minutes=10)

    def server_on(self, clock: ManualClock) -> FakePddServer:
        return FakePddServer(clock=clock.now)

    def flagship(self, server: Any, clock: ManualClock) -> PinduoduoChannel:
        return PinduoduoChannel("pdd-flagship", config(server), clock=clock)

    def fill(self, server: Any, window: TimeWindow, count: int) -> list[str]:
        return fill(server, window, count)

    def changed_at(self, server: Any, order_id: str) -> datetime:
        changed: datetime = server.updated[order_id]
        return changed

    def open_channel(self, server: Any, **overrides: object) -> PinduoduoChannel:
        return PinduoduoChannel("shop", config(server, **overrides))

    def window(self, server: Any, length: timedelta | None = None) -> TimeWindow:
        return past_window(server) if length is None else past_window(server, length)


class TestPinduoduoRefresh(RefreshingChannelSuite):
    """Token refresh through pdd.pop.auth.token.refresh (``_shared``), for PinduoduoChannel."""

    def open_refreshing(self, server: Any, **overrides: object) -> PinduoduoChannel:
        return PinduoduoChannel(
            "shop", config(server, **{"refresh_token": REFRESH_TOKEN, **overrides})
        )

    def window(self, server: Any, length: timedelta | None = None) -> TimeWindow:
        return past_window(server) if length is None else past_window(server, length)

    def sent_token(self, server: Any) -> str:
        return str(server.requests[-1]["access_token"])

    def echo_secrets(self, server: Any) -> None:
        server.echo_secrets_in_errors = True

    @pytest.mark.anyio
    async def test_scopes_from_the_refresh_are_tracked_per_scope(
        self, server: FakePddServer
    ) -> None:
        """The refresh answer's r1..w2 expiries join the token's, one entry per scope."""
        async with self.open_refreshing(server) as channel:
            status = await channel.refresh_credentials()
        assert set(status.expires_at) == {"access_token", "r1", "r2", "w1", "w2"}


def test_webhooks_are_refused() -> None:
    """verify_webhook raises PddPushNotSupported."""
    channel = PinduoduoChannel(
        "shop",
        {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "access_token": ACCESS_TOKEN,
            "gateway_url": "http://127.0.0.1:9/api/router",
        },
    )
    with pytest.raises(PddPushNotSupported, match="message service"):
        channel.verify_webhook({}, b"{}", datetime.now(UTC))


def test_config_problems_are_named_together() -> None:
    """Missing keys, bad values and unknown keys are reported in one InvalidInput."""
    with pytest.raises(InvalidInput) as caught:
        PinduoduoChannel(
            "shop",
            {
                "client_id": CLIENT_ID,
                "client_secert": CLIENT_SECRET,
                "gateway_url": "http://127.0.0.1:9/api/router",
                "page_size": 0,
                "access_token_expires_at": "tomorrow",
                "amount_unit": "cents",
            },
        )
    fields = {error.field for error in caught.value.errors}
    assert fields == {
        "client_secert",
        "client_secret",
        "access_token",
        "page_size",
        "access_token_expires_at",
        "amount_unit",
    }


# -- mapping -------------------------------------------------------------------------------


def realistic_order() -> dict[str, Any]:
    """A Pinduoduo order: encrypted receiver, yuan amounts, a line without outer_id."""
    return {
        "order_sn": "261111-123456789012345",
        "order_status": 1,
        "refund_status": 1,
        "created_time": "2026-11-11 00:00:05",
        "updated_at": "2026-11-11 00:01:10",
        "buyer_memo": "不要放快递柜",
        "postage": "6.00",
        "receiver_name": "~AgAAAAPjOLkx9P0=~0~",
        "receiver_phone": "~AgAAAAPjOLnC9b4=~1~",
        "province": "上海",
        "city": "上海市",
        "town": "长宁区",
        "address": "~AgAAAAPjOLnZn8s=~2~",
        "item_list": [
            {
                "sku_id": 987654321,
                "outer_id": "TEE-2026-BLK-L",
                "goods_name": "纯棉短袖T恤 黑色 L",
                "goods_count": 2,
                "goods_price": "19.99",
            },
            {
                "sku_id": 987654399,
                "outer_id": "",
                "goods_name": "赠品",
                "goods_count": 1,
                "goods_price": "0.01",
            },
        ],
    }


def as_record(order: dict[str, Any]) -> RawRecord:
    return RawRecord(
        channel="pdd-flagship",
        external_id=str(order["order_sn"]),
        modified_at=datetime(2026, 11, 10, 16, 1, 10, tzinfo=UTC),
        payload=order,
    )


def test_a_realistic_order_maps_with_exact_yuan_and_the_right_warnings() -> None:
    """Yuan strings exact, Shanghai times in UTC, encrypted receiver marked, fallback warned."""
    mapped = map_pdd_order(as_record(realistic_order()))
    order = mapped.order
    assert (order.external_id, order.status) == ("261111-123456789012345", OrderStatus.PAID)
    assert order.created_at == datetime(2026, 11, 10, 16, 0, 5, tzinfo=UTC)
    assert order.source_modified_at == datetime(2026, 11, 10, 16, 1, 10, tzinfo=UTC)
    assert order.shipping_fee.amount == Decimal("6.00")
    assert [(line.sku, line.quantity, line.unit_price.amount) for line in order.lines] == [
        ("TEE-2026-BLK-L", 2, Decimal("19.99")),
        ("987654399", 1, Decimal("0.01")),
    ]
    assert order.receiver.masked
    assert order.address.masked
    assert mapped.warnings == (
        "receiver data is encrypted by the platform",
        "address data is encrypted by the platform",
        "item_list[1]: no outer_id, SKU taken from Pinduoduo's sku_id 987654399",
    )


def test_masked_receiver_data_is_marked_as_such() -> None:
    """``*``-masked name and phone mark the receiver as masked."""
    order = {**realistic_order(), "receiver_name": "王**", "receiver_phone": "136****0000"}
    mapped = map_pdd_order(as_record(order))
    assert mapped.order.receiver.masked
    assert "receiver data is masked by the platform" in mapped.warnings


@pytest.mark.parametrize("fen", [0, 1, 10, 99, 100, 1999, 123456789])
def test_fen_convert_to_yuan_exactly(fen: int) -> None:
    """amount_unit=fen: every whole fen amount becomes the exact yuan Decimal."""
    order = realistic_order()
    order["postage"] = fen
    order["item_list"] = [{**order["item_list"][0], "goods_price": str(fen)}]
    mapped = map_pdd_order(as_record(order), amount_unit="fen").order
    exact = Decimal(f"{fen // 100}.{fen % 100:02d}")
    assert mapped.lines[0].unit_price.amount == exact == Decimal(fen) / 100
    assert mapped.shipping_fee.amount == exact


def test_a_yuan_decimal_is_refused_when_fen_are_configured() -> None:
    """amount_unit=fen and "19.99": InvalidOrder naming goods_price, never a silent 100x."""
    with pytest.raises(InvalidOrder, match=r"item_list\[0\]\.goods_price: must be a whole number"):
        map_pdd_order(as_record(realistic_order()), amount_unit="fen")


@pytest.mark.anyio
async def test_the_adapter_maps_with_its_configured_amount_unit(server: FakePddServer) -> None:
    """A channel configured amount_unit=fen maps a fetched fen order exactly."""
    window = past_window(server)
    order = {**realistic_order(), "updated_at": pdd_time(window.start), "postage": 600}
    order["item_list"] = [{**order["item_list"][0], "goods_price": 1999}]
    server.put_order(order)
    async with PinduoduoChannel("shop", config(server, amount_unit="fen")) as channel:
        (page,) = await fetch_window(channel, window)
        (mapped,) = [channel.map_order(record).order for record in page.records]
    assert mapped.lines[0].unit_price.amount == Decimal("19.99")
    assert mapped.shipping_fee.amount == Decimal("6.00")


@pytest.mark.parametrize(("code", "status"), sorted(PDD_STATUSES.items()))
def test_every_order_status_maps(code: str, status: OrderStatus) -> None:
    """Each order_status of the table maps to its canonical status."""
    order = {**realistic_order(), "order_status": int(code)}
    assert map_pdd_order(as_record(order)).order.status is status


def test_a_refunded_order_is_cancelled() -> None:
    """refund_status 4 cancels the order whatever its order_status."""
    order = {**realistic_order(), "order_status": 2, "refund_status": 4}
    assert map_pdd_order(as_record(order)).order.status is OrderStatus.CANCELLED


def test_an_unknown_status_names_the_field_and_value() -> None:
    """An unlisted order_status fails the mapping naming channel, order, field and value."""
    with pytest.raises(InvalidOrder) as caught:
        map_pdd_order(as_record({**realistic_order(), "order_status": 42}))
    message = str(caught.value)
    assert "pdd-flagship order 261111-123456789012345" in message
    assert "order_status" in message
    assert "42" in message
