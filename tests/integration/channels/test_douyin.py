"""The Douyin shop (抖店) adapter over real HTTP against a fake gateway on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import stamina
from _shared import RefreshingChannelSuite

from fakes.douyin_server import (
    ACCESS_TOKEN,
    APP_KEY,
    APP_SECRET,
    REFRESH_TOKEN,
    FakeDouyin,
    shop_order,
)
from ordercore import OrderCore, Settings
from ordercore.domain.channels import RawRecord, RecordKind, TimeWindow
from ordercore.domain.intake import RunStatus
from ordercore.domain.orders import OrderStatus
from ordercore.errors import (
    ChannelAuthExpired,
    ChannelUnavailable,
    InvalidInput,
    InvalidOrder,
    SignatureInvalid,
)
from ordercore.ports.clock import ManualClock
from ordercore.testing.channel_contract import ChannelContract, ChannelUnderTest, fetch_window
from ordercore_adapters.channels._platform.json_http import RateLimited
from ordercore_adapters.channels.douyin import (
    DOUYIN_STATUSES,
    DouyinApiError,
    DouyinChannel,
    PushHint,
    canonical_string,
    douyin_bounds,
    map_shop_order,
    param_json,
    sign_douyin,
)

ATTEMPTS = 3


@pytest.fixture(autouse=True)
def _retries_without_waiting() -> Iterator[None]:
    """stamina retries up to ATTEMPTS times, without sleeping between them."""
    with stamina.set_testing(True, attempts=ATTEMPTS, cap=True):
        yield


def config(server: FakeDouyin, **overrides: object) -> dict[str, object]:
    """A channel config pointing at the fake gateway."""
    base: dict[str, object] = {
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "access_token": ACCESS_TOKEN,
        "access_token_expires_at": (server.now() + timedelta(days=7)).isoformat(),
        "gateway_url": server.url,
        "page_size": 20,
        "timeout": 2.0,
        "rate_limit_wait": 0.2,
    }
    base.update(overrides)
    return base


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def server(clock: ManualClock) -> Iterator[FakeDouyin]:
    with FakeDouyin(clock=clock.now) as fake:
        yield fake


@pytest.fixture
async def channel(server: FakeDouyin, clock: ManualClock) -> AsyncIterator[DouyinChannel]:
    async with DouyinChannel("douyin-shop", config(server), clock=clock) as opened:
        yield opened


@pytest.fixture
async def core(clock: ManualClock) -> AsyncIterator[OrderCore]:
    async with OrderCore.open("memory://", clock=clock, settings=Settings()) as opened:
        for sku in ("TEE-BLK-M", "1754000000002"):
            await opened.inventory.receive(sku, 1_000)
        yield opened


def past_window(server: FakeDouyin, length: timedelta = timedelta(hours=1)) -> TimeWindow:
    """A whole-second window ending ten minutes behind the gateway's clock."""
    end = server.now().replace(microsecond=0) - timedelta(minutes=10)
    return TimeWindow(start=end - length, end=end)


class TestDouyinContract(ChannelContract):
    """DouyinChannel against the ChannelPort contract suite, over HTTP."""

    @pytest.fixture
    async def channel_under_test(self) -> AsyncIterator[ChannelUnderTest]:
        with FakeDouyin() as fake:
            async with DouyinChannel("douyin-shop", config(fake)) as opened:
                yield opened, fake


# -- signing -------------------------------------------------------------------------------


def test_the_canonical_string_has_the_documented_shape() -> None:
    """secret + app_key.. + method.. + param_json.. + timestamp.. + v2 + secret, MD5 hex."""
    body = param_json({"size": 10, "page": 0, "order_by": "update_time"})
    assert body == '{"order_by":"update_time","page":0,"size":10}'
    text = canonical_string("123", "sec", "order.searchList", body, "2026-11-11 08:00:00")
    assert text == (
        "sec"
        "app_key123"
        "methodorder.searchList"
        'param_json{"order_by":"update_time","page":0,"size":10}'
        "timestamp2026-11-11 08:00:00"
        "v2"
        "sec"
    )
    digest = sign_douyin("123", "sec", "order.searchList", body, "2026-11-11 08:00:00")
    assert digest == hashlib.md5(text.encode()).hexdigest()


def test_hmac_sha256_signs_the_same_string_keyed_with_the_secret() -> None:
    """hmac-sha256 is HMAC-SHA256(secret, canonical string), as the PyPI ``doudian`` SDK does."""
    body = param_json({"page": 0, "size": 100})
    text = canonical_string(APP_KEY, APP_SECRET, "order.searchList", body, "2026-11-11 08:00:00")
    expected = hmac.new(APP_SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()
    assert (
        sign_douyin(
            APP_KEY, APP_SECRET, "order.searchList", body, "2026-11-11 08:00:00", "hmac-sha256"
        )
        == expected
    )


def test_param_json_keeps_chinese_and_sorts_nested_keys() -> None:
    """Non-ASCII stays as UTF-8 text; nested objects are sorted too; no whitespace."""
    assert param_json({"b": {"z": 1, "a": "张"}, "a": [2, 1]}) == '{"a":[2,1],"b":{"a":"张","z":1}}'


@pytest.mark.anyio
@pytest.mark.parametrize("sign_method", ["md5", "hmac-sha256"])
async def test_the_gateway_accepts_each_sign_method(
    server: FakeDouyin, clock: ManualClock, sign_method: str
) -> None:
    """Both sign methods pass the fake's own (independent) verification."""
    window = past_window(server)
    server.add_order("6900000000000000001", window.start)
    async with DouyinChannel("d", config(server, sign_method=sign_method), clock=clock) as channel:
        page = await channel.fetch_orders(window, None)
    assert [record.external_id for record in page.records] == ["6900000000000000001"]


@pytest.mark.anyio
async def test_a_wrong_secret_is_refused_and_not_retried(
    server: FakeDouyin, clock: ManualClock
) -> None:
    """A bad signature is a DouyinApiError after one request."""
    async with DouyinChannel("d", config(server, app_secret="nope"), clock=clock) as channel:
        with pytest.raises(DouyinApiError, match=r"isv\.sign-invalid"):
            await channel.fetch_orders(past_window(server), None)
    assert len(server.requests) == 1


# -- the poll ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_half_open_window_is_sent_as_inclusive_unix_seconds(
    server: FakeDouyin, channel: DouyinChannel
) -> None:
    """[t, t + 1 h) goes out as update_start_time t .. update_end_time t + 3599, page 0."""
    window = past_window(server)
    await channel.fetch_orders(window, None)
    (sent,) = server.bodies
    start = int(window.start.timestamp())
    assert (sent["update_start_time"], sent["update_end_time"]) == (start, start + 3599)
    assert (sent["page"], sent["size"]) == (0, 20)
    half = TimeWindow(
        start=window.start + timedelta(milliseconds=500),
        end=window.start + timedelta(seconds=2, milliseconds=500),
    )
    assert douyin_bounds(half) == (start + 1, start + 2)


@pytest.mark.anyio
async def test_pages_run_from_zero_with_the_total(
    server: FakeDouyin, channel: DouyinChannel
) -> None:
    """45 orders in pages of 20: pages 0, 1, 2, each with total 45."""
    window = past_window(server)
    for index in range(45):
        server.add_order(str(6_900_000_000 + index), window.start + timedelta(seconds=index))
    pages = await fetch_window(channel, window)
    assert [body["page"] for body in server.bodies] == [0, 1, 2]
    assert [page.total for page in pages] == [45, 45, 45]
    assert len({r.external_id for page in pages for r in page.records}) == 45


@pytest.mark.anyio
async def test_a_rate_limit_is_waited_out(server: FakeDouyin, channel: DouyinChannel) -> None:
    """Two traffic-control answers: the client waits 0.2 s each, then gets the page."""
    window = past_window(server)
    server.add_order("6900000000000000002", window.start)
    server.rate_limit_next(2)
    began = time.monotonic()
    page = await channel.fetch_orders(window, None)
    assert time.monotonic() - began >= 0.38
    assert [record.external_id for record in page.records] == ["6900000000000000002"]
    assert len(server.requests) == 3


@pytest.mark.anyio
async def test_a_rate_limit_past_max_wait_gives_up(server: FakeDouyin, clock: ManualClock) -> None:
    """Traffic control that outlasts max_wait ends in RateLimited (a ChannelUnavailable)."""
    server.rate_limit_next(100)
    async with DouyinChannel("d", config(server, max_wait=0.5), clock=clock) as channel:
        with pytest.raises(RateLimited, match=r"dop\.traffic-control"):
            await channel.fetch_orders(past_window(server), None)
    assert len(server.requests) == 3  # waits 0.2 + 0.2, the third would pass 0.5


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["isp", "5xx", "malformed"])
async def test_transient_failures_are_retried(
    server: FakeDouyin, channel: DouyinChannel, kind: str
) -> None:
    """Two isp.* / 5xx / malformed-JSON answers, then the page on the third attempt."""
    window = past_window(server)
    server.add_order("6900000000000000003", window.start)
    if kind == "isp":
        server.isp_next(2)
    else:
        server.fail_next(2, kind)
    page = await channel.fetch_orders(window, None)
    assert [record.external_id for record in page.records] == ["6900000000000000003"]
    assert len(server.requests) == ATTEMPTS


@pytest.mark.anyio
async def test_an_expired_token_is_not_retried(server: FakeDouyin, channel: DouyinChannel) -> None:
    """Code 30002: ChannelAuthExpired after one request."""
    server.expire_credentials()
    with pytest.raises(ChannelAuthExpired, match="authorise the app again"):
        await channel.fetch_orders(past_window(server), None)
    assert len(server.requests) == 1


# -- pushes --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_push_stores_the_order_at_its_detail_version(
    core: OrderCore, server: FakeDouyin, channel: DouyinChannel, clock: ManualClock
) -> None:
    """A push names an id: the order is fetched (order.orderDetail) and stored at that version."""
    start = clock.now() - timedelta(hours=1)
    server.add_order("6900000000000000010", start + timedelta(minutes=5))
    headers, body = server.push("6900000000000000010", "101", msg_id="m-10")
    changed = start + timedelta(minutes=20)
    server.put(shop_order("6900000000000000010", changed, status=3))  # changed since the push
    report = await core.intake.ingest_webhook(channel, headers, body)
    assert (report.replayed, report.stored.created, report.message_id) == (False, 1, "m-10")
    assert report.stored.errors == []
    assert server.detail_requests == ["6900000000000000010"]
    (order,) = await core.orders.list(limit=10)
    assert order.external_id == "6900000000000000010"
    assert order.source_modified_at == changed
    assert channel.take_push_hints() == [PushHint("6900000000000000010", "101", "m-10")]
    run = await core.intake.sync(channel, first_sync_from=start)
    assert (run.status, run.created, run.unchanged) == (RunStatus.SUCCEEDED, 0, 1)


@pytest.mark.anyio
async def test_a_push_is_deduplicated_by_message_id_before_any_lookup(
    core: OrderCore, server: FakeDouyin, channel: DouyinChannel, clock: ManualClock
) -> None:
    """The same msg_id from another process: reported replayed, no second detail fetch."""
    server.add_order("6900000000000000012", clock.now() - timedelta(minutes=3))
    headers, body = server.push("6900000000000000012", msg_id="m-12")
    first = await core.intake.ingest_webhook(channel, headers, body)
    async with DouyinChannel("douyin-shop", config(server), clock=clock) as other_process:
        again = await core.intake.ingest_webhook(other_process, headers, body)
    assert (first.replayed, first.stored.created) == (False, 1)
    assert (again.replayed, again.stored.created) == (True, 0)
    assert server.detail_requests == ["6900000000000000012"]
    assert len(await core.orders.list(limit=10)) == 1


@pytest.mark.anyio
async def test_a_push_for_an_order_the_platform_no_longer_returns_is_kept_as_a_reject(
    core: OrderCore, server: FakeDouyin, channel: DouyinChannel
) -> None:
    """An id order.orderDetail does not know: nothing stored, a push_hint reject records it."""
    headers, body = server.push("6900000000000000099", msg_id="m-99")
    report = await core.intake.ingest_webhook(channel, headers, body)
    assert (report.stored.created, report.stored.rejected) == (0, 1)
    assert "no longer returns" in report.stored.errors[0]
    (reject,) = await core.intake.rejects("douyin-shop")
    assert (reject.kind, reject.external_id) == (RecordKind.PUSH_HINT, "6900000000000000099")
    assert reject.payload["message_id"] == "m-99"
    assert await core.orders.list(limit=10) == []


@pytest.mark.anyio
async def test_a_replayed_push_is_refused_here_and_reported_elsewhere(
    core: OrderCore, server: FakeDouyin, channel: DouyinChannel, clock: ManualClock
) -> None:
    """Same msg_id again: SignatureInvalid by the guard; another process's core says replayed."""
    server.add_order("6900000000000000011", clock.now())
    headers, body = server.push("6900000000000000011", msg_id="m-11")
    await core.intake.ingest_webhook(channel, headers, body)
    with pytest.raises(SignatureInvalid, match="replayed message 'm-11'"):
        await core.intake.ingest_webhook(channel, headers, body)
    async with DouyinChannel("douyin-shop", config(server), clock=clock) as other_process:
        again = await core.intake.ingest_webhook(other_process, headers, body)
    assert again.replayed


@pytest.mark.anyio
async def test_tampered_and_forged_pushes_are_refused(
    core: OrderCore, server: FakeDouyin, channel: DouyinChannel, clock: ManualClock
) -> None:
    """A changed body or another secret's signature: SignatureInvalid, no hint, nothing stored."""
    server.add_order("6900000000000000012", clock.now())
    headers, body = server.push("6900000000000000012")
    with pytest.raises(SignatureInvalid, match="event-sign mismatch"):
        await core.intake.ingest_webhook(channel, headers, body.replace(b"101", b"106"))
    with pytest.raises(SignatureInvalid):
        await core.intake.ingest_webhook(
            channel, *server.push("6900000000000000012", secret="other-secret")
        )
    assert channel.take_push_hints() == []
    assert await core.orders.list(limit=10) == []


# -- mapping -------------------------------------------------------------------------------


def as_record(order: dict[str, Any]) -> RawRecord:
    return RawRecord(
        channel="douyin-shop",
        external_id=str(order["order_id"]),
        modified_at=datetime.fromtimestamp(order["update_time"], UTC),
        payload=order,
    )


def test_fen_unix_seconds_and_masking_map_exactly() -> None:
    """5900 fen is 59.00 yuan; unix seconds are UTC; masked receiver marked; SKU fallback."""
    updated = datetime(2026, 11, 10, 16, 1, 10, tzinfo=UTC)  # 00:01:10 in Shanghai
    mapped = map_shop_order(as_record(shop_order("6900000000000000020", updated)))
    order = mapped.order
    assert order.source_modified_at == updated
    assert order.created_at == updated - timedelta(minutes=5)
    assert order.shipping_fee.amount == Decimal("10.00")
    assert [(line.sku, line.quantity, line.unit_price.amount) for line in order.lines] == [
        ("TEE-BLK-M", 2, Decimal("59.00")),
        ("1754000000002", 1, Decimal("0.00")),
    ]
    assert order.receiver.masked
    assert order.address.masked
    assert order.address.one_line() == "浙江省杭州市余杭区五常街道文一西路***号"
    assert mapped.warnings == (
        "receiver data is masked by the platform",
        "address data is masked by the platform",
        "sku_order_list[1]: no code or out_sku_id, SKU taken from the platform's sku_id "
        "1754000000002",
    )


def test_encrypted_receiver_data_is_marked_as_such() -> None:
    """Only ciphertext (encrypt_post_*): receiver masked, the warning says encrypted."""
    order = shop_order("6900000000000000021", datetime.now(UTC), encrypted=True)
    mapped = map_shop_order(as_record(order))
    assert mapped.order.receiver.masked
    assert "receiver data is encrypted by the platform" in mapped.warnings


@pytest.mark.parametrize(("code", "status"), sorted(DOUYIN_STATUSES.items()))
def test_every_status_maps(code: str, status: OrderStatus) -> None:
    """Each order_status of the table maps to its canonical status."""
    order = {**shop_order("6900000000000000022", datetime.now(UTC)), "order_status": int(code)}
    assert map_shop_order(as_record(order)).order.status is status


def test_an_unknown_status_names_the_field_and_value() -> None:
    """An unlisted order_status fails naming channel, order, field and value."""
    order = {**shop_order("6900000000000000023", datetime.now(UTC)), "order_status": 999}
    with pytest.raises(InvalidOrder, match=r"douyin-shop order 6900000000000000023.*order_status"):
        map_shop_order(as_record(order))


# -- secrets -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_secrets_never_appear_in_reprs_logs_or_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """App secret and access token stay out of reprs, log records and errors."""
    caplog.set_level(logging.DEBUG)
    raised: list[BaseException] = []
    with FakeDouyin(echo_token_in_errors=True) as server:
        conf = config(server, timeout=0.2, max_wait=0)
        async with DouyinChannel("d", conf) as channel:
            shown = [repr(channel), repr(channel._verifier), repr(channel._http)]
            arrangements: list[Callable[[], None]] = [
                lambda: server.fail_next(10, "5xx"),
                lambda: server.fail_next(10, "hang"),
                lambda: server.rate_limit_next(10),
                server.expire_credentials,
            ]
            for arrange in arrangements:
                server.fail_next(0)
                arrange()
                with pytest.raises((ChannelUnavailable, ChannelAuthExpired)) as caught:
                    await channel.fetch_orders(past_window(server), None)
                raised.append(caught.value)
            headers, body = server.push("6900000000000000030")
            with pytest.raises(SignatureInvalid) as forged:
                channel.verify_webhook(headers, body + b" ", server.now())
            raised.append(forged.value)
    with pytest.raises(InvalidInput) as bad:
        DouyinChannel("d", {"app_secret": 5, "access_token": [ACCESS_TOKEN], "gateway_url": "x"})
    raised.append(bad.value)
    texts = shown + ["".join(traceback.format_exception(error)) + repr(error) for error in raised]
    texts += [record.getMessage() + repr(vars(record)) for record in caplog.records]
    assert any("<redacted>" in text for text in texts)  # the echoed token, scrubbed
    for secret in (APP_SECRET, ACCESS_TOKEN):
        assert not [text for text in texts if secret in text], secret


def test_push_bodies_round_trip_through_json() -> None:
    """A push's data field is JSON text naming the order (p_id) and its sub-orders."""
    with FakeDouyin() as server:
        server.add_order("6900000000000000031", server.now())
        _, body = server.push("6900000000000000031")
    (message,) = json.loads(body)
    data = json.loads(message["data"])
    assert data["p_id"] == 6900000000000000031
    assert data["s_ids"] == [69000000000000000311, 69000000000000000312]


class TestDouyinRefresh(RefreshingChannelSuite):
    """Token refresh through token.refresh (``_shared``), for DouyinChannel."""

    def open_refreshing(self, server: Any, **overrides: object) -> DouyinChannel:
        return DouyinChannel(
            "shop", config(server, **{"refresh_token": REFRESH_TOKEN, **overrides})
        )

    def window(self, server: Any, length: timedelta | None = None) -> TimeWindow:
        return past_window(server) if length is None else past_window(server, length)

    def sent_token(self, server: Any) -> str:
        return str(server.requests[-1][2]["access_token"])

    def echo_secrets(self, server: Any) -> None:
        server.echo_token_in_errors = True
