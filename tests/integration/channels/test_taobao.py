"""The Taobao (TOP) adapter over real HTTP against a fake TOP gateway on 127.0.0.1."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
import stamina
from _shared import GatewayChannelSuite, leaked_texts

from fakes.top_server import APP_KEY, APP_SECRET, REFRESH_TOKEN, SESSION, FakeTopServer, top_time
from ordercore import OrderCore, Settings
from ordercore.domain.channels import RawRecord, TimeWindow
from ordercore.domain.intake import RunStatus
from ordercore.domain.orders import OrderStatus
from ordercore.errors import (
    ChannelAuthExpired,
    ChannelUnavailable,
    InvalidInput,
    InvalidOrder,
)
from ordercore.ports.clock import ManualClock
from ordercore.testing.channel_contract import ChannelContract, ChannelUnderTest, fetch_window
from ordercore_adapters.channels.taobao import (
    TAOBAO_STATUSES,
    TaobaoChannel,
    TmcPushNotSupported,
    TopApiError,
    TopRateLimited,
    map_trade,
    sign_top,
    top_bounds,
)

ATTEMPTS = 3
SECRETS = (APP_SECRET, SESSION, REFRESH_TOKEN)


@pytest.fixture(autouse=True)
def _retries_without_waiting() -> Iterator[None]:
    """stamina retries up to ATTEMPTS times, without sleeping between them."""
    with stamina.set_testing(True, attempts=ATTEMPTS, cap=True):
        yield


def config(server: FakeTopServer, **overrides: object) -> dict[str, object]:
    """A channel config pointing at the fake gateway."""
    base: dict[str, object] = {
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "session": SESSION,
        "session_expires_at": (server.now() + timedelta(days=30)).isoformat(),
        "gateway_url": server.url,
        "page_size": 20,
        "requests_per_second": 1000,
        "timeout": 2.0,
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


@pytest.fixture
def server() -> Iterator[FakeTopServer]:
    with FakeTopServer() as fake:
        yield fake


@pytest.fixture
async def channel(server: FakeTopServer) -> AsyncIterator[TaobaoChannel]:
    async with TaobaoChannel("taobao-flagship", config(server)) as opened:
        yield opened


def past_window(server: FakeTopServer, length: timedelta = timedelta(hours=1)) -> TimeWindow:
    """A whole-second window ending ten minutes behind the fake's clock."""
    end = server.now().replace(microsecond=0) - timedelta(minutes=10)
    return TimeWindow(start=end - length, end=end)


class TestTaobaoContract(ChannelContract):
    """TaobaoChannel against the ChannelPort contract suite, over HTTP."""

    @pytest.fixture
    async def channel_under_test(self) -> AsyncIterator[ChannelUnderTest]:
        with FakeTopServer() as fake:
            async with TaobaoChannel("taobao-flagship", config(fake)) as opened:
                yield opened, fake


# -- signing -------------------------------------------------------------------------------

TOP_EXAMPLE = {
    "method": "taobao.item.seller.get",
    "app_key": "12345678",
    "session": "test",
    "timestamp": "2016-01-01 12:00:00",
    "format": "json",
    "v": "2.0",
    "sign_method": "md5",
    "fields": "num_iid,title,nick,price,num",
    "num_iid": "11223344",
}


def test_md5_signature_matches_tops_published_example() -> None:
    """TOP's worked example (secret helloworld) signs to its published value."""
    assert sign_top(TOP_EXAMPLE, "helloworld", "md5") == "66987CB115214E59E6EC978214934FB8"


def test_md5_signature_matches_the_py_taobao_open_sdk() -> None:
    """Our md5 signature equals the one of py-taobao-open (a port of TOP's own SDK)."""
    sdk = pytest.importorskip("taobao_open.api.base")
    params = {**TOP_EXAMPLE, "page_size": "20", "start_modified": "2026-11-11 00:00:00"}
    assert sign_top(params, APP_SECRET, "md5") == sdk.sign(APP_SECRET, params)


def test_hmac_signature_matches_the_taobaopy_sdk() -> None:
    """Our hmac (HMAC-MD5) signature equals the one taobaopy sends."""
    sdk = pytest.importorskip("taobaopy.taobao")
    client = SimpleNamespace(client_id=APP_KEY, client_secret=APP_SECRET, retry_sub_codes=())
    values = {"method": "taobao.trades.sold.increment.get", "fields": "tid,modified"}
    request = sdk.BaseAPIRequest("http://127.0.0.1/router/rest", client, values)
    data, _ = request.sign()
    assert sign_top(data, APP_SECRET, "hmac") == data["sign"]


def test_hmac_methods_are_plain_hmacs_of_the_concatenation() -> None:
    """hmac and hmac-sha256 give RFC 2202 / RFC 4231's vectors for key 'Jefe'."""
    params = {"what do ya want for nothing": "?"}
    assert sign_top(params, "Jefe", "hmac") == "750C783E6AB0B503EAA86E310A5DB738"
    assert (
        sign_top(params, "Jefe", "hmac-sha256")
        == "5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843"
    )


def test_sign_and_empty_values_stay_out_of_the_signature() -> None:
    """Adding ``sign`` or empty-valued params does not change the signature."""
    plain = sign_top(TOP_EXAMPLE, "helloworld", "md5")
    padded = {**TOP_EXAMPLE, "sign": "X", "buyer_nick": "", "tag": None}
    assert sign_top(padded, "helloworld", "md5") == plain


@pytest.mark.anyio
@pytest.mark.parametrize("sign_method", ["md5", "hmac", "hmac-sha256"])
async def test_the_gateway_accepts_every_sign_method(
    server: FakeTopServer, sign_method: str
) -> None:
    """Each sign method passes the fake gateway's own (independent) verification."""
    async with TaobaoChannel("shop", config(server, sign_method=sign_method)) as channel:
        told = await channel.platform_time()
    assert abs(told - server.now()) < timedelta(seconds=5)
    assert server.requests[-1]["sign_method"] == sign_method


@pytest.mark.anyio
async def test_a_wrong_app_secret_is_refused_and_not_retried(server: FakeTopServer) -> None:
    """A bad signature (code 25) raises TopApiError after one request."""
    async with TaobaoChannel("shop", config(server, app_secret="not-the-secret")) as channel:
        with pytest.raises(TopApiError, match="25") as caught:
            await channel.platform_time()
    assert caught.value.code == 25
    assert len(server.requests) == 1


# -- the window boundary -------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_half_open_window_is_sent_as_inclusive_shanghai_seconds(
    server: FakeTopServer, channel: TaobaoChannel
) -> None:
    """[10:00:00, 11:00:00) UTC asks TOP for 18:00:00 .. 18:59:59 Asia/Shanghai."""
    window = TimeWindow(
        start=datetime(2026, 11, 11, 10, 0, tzinfo=UTC),
        end=datetime(2026, 11, 11, 11, 0, tzinfo=UTC),
    )
    assert top_bounds(window) == (window.start, window.end - timedelta(seconds=1))
    recent = past_window(server)
    await channel.fetch_orders(recent, None)
    sent = server.requests[-1]
    assert sent["start_modified"] == top_time(recent.start)
    assert sent["end_modified"] == top_time(recent.end - timedelta(seconds=1))
    assert top_time(window.start) == "2026-11-11 18:00:00"


@pytest.mark.anyio
async def test_sub_second_window_edges_lose_and_double_no_second(
    server: FakeTopServer, channel: TaobaoChannel
) -> None:
    """Windows cut at .5 s: each whole-second trade lands in exactly one of them."""
    base = past_window(server).start
    for offset in range(1, 4):
        server.add_order(f"7000{offset}", base + timedelta(seconds=offset))
    half = timedelta(milliseconds=500)
    cuts = [base + half + timedelta(seconds=n) for n in range(4)]
    seen: list[str] = []
    for start, end in itertools.pairwise(cuts):
        pages = await fetch_window(channel, TimeWindow(start=start, end=end))
        seen.extend(record.external_id for page in pages for record in page.records)
        assert [page.total for page in pages] == [1]
    assert seen == ["70001", "70002", "70003"]
    before = len(server.requests)
    tiny = TimeWindow(start=base + half, end=base + half * 1.5)
    page = await channel.fetch_orders(tiny, None)
    assert (page.records, page.total, len(server.requests)) == ((), 0, before)


# -- backward paging -----------------------------------------------------------------------


def fill(server: FakeTopServer, window: TimeWindow, count: int) -> list[str]:
    """``count`` trades a minute apart inside ``window``, newest last; their tids."""
    tids = [str(8_000_000 + index) for index in range(count)]
    for index, tid in enumerate(tids):
        server.add_order(tid, window.start + timedelta(minutes=1 + index))
    return tids


@pytest.mark.anyio
async def test_pages_are_read_from_the_last_to_the_first(
    server: FakeTopServer, channel: TaobaoChannel
) -> None:
    """45 trades in pages of 20: page 1 (for the total), then pages 3, 2, 1."""
    window = past_window(server)
    tids = fill(server, window, 45)
    pages = await fetch_window(channel, window)
    assert server.trade_pages == [1, 3, 2, 1]
    assert [page.total for page in pages] == [45] * 4
    assert {r.external_id for page in pages for r in page.records} == set(tids)
    assert [page.next_page for page in pages] == ["3/45", "2/45", "1/45", None]


async def forward_walk(channel: TaobaoChannel, window: TimeWindow, pages: int) -> set[str]:
    """What paging 1, 2, 3 ... (the naive way) would have collected."""
    start, end = top_bounds(window)
    seen: set[str] = set()
    for page_no in range(1, pages + 1):
        body = await channel.client.call(
            "taobao.trades.sold.increment.get",
            {
                "fields": "tid_str,modified",
                "start_modified": top_time(start),
                "end_modified": top_time(end),
                "page_no": page_no,
                "page_size": 20,
            },
        )
        seen.update(t["tid_str"] for t in body.get("trades", {}).get("trade", []))
    return seen


@pytest.mark.anyio
async def test_a_trade_modified_while_paging_loses_nothing(
    server: FakeTopServer, channel: TaobaoChannel
) -> None:
    """The newest trade changes after two pages: rows slide, duplicates appear, none lost."""
    window = past_window(server)
    tids = fill(server, window, 45)
    moved = tids[-1]  # newest: first row of page 1
    server.modify_during_paging(moved, after_pages=2)
    pages = await fetch_window(channel, window)
    fetched = [r.external_id for page in pages for r in page.records]
    assert set(tids) - {moved} <= set(fetched)
    assert len(fetched) > len(set(fetched))  # the slide duplicated rows; intake dedups them
    assert server.modified[moved] >= window.end  # its new version belongs to a later window
    assert [page.total for page in pages] == [45, 45, 44, 44]  # the intake re-scans

    server.touch(moved, window.start + timedelta(minutes=45))  # the same setup, again
    server.modify_during_paging(moved, after_pages=len(server.trade_pages) + 2)
    naive = await forward_walk(channel, window, 3)
    assert len(set(tids) - {moved} - naive) == 1  # paging forward would have lost a trade


@pytest.mark.anyio
async def test_a_trade_jumping_to_the_front_inside_the_window_shows_in_the_count(
    server: FakeTopServer, channel: TaobaoChannel
) -> None:
    """A move inside the window can skip a row; the count falls short, a re-scan heals it."""
    window = past_window(server)
    tids = fill(server, window, 45)
    server.modify_during_paging(tids[2], after_pages=2, to=window.end - timedelta(seconds=1))
    pages = await fetch_window(channel, window)
    fetched = {r.external_id for page in pages for r in page.records}
    assert len(fetched) < max(page.total or 0 for page in pages)  # the intake re-scans
    rescan = await fetch_window(channel, window)
    assert {r.external_id for page in rescan for r in page.records} == set(tids)


@pytest.mark.anyio
async def test_sync_runs_store_every_trade_once_when_one_changes_while_paging() -> None:
    """Through the intake: a trade modified mid-scan ends stored once, at its newest version."""
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    with FakeTopServer(clock=clock.now) as server:
        window = past_window(server)
        tids = fill(server, window, 45)
        server.modify_during_paging(tids[-1], after_pages=2)
        async with (
            OrderCore.open("memory://", clock=clock, settings=Settings()) as core,
            TaobaoChannel("taobao-flagship", config(server), clock=clock) as channel,
        ):
            await core.inventory.receive("TEE-2026-BLK-S", 1_000)
            first = await core.intake.sync(channel, first_sync_from=window.start)
            clock.advance(timedelta(minutes=5))
            second = await core.intake.sync(channel)
            orders = await core.orders.list(limit=1_000)
    assert (first.status, first.created, second.created) == (RunStatus.SUCCEEDED, 44, 1)
    assert first.pages > 4  # the totals moved while paging: the window was re-scanned
    assert sorted(order.external_id for order in orders) == sorted(tids)
    newest = next(order for order in orders if order.external_id == tids[-1])
    assert newest.source_modified_at == server.modified[tids[-1]]


# -- rate limits ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_rate_limit_ban_is_waited_out(
    server: FakeTopServer, channel: TaobaoChannel
) -> None:
    """Code 7 "ban will last for 1 more seconds": the client waits it out, then succeeds."""
    window = past_window(server)
    server.add_order("5000001", window.start)
    server.ban(1)
    began = time.monotonic()
    page = await channel.fetch_orders(window, None)
    assert time.monotonic() - began >= 0.95
    assert [r.external_id for r in page.records] == ["5000001"]
    assert (len(server.requests), server.requests_during_ban) == (2, 0)


@pytest.mark.anyio
async def test_a_ban_longer_than_max_ban_wait_fails_at_once(server: FakeTopServer) -> None:
    """A one-hour ban is not waited for: TopRateLimited (a ChannelUnavailable), one request."""
    server.ban(3600)
    async with TaobaoChannel("shop", config(server, max_ban_wait=5)) as channel:
        began = time.monotonic()
        with pytest.raises(TopRateLimited, match="3600"):
            await channel.fetch_orders(past_window(server), None)
    assert time.monotonic() - began < 1
    assert len(server.requests) == 1
    assert issubclass(TopRateLimited, ChannelUnavailable)


@pytest.mark.anyio
async def test_the_client_spaces_requests_by_its_rate(server: FakeTopServer) -> None:
    """At 20 requests per second, five calls take at least four intervals of 50 ms."""
    async with TaobaoChannel("shop", config(server, requests_per_second=20)) as channel:
        began = time.monotonic()
        for _ in range(5):
            await channel.platform_time()
        spent = time.monotonic() - began
    assert spent >= 0.2
    assert server.request_times[-1] - server.request_times[0] >= 0.15
    assert len(server.requests) == 5


# -- transient failures --------------------------------------------------------------------


@pytest.mark.anyio
async def test_isp_errors_are_retried(server: FakeTopServer, channel: TaobaoChannel) -> None:
    """Two isp.* answers, then success on the third attempt (5xx and malformed: ``_shared``)."""
    window = past_window(server)
    server.add_order("6000001", window.start)
    server.fail_next(2, "isp")
    page = await channel.fetch_orders(window, None)
    assert [r.external_id for r in page.records] == ["6000001"]
    assert len(server.requests) == 3


# -- refusals ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_isv_error_is_typed_and_not_retried(
    server: FakeTopServer, channel: TaobaoChannel
) -> None:
    """A two-day window is refused (isv.invalid-parameter): TopApiError, one request."""
    with pytest.raises(TopApiError) as caught:
        await channel.fetch_orders(past_window(server, timedelta(days=2)), None)
    assert caught.value.sub_code == "isv.invalid-parameter"
    assert len(server.requests) == 1


class TestTaobaoGateway(GatewayChannelSuite):
    """The shared gateway behaviours (``_shared``), for TaobaoChannel."""

    def open_channel(self, server: Any, **overrides: object) -> TaobaoChannel:
        return TaobaoChannel("shop", config(server, **overrides))

    def window(self, server: Any, length: timedelta | None = None) -> TimeWindow:
        return past_window(server) if length is None else past_window(server, length)


@pytest.mark.anyio
async def test_secrets_never_appear_in_reprs_logs_or_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """App secret, session and refresh token stay out of reprs, log records and errors."""
    with FakeTopServer(echo_secrets_in_errors=True) as server:
        conf = config(server, refresh_token=REFRESH_TOKEN, timeout=0.2, max_ban_wait=1)
        async with TaobaoChannel("shop", conf) as channel:
            names, texts = await leaked_texts(
                channel,
                server,
                refused=TopApiError,
                refused_window=past_window(server, timedelta(days=3)),
                window=past_window(server),
                arrangements=[
                    lambda: server.fail_next(10, "5xx"),
                    lambda: server.fail_next(10, "hang"),
                    lambda: server.fail_next(10, "isp"),
                    server.expire_credentials,
                    lambda: server.ban(60),
                ],
                reset=lambda: server.fail_next(0),
                bad_config=lambda: TaobaoChannel(
                    "shop", {"app_secret": 12345, "session": [SESSION], "gateway_url": "x"}
                ),
                caplog=caplog,
            )
    assert names == [
        "TopApiError",
        "ChannelUnavailable",
        "ChannelUnavailable",
        "ChannelUnavailable",
        "ChannelAuthExpired",
        "TopRateLimited",
        "InvalidInput",
    ]
    assert any("SessionKey非法 (<redacted>)" in text for text in texts)  # echoed, scrubbed
    for secret in SECRETS:
        assert not [text for text in texts if secret in text], secret


# -- credentials ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_credential_status_reports_the_session_and_each_scope(
    server: FakeTopServer,
) -> None:
    """Expiries per token and scope come from the config; a refresh token makes it refreshable."""
    session_end = datetime(2027, 1, 1, tzinfo=UTC)
    scopes = {"r2": "2026-12-01T00:00:00+08:00"}
    conf = config(
        server,
        session_expires_at=session_end,
        scope_expires_at=scopes,
        refresh_token=REFRESH_TOKEN,
    )
    async with TaobaoChannel("shop", conf) as channel:
        status = await channel.credential_status()
    assert status.expires_at == {
        "session": session_end,
        "r2": datetime(2026, 11, 30, 16, 0, tzinfo=UTC),
    }
    assert status.refreshable


@pytest.mark.anyio
async def test_refresh_without_a_refresh_token_asks_for_reauthorisation(
    server: FakeTopServer, channel: TaobaoChannel
) -> None:
    """No refresh token: ChannelAuthExpired saying the seller must authorise again."""
    assert not (await channel.credential_status()).refreshable
    with pytest.raises(ChannelAuthExpired, match="authorising the app again"):
        await channel.refresh_credentials()
    assert server.requests == []


@pytest.mark.anyio
async def test_refresh_with_a_refresh_token_renews_the_session(server: FakeTopServer) -> None:
    """taobao.top.auth.token.refresh: new session and expiries; fetching works again."""
    window = past_window(server)
    server.add_order("4000001", window.start)
    async with TaobaoChannel("shop", config(server, refresh_token=REFRESH_TOKEN)) as channel:
        server.expire_credentials()
        with pytest.raises(ChannelAuthExpired):
            await channel.fetch_orders(window, None)
        status = await channel.refresh_credentials()
        page = await channel.fetch_orders(window, None)
    assert server.refreshes == 1
    assert [r.external_id for r in page.records] == ["4000001"]
    assert set(status.expires_at) == {"session", "r1", "r2", "w1", "w2"}
    assert status.expires_at["session"] - server.now() > timedelta(hours=23)
    assert server.requests[-1]["session"] == server.session != SESSION


@pytest.mark.anyio
async def test_a_refreshed_session_restores_into_a_new_adapter(server: FakeTopServer) -> None:
    """export_tokens after a refresh; a new adapter restores it (once) and fetches with it."""
    window = past_window(server)
    server.add_order("4000002", window.start)
    conf = config(server, refresh_token=REFRESH_TOKEN)
    async with TaobaoChannel("shop", conf) as first:
        await first.refresh_credentials()
        saved = first.export_tokens()
    assert server.session not in repr(saved)
    assert saved.secret("session") == server.session
    async with TaobaoChannel("shop", conf) as second:  # the configured session no longer works
        assert second.restore_tokens(saved)
        assert not second.restore_tokens(saved)
        page = await second.fetch_orders(window, None)
        status = await second.credential_status()
    assert [r.external_id for r in page.records] == ["4000002"]
    assert server.requests[-1]["session"] == server.session
    assert status.expires_at["session"] == saved.expires_at["session"]
    async with TaobaoChannel("shop", config(server, session="re-authorised")) as other:
        assert not other.restore_tokens(saved)


@pytest.mark.anyio
async def test_a_refused_refresh_is_an_auth_failure(server: FakeTopServer) -> None:
    """A refresh token TOP refuses raises ChannelAuthExpired."""
    async with TaobaoChannel("shop", config(server, refresh_token="stale-token")) as channel:
        with pytest.raises(ChannelAuthExpired, match="refused to refresh"):
            await channel.refresh_credentials()


def test_webhooks_are_refused_because_pushes_come_through_tmc() -> None:
    """verify_webhook raises TmcPushNotSupported naming TMC."""
    channel = TaobaoChannel(
        "shop",
        {
            "app_key": APP_KEY,
            "app_secret": APP_SECRET,
            "session": SESSION,
            "session_expires_at": "2027-01-01T00:00:00+00:00",
            "gateway_url": "http://127.0.0.1:9/router/rest",
        },
    )
    with pytest.raises(TmcPushNotSupported, match="TMC"):
        channel.verify_webhook({}, b"{}", datetime.now(UTC))


def test_config_problems_are_named_together() -> None:
    """Missing keys, bad values and unknown keys are reported in one InvalidInput."""
    with pytest.raises(InvalidInput) as caught:
        TaobaoChannel(
            "shop",
            {
                "app_key": APP_KEY,
                "app_secert": APP_SECRET,
                "gateway_url": "http://127.0.0.1:9/router/rest",
                "page_size": 500,
                "sign_method": "sha1",
                "session_expires_at": "2027-01-01T00:00:00",
            },
        )
    fields = {error.field for error in caught.value.errors}
    assert fields == {
        "app_secert",
        "app_secret",
        "session",
        "page_size",
        "sign_method",
        "session_expires_at",
    }


# -- mapping -------------------------------------------------------------------------------


def realistic_trade() -> dict[str, Any]:
    """A Tmall trade as TOP sends it: masked receiver, two lines, one without merchant code."""
    return {
        "tid": 3412345678901234567,
        "tid_str": "3412345678901234567",
        "status": "WAIT_SELLER_SEND_GOODS",
        "created": "2026-11-11 00:00:05",
        "modified": "2026-11-11 00:01:10",
        "buyer_open_uid": "AAHk3xVHANcJmQ2Fqs1bUyVb",
        "buyer_message": "请尽快发货，谢谢",
        "post_fee": "10.00",
        "receiver_name": "张*",
        "receiver_mobile": "138****5678",
        "receiver_state": "浙江省",
        "receiver_city": "杭州市",
        "receiver_district": "西湖区",
        "receiver_town": "文新街道",
        "receiver_address": "文三路***号",
        "receiver_zip": "310012",
        "orders": {
            "order": [
                {
                    "oid": 3412345678901234568,
                    "oid_str": "3412345678901234568",
                    "outer_sku_id": "TEE-2026-BLK-M",
                    "outer_iid": "TEE-2026",
                    "sku_id": "4412345678901",
                    "title": "纯棉短袖T恤 黑色 M",
                    "num": 2,
                    "price": "59.00",
                },
                {
                    "oid": 3412345678901234569,
                    "oid_str": "3412345678901234569",
                    "sku_id": "4412345678999",
                    "num_iid": 612345678999,
                    "title": "赠品 帆布袋",
                    "num": 1,
                    "price": "0.00",
                },
            ]
        },
    }


def as_record(trade: dict[str, Any]) -> RawRecord:
    return RawRecord(
        channel="taobao-flagship",
        external_id=str(trade["tid_str"]),
        modified_at=datetime(2026, 11, 10, 16, 1, 10, tzinfo=UTC),
        payload=trade,
    )


def test_a_realistic_trade_maps_with_the_right_warnings() -> None:
    """Chinese receiver data, masked phone, SKU fallback: mapped in UTC, warnings named."""
    mapped = map_trade(as_record(realistic_trade()))
    order = mapped.order
    assert order.external_id == "3412345678901234567"
    assert order.status is OrderStatus.PAID
    assert order.created_at == datetime(2026, 11, 10, 16, 0, 5, tzinfo=UTC)
    assert order.source_modified_at == datetime(2026, 11, 10, 16, 1, 10, tzinfo=UTC)
    assert (order.receiver.name, order.receiver.phone, order.receiver.masked) == (
        "张*",
        "138****5678",
        True,
    )
    assert order.address.one_line() == "浙江省杭州市西湖区文新街道文三路***号"
    assert order.address.masked
    assert order.shipping_fee.amount == Decimal("10.00")
    assert [(line.sku, line.quantity, line.unit_price.amount) for line in order.lines] == [
        ("TEE-2026-BLK-M", 2, Decimal("59.00")),
        ("4412345678999", 1, Decimal("0.00")),
    ]
    assert order.lines[0].external_line_id == "3412345678901234568"
    assert order.remark == "请尽快发货，谢谢"
    assert mapped.warnings == (
        "receiver data is masked by the platform",
        "address data is masked by the platform",
        "orders.order[1]: no outer_sku_id or outer_iid, SKU taken from TOP's sku_id 4412345678999",
    )


def test_encrypted_receiver_data_is_marked_as_such() -> None:
    """OAID-style ``~..~`` ciphertext marks the receiver as masked and says encrypted."""
    trade = {**realistic_trade(), "receiver_name": "~AgAAAAPjOLkx9P0=~0~", "receiver_mobile": ""}
    trade["receiver_phone"] = "~AgAAAAPjOLnC9b4=~1~"
    mapped = map_trade(as_record(trade))
    assert mapped.order.receiver.masked
    assert "receiver data is encrypted by the platform" in mapped.warnings


@pytest.mark.parametrize(("code", "status"), sorted(TAOBAO_STATUSES.items()))
def test_every_top_status_maps(code: str, status: OrderStatus) -> None:
    """Each status of the table maps to its canonical status."""
    assert map_trade(as_record({**realistic_trade(), "status": code})).order.status is status


def test_an_unknown_status_names_the_field_and_value() -> None:
    """An unlisted status fails the mapping naming channel, order, field and value."""
    with pytest.raises(InvalidOrder) as caught:
        map_trade(as_record({**realistic_trade(), "status": "TRADE_ON_THE_MOON"}))
    message = str(caught.value)
    assert "taobao-flagship order 3412345678901234567" in message
    assert "status" in message
    assert "TRADE_ON_THE_MOON" in message
