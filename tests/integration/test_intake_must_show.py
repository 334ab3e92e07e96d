"""Issue 4's must-show through real adapters on real storages.

Two HTTP channel adapters, each against its fake platform on 127.0.0.1 (the H5 store:
Standard Webhooks and page-number paging; the Shopify-style shop: HMAC webhooks,
``Link``-header cursor paging and second-resolution times), deliver the same 1,000
orders by poll and by webhooks: shuffled, each delivery duplicated (a replay of the
same message and a re-send under a new id) and each order's stale first version
arriving after its newest, while the poll runs. On a SQLite file and on a fresh
PostgreSQL database: exactly 1,000 orders stored, each at its newest version, each with
one reservation in storage.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import pytest
import stamina

from fakes.webhook_shop_server import (
    H5_SECRET,
    H5_TOKEN,
    SHOPIFY_SECRET,
    SHOPIFY_TOKEN,
    FakeH5Store,
    FakeHttpServer,
    FakeShopify,
    h5_order,
    shopify_order,
)
from ordercore import OrderCore
from ordercore.domain.intake import RunStatus
from ordercore.domain.inventory import ReservationStatus
from ordercore.domain.orders import OrderStatus
from ordercore.ports.channels import ChannelPort
from ordercore.ports.clock import ManualClock
from ordercore_adapters.channels.h5 import H5Channel
from ordercore_adapters.channels.shopify import ShopifyChannel

START = datetime(2026, 11, 11, tzinfo=UTC)
ORDERS = 1_000
Delivery = tuple[dict[str, str], bytes]


@dataclass(frozen=True)
class Shop:
    """One adapter and its fake platform, and what its orders look like once stored."""

    name: str
    fake: Callable[[ManualClock], FakeHttpServer]
    channel: Callable[[FakeHttpServer], ChannelPort]
    versions: Callable[[FakeHttpServer, int], tuple[str, list[Delivery], datetime]]
    """Put order ``index``'s two versions; (external id, its pushes, newest modified)."""
    lines: tuple[tuple[str, int], ...]


def _h5_versions(fake: FakeHttpServer, index: int) -> tuple[str, list[Delivery], datetime]:
    assert isinstance(fake, FakeH5Store)
    order_id = f"H5-{index:04d}"
    first_at = START - timedelta(hours=1) + timedelta(seconds=3 * index)
    newest_at = first_at + timedelta(milliseconds=500)
    fake.put(h5_order(order_id, first_at, status="pending_payment"))
    first = fake.webhook(order_id, "order.created")
    newest = h5_order(order_id, newest_at)
    newest["note"] = "v2"
    fake.put(newest)
    second = fake.webhook(order_id, "order.updated")
    resent = fake.webhook(order_id, "order.updated")  # the platform re-sends: a new id
    return order_id, [second, first, first, resent], newest_at  # first twice: a replay


def _shopify_versions(fake: FakeHttpServer, index: int) -> tuple[str, list[Delivery], datetime]:
    assert isinstance(fake, FakeShopify)
    order_id = 450_000 + index
    first_at = START - timedelta(hours=1) + timedelta(seconds=3 * index)
    newest_at = first_at + timedelta(seconds=1)  # Shopify stamps whole seconds
    first_version = shopify_order(order_id, first_at)
    first_version["financial_status"] = "pending"
    fake.put(first_version)
    first = fake.webhook(order_id, "orders/create")
    newest = shopify_order(order_id, newest_at)
    newest["note"] = "v2"
    fake.put(newest)
    second = fake.webhook(order_id, "orders/updated")
    resent = fake.webhook(order_id, "orders/updated")
    return str(order_id), [second, first, first, resent], newest_at


def _h5_channel(fake: FakeHttpServer) -> ChannelPort:
    assert isinstance(fake, FakeH5Store)
    config = {"base_url": fake.url, "api_token": H5_TOKEN, "webhook_secrets": H5_SECRET}
    return H5Channel("h5-store", config)


def _shopify_channel(fake: FakeHttpServer) -> ChannelPort:
    assert isinstance(fake, FakeShopify)
    config = {
        "shop_url": fake.url,
        "access_token": SHOPIFY_TOKEN,
        "webhook_secrets": SHOPIFY_SECRET,
        "leak_rate": 1000,  # the fake's bucket never fills; no pacing needed
    }
    return ShopifyChannel("shopify-intl", config)


SHOPS = {
    "h5": Shop(
        "h5",
        lambda clock: FakeH5Store(clock=clock.now),
        _h5_channel,
        _h5_versions,
        (("TEE-BLK-M", 2),),
    ),
    "shopify": Shop(
        "shopify",
        lambda clock: FakeShopify(clock=clock.now),
        _shopify_channel,
        _shopify_versions,
        (("4402", 1), ("TEE-BLK-M", 2)),  # the gift bag has no SKU: its variant id stands in
    ),
}


@pytest.fixture(autouse=True)
def _retries_without_waiting() -> Iterator[None]:
    with stamina.set_testing(True, attempts=3, cap=True):
        yield


@pytest.mark.anyio
@pytest.mark.parametrize("adapter", sorted(SHOPS))
@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_poll_and_webhooks_store_1000_orders_once_at_their_newest_version(
    db: str, adapter: str, request: pytest.FixtureRequest
) -> None:
    """Shuffled, duplicated and stale pushes racing a poll: 1,000 stored, reserved once each."""
    shop = SHOPS[adapter]
    clock = ManualClock(START)
    url = request.getfixturevalue(f"{db}_url")
    with shop.fake(clock) as fake:
        newest: dict[str, datetime] = {}
        deliveries: list[Delivery] = []
        for index in range(ORDERS):
            external_id, pushes, modified = shop.versions(fake, index)
            newest[external_id] = modified
            deliveries += pushes
        random.Random(4).shuffle(deliveries)
        channel = shop.channel(fake)
        try:
            await _deliver_and_check(url, clock, channel, deliveries, newest, shop.lines)
        finally:
            await channel.aclose()


async def _deliver_and_check(
    url: str,
    clock: ManualClock,
    channel: ChannelPort,
    deliveries: list[Delivery],
    newest: dict[str, datetime],
    lines: tuple[tuple[str, int], ...],
) -> None:
    async with OrderCore.open(url, clock=clock) as core:
        for sku, _ in lines:
            await core.inventory.receive(sku, 100_000)
        replayed: list[bool] = []
        limit = anyio.CapacityLimiter(8)

        async def push(headers: dict[str, str], body: bytes) -> None:
            async with limit:
                report = await core.intake.ingest_webhook(channel, headers, body)
            replayed.append(report.replayed)

        half = len(deliveries) // 2
        async with anyio.create_task_group() as group:
            for headers, body in deliveries[:half]:
                group.start_soon(push, headers, body)
        async with anyio.create_task_group() as group:  # the poll races the other half
            group.start_soon(core.intake.sync, channel)
            for headers, body in deliveries[half:]:
                group.start_soon(push, headers, body)

        orders = await core.orders.list(limit=5 * ORDERS)
        assert len(orders) == ORDERS
        assert {order.external_id: order.source_modified_at for order in orders} == newest
        assert {(order.status, order.remark) for order in orders} == {(OrderStatus.PAID, "v2")}
        reservations = [await core.inventory.reservation(order.id) for order in orders]
        assert {r.status for r in reservations} == {ReservationStatus.ACTIVE}
        assert {tuple(sorted((ln.sku, ln.quantity) for ln in r.lines)) for r in reservations} == {
            lines
        }
        for sku, quantity in lines:
            assert (await core.inventory.stock(sku)).reserved == ORDERS * quantity
        assert await core.inventory.verify() == []
        assert replayed.count(True) == ORDERS  # each replayed message id was recognised
        [run] = await core.intake.runs(channel.name)
        assert (run.status, run.fetched) == (RunStatus.SUCCEEDED, ORDERS)
