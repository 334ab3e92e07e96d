"""The Shopify-style adapter over real HTTP against a fake Admin API on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import logging
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import stamina

from fakes.webhook_shop_server import SHOPIFY_SECRET, SHOPIFY_TOKEN, FakeShopify, shopify_order
from ordercore import OrderCore, Settings
from ordercore.domain.channels import RawRecord, TimeWindow
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
from ordercore_adapters.channels.shopify import (
    SHOPIFY_FINANCIAL_STATUSES,
    ShopifyChannel,
    map_shopify_order,
    shopify_bounds,
)

ATTEMPTS = 3


@pytest.fixture(autouse=True)
def _retries_without_waiting() -> Iterator[None]:
    """stamina retries up to ATTEMPTS times, without sleeping between them."""
    with stamina.set_testing(True, attempts=ATTEMPTS, cap=True):
        yield


def config(shop: FakeShopify, **overrides: object) -> dict[str, object]:
    """A channel config pointing at the fake shop."""
    base: dict[str, object] = {
        "shop_url": shop.url,
        "access_token": SHOPIFY_TOKEN,
        "webhook_secrets": SHOPIFY_SECRET,
        "page_size": 20,
        "timeout": 2.0,
        "leak_rate": 1000,
    }
    base.update(overrides)
    return base


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def shop(clock: ManualClock) -> Iterator[FakeShopify]:
    with FakeShopify(clock=clock.now) as fake:
        yield fake


@pytest.fixture
async def channel(shop: FakeShopify) -> AsyncIterator[ShopifyChannel]:
    async with ShopifyChannel("shopify-intl", config(shop)) as opened:
        yield opened


@pytest.fixture
async def core(clock: ManualClock) -> AsyncIterator[OrderCore]:
    async with OrderCore.open("memory://", clock=clock, settings=Settings()) as opened:
        for sku in ("TEE-BLK-M", "4402"):
            await opened.inventory.receive(sku, 1_000)
        yield opened


def past_window(shop: FakeShopify, length: timedelta = timedelta(hours=1)) -> TimeWindow:
    """A whole-second window ending ten minutes behind the shop's clock."""
    end = shop.now().replace(microsecond=0) - timedelta(minutes=10)
    return TimeWindow(start=end - length, end=end)


class TestShopifyContract(ChannelContract):
    """ShopifyChannel against the ChannelPort contract suite, over HTTP."""

    @pytest.fixture
    async def channel_under_test(self) -> AsyncIterator[ChannelUnderTest]:
        with FakeShopify() as fake:
            async with ShopifyChannel("shopify-intl", config(fake)) as opened:
                yield opened, fake


# -- webhooks through the intake ---------------------------------------------------------


@pytest.mark.anyio
async def test_a_webhook_is_stored_once_and_its_redelivery_is_reported(
    core: OrderCore, shop: FakeShopify, channel: ShopifyChannel
) -> None:
    """orders/create is stored; the same X-Shopify-Webhook-Id again is ``replayed``."""
    shop.add_order("1001", shop.now() - timedelta(minutes=1))
    headers, body = shop.webhook(1001, "orders/create")
    first = await core.intake.ingest_webhook(channel, headers, body)
    again = await core.intake.ingest_webhook(channel, headers, body)
    assert (first.replayed, first.stored.created) == (False, 1)
    assert (again.replayed, again.message_id) == (True, headers["X-Shopify-Webhook-Id"])
    (order,) = await core.orders.list(limit=10)
    assert (order.external_id, order.status, order.currency) == ("1001", OrderStatus.PAID, "CNY")


@pytest.mark.anyio
async def test_a_tampered_or_forged_body_is_refused_and_nothing_is_stored(
    core: OrderCore, shop: FakeShopify, channel: ShopifyChannel
) -> None:
    """A changed body, or one signed with another secret: SignatureInvalid, nothing stored."""
    shop.add_order("1002", shop.now() - timedelta(minutes=1))
    headers, body = shop.webhook(1002)
    with pytest.raises(SignatureInvalid, match="mismatch"):
        await core.intake.ingest_webhook(channel, headers, body.replace(b"59.00", b"0.01"))
    forger = FakeShopify(secret="not-the-shops-secret")
    forger.put(shop.orders[1002])
    with pytest.raises(SignatureInvalid):
        await core.intake.ingest_webhook(channel, *forger.webhook(1002))
    assert await core.orders.list(limit=10) == []


@pytest.mark.anyio
async def test_create_update_and_cancel_webhooks_end_in_one_cancelled_order(
    core: OrderCore, shop: FakeShopify, channel: ShopifyChannel, clock: ManualClock
) -> None:
    """Three topics for one order, the update delivered twice: one order, released."""
    shop.add_order("1003", clock.now() - timedelta(minutes=3))
    created = shop.webhook(1003, "orders/create")
    shop.add_order("1003", clock.now() - timedelta(minutes=2))
    updated = shop.webhook(1003, "orders/updated")
    shop.put(shopify_order(1003, clock.now() - timedelta(minutes=1), cancelled=True))
    cancelled = shop.webhook(1003, "orders/cancelled")
    for delivery in (created, updated, updated, cancelled):
        await core.intake.ingest_webhook(channel, *delivery)
    (order,) = await core.orders.list(limit=10)
    assert order.status is OrderStatus.CANCELLED
    assert (await core.inventory.stock("TEE-BLK-M")).reserved == 0


@pytest.mark.anyio
async def test_the_safety_poll_finds_an_order_whose_webhook_was_lost(
    core: OrderCore, shop: FakeShopify, channel: ShopifyChannel, clock: ManualClock
) -> None:
    """Two orders, one webhook lost: the poll stores the missing one, the other unchanged."""
    start = clock.now() - timedelta(hours=1)
    shop.add_order("2001", start + timedelta(minutes=5))
    shop.add_order("2002", start + timedelta(minutes=6))
    await core.intake.ingest_webhook(channel, *shop.webhook(2001, "orders/create"))
    run = await core.intake.sync(channel, first_sync_from=start)
    assert run.status is RunStatus.SUCCEEDED
    assert (run.fetched, run.created, run.unchanged) == (2, 1, 1)
    assert sorted(o.external_id for o in await core.orders.list(limit=10)) == ["2001", "2002"]


@pytest.mark.anyio
async def test_other_topics_verify_and_carry_no_record(
    shop: FakeShopify, channel: ShopifyChannel
) -> None:
    """A signed ``products/update`` passes verification with no records."""
    shop.add_order("2003", shop.now())
    headers, body = shop.webhook(2003, "products/update")
    delivery = channel.verify_webhook(headers, body, shop.now())
    assert (delivery.topic, delivery.records) == ("products/update", ())


# -- the poll ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_half_open_window_is_sent_as_inclusive_utc_seconds_with_offset(
    shop: FakeShopify, channel: ShopifyChannel
) -> None:
    """[10:00:00.5, 11:00:00) asks for 10:00:01+00:00 .. 10:59:59+00:00, plus the count."""
    window = TimeWindow(
        start=datetime(2026, 11, 11, 10, 0, 0, 500_000, tzinfo=UTC),
        end=datetime(2026, 11, 11, 11, 0, tzinfo=UTC),
    )
    assert shopify_bounds(window) == (
        datetime(2026, 11, 11, 10, 0, 1, tzinfo=UTC),
        datetime(2026, 11, 11, 10, 59, 59, tzinfo=UTC),
    )
    recent = past_window(shop)
    await channel.fetch_orders(recent, None)
    (_, count_path, count_query), (_, list_path, list_query) = shop.requests
    assert count_path.endswith("orders/count.json")
    assert list_path.endswith("orders.json")
    assert count_query["updated_at_min"] == recent.start.isoformat()
    assert list_query["updated_at_max"] == (recent.end - timedelta(seconds=1)).isoformat()
    assert list_query["updated_at_max"].endswith("+00:00")
    assert list_query["status"] == "any"


@pytest.mark.anyio
async def test_pages_follow_the_link_header_cursor(
    shop: FakeShopify, channel: ShopifyChannel
) -> None:
    """45 orders in pages of 20: one count, then three pages through page_info only."""
    window = past_window(shop)
    for index in range(45):
        shop.add_order(str(3000 + index), window.start + timedelta(minutes=1, seconds=index))
    pages = await fetch_window(channel, window)
    assert [page.total for page in pages] == [45, 45, 45]
    assert [len(page.records) for page in pages] == [20, 20, 5]
    queries = [query for _, _, query in shop.requests]
    assert [sorted(query) for query in queries[2:]] == [["limit", "page_info"]] * 2
    assert len({r.external_id for page in pages for r in page.records}) == 45


@pytest.mark.anyio
async def test_an_order_inserted_while_paging_is_neither_lost_nor_doubled(
    shop: FakeShopify, channel: ShopifyChannel
) -> None:
    """Keyset cursors: an order added mid-paging behind the cursor shifts nothing."""
    window = past_window(shop)
    for index in range(30):
        shop.add_order(str(3100 + index), window.start + timedelta(minutes=1 + index))
    first = await channel.fetch_orders(window, None)
    shop.add_order("3199", window.start)  # sorts before every row already read
    assert first.next_page is not None
    second = await channel.fetch_orders(window, first.next_page)
    ids = [r.external_id for page in (first, second) for r in page.records]
    assert len(ids) == len(set(ids)) == 30
    assert (first.total, second.total) == (30, 30)  # the intake's re-scan picks up 3199


@pytest.mark.anyio
async def test_a_nearly_full_call_bucket_slows_the_next_call(shop: FakeShopify) -> None:
    """X-Shopify-Shop-Api-Call-Limit 39/40 at 2 calls/s leak: the next call waits >= 1 s."""
    shop.bucket_used = 39
    async with ShopifyChannel("s", config(shop, leak_rate=2, bucket_headroom=2)) as channel:
        await channel.platform_time()
        began = time.monotonic()
        await channel.platform_time()
    assert time.monotonic() - began >= 0.95


@pytest.mark.anyio
async def test_a_429_is_waited_out_for_its_retry_after(
    shop: FakeShopify, channel: ShopifyChannel
) -> None:
    """429 Retry-After: 1 -> about a second's wait, then the answer."""
    shop.fail_next(1, "429")
    began = time.monotonic()
    told = await channel.platform_time()
    assert time.monotonic() - began >= 0.95
    assert abs(told - shop.now()) <= timedelta(seconds=1)
    assert len(shop.requests) == 2


@pytest.mark.anyio
async def test_a_retry_after_past_max_wait_fails_at_once(shop: FakeShopify) -> None:
    """Retry-After longer than max_wait: RateLimited after one request."""
    shop.retry_after = "120"
    shop.fail_next(1, "429")
    async with ShopifyChannel("s", config(shop, max_wait=10)) as channel:
        with pytest.raises(RateLimited, match="past the 10 s"):
            await channel.platform_time()
    assert len(shop.requests) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["5xx", "malformed"])
async def test_transient_failures_are_retried(
    shop: FakeShopify, channel: ShopifyChannel, kind: str
) -> None:
    """Two 5xx / malformed answers, then the count on the third attempt."""
    window = past_window(shop)
    shop.add_order("3300", window.start)
    shop.fail_next(2, kind)
    page = await channel.fetch_orders(window, None)
    assert [record.external_id for record in page.records] == ["3300"]
    assert len(shop.requests) == ATTEMPTS + 1


@pytest.mark.anyio
async def test_a_revoked_token_is_not_retried(shop: FakeShopify, channel: ShopifyChannel) -> None:
    """401: ChannelAuthExpired after one request."""
    shop.expire_credentials()
    with pytest.raises(ChannelAuthExpired, match="401"):
        await channel.fetch_orders(past_window(shop), None)
    assert len(shop.requests) == 1


# -- mapping -----------------------------------------------------------------------------


def as_record(payload: dict[str, Any]) -> RawRecord:
    return RawRecord(
        channel="shopify-intl",
        external_id=str(payload["id"]),
        modified_at=datetime(2026, 11, 11, 0, 1, 10, tzinfo=UTC),
        payload=payload,
    )


def test_shop_local_times_convert_to_exact_utc_and_amounts_stay_decimal() -> None:
    """``2026-11-11T08:01:10+08:00`` is 00:01:10 UTC; "59.00" stays Decimal("59.00")."""
    payload = shopify_order(4001, datetime(2026, 11, 11, 0, 1, 10, tzinfo=UTC))
    assert payload["updated_at"] == "2026-11-11T08:01:10+08:00"
    mapped = map_shopify_order(as_record(payload))
    order = mapped.order
    assert order.source_modified_at == datetime(2026, 11, 11, 0, 1, 10, tzinfo=UTC)
    assert order.created_at == datetime(2026, 11, 10, 23, 56, 10, tzinfo=UTC)
    assert order.shipping_fee.amount == Decimal("10.00")
    assert [(line.sku, line.quantity, line.unit_price.amount) for line in order.lines] == [
        ("TEE-BLK-M", 2, Decimal("59.00")),
        ("4402", 1, Decimal("0.00")),
    ]
    assert mapped.warnings == ("line_items[1]: no sku, SKU taken from variant_id 4402",)


def test_other_currencies_are_kept() -> None:
    """A USD shop's amounts are USD Money."""
    payload = {**shopify_order(4002, datetime.now(UTC)), "currency": "USD"}
    order = map_shopify_order(as_record(payload)).order
    assert (order.currency, order.lines[0].unit_price.currency) == ("USD", "USD")


def test_redacted_shipping_address_is_marked_masked() -> None:
    """Redacted (``*``) name, phone and address mark receiver and address as masked."""
    mapped = map_shopify_order(as_record(shopify_order(4003, datetime.now(UTC), masked=True)))
    assert mapped.order.receiver.masked
    assert mapped.order.address.masked
    assert "address data is masked by the platform" in mapped.warnings


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        *[
            ({"financial_status": code}, status)
            for code, status in SHOPIFY_FINANCIAL_STATUSES.items()
        ],
        ({"fulfillment_status": "fulfilled"}, OrderStatus.SHIPPED),
        ({"cancelled_at": "2026-11-11T09:00:00+08:00"}, OrderStatus.CANCELLED),
    ],
)
def test_status_derivation(changes: dict[str, Any], status: OrderStatus) -> None:
    """cancelled_at wins, then a fulfilled order, then financial_status."""
    payload = {**shopify_order(4004, datetime.now(UTC)), **changes}
    assert map_shopify_order(as_record(payload)).order.status is status


def test_an_unknown_financial_status_names_the_value() -> None:
    """An unlisted financial_status fails naming the order and the value."""
    payload = {**shopify_order(4005, datetime.now(UTC)), "financial_status": "on_the_moon"}
    with pytest.raises(InvalidOrder, match=r"shopify-intl order 4005.*on_the_moon"):
        map_shopify_order(as_record(payload))


# -- secrets -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_secrets_never_appear_in_reprs_logs_or_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The access token and webhook secret stay out of reprs, log records and errors."""
    caplog.set_level(logging.DEBUG)
    raised: list[BaseException] = []
    with FakeShopify() as shop:
        async with ShopifyChannel("s", config(shop, timeout=0.2, max_wait=0)) as channel:
            shown = [repr(channel), repr(channel._verifier), repr(channel._http)]
            for kind in ("5xx", "hang", "429"):
                shop.fail_next(10, kind)
                with pytest.raises(ChannelUnavailable) as caught:
                    await channel.fetch_orders(past_window(shop), None)
                raised.append(caught.value)
            shop.fail_next(0)
            shop.add_order("5001", shop.now())
            headers, _body = shop.webhook(5001)
            with pytest.raises(SignatureInvalid) as forged:
                channel.verify_webhook(headers, json.dumps({"id": 1}).encode(), shop.now())
            raised.append(forged.value)
            shop.expire_credentials()
            with pytest.raises(ChannelAuthExpired) as expired:
                await channel.fetch_orders(past_window(shop), None)
            raised.append(expired.value)
    with pytest.raises(InvalidInput) as bad:
        ShopifyChannel("s", {"shop_url": "x", "access_token": 1, "webhook_secrets": [2]})
    raised.append(bad.value)
    texts = shown + ["".join(traceback.format_exception(error)) + repr(error) for error in raised]
    texts += [record.getMessage() + repr(vars(record)) for record in caplog.records]
    expected_sig = headers["X-Shopify-Hmac-Sha256"]
    assert base64.b64decode(expected_sig)  # the real signature of the real body
    for secret in (SHOPIFY_TOKEN, SHOPIFY_SECRET, expected_sig):
        assert not [text for text in texts if secret in text], secret
