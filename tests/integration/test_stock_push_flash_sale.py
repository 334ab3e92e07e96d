"""Issue 7's must-show: stock pushed to 4 shops follows a flash sale within the stated lag.

Four shops on fake platforms over real HTTP on 127.0.0.1 (two Taobao shops behind TOP
gateways, a Shopify-style shop, our H5 store) list one SKU. Buyers hit the four
storefronts concurrently; each platform accepts an order only while its listing shows
a unit and decrements it, as a marketplace does. Each accepted order comes back to
ordercore at once (the webhook path) and reserves stock in a SQLite file. Meanwhile
``core.stock_push.run`` detects the changes and the outbox worker pushes through the
adapters' ``push_stock``.

Asserted: the platforms together never sell more than ``sellable + budget`` plus the
orders in flight (sold on a platform, not yet reserved here: the ``U`` of the
guarantee in docs/stock-push.md); once stock is gone every shop shows 0 within the
stated lag; after a restock every shop shows the planned quantity within the lag;
no drift remains.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import anyio
import httpx
import pytest
import stamina

from fakes.shelf import Shelf
from fakes.top_server import APP_KEY, APP_SECRET, SESSION, FakeTopServer
from fakes.webhook_shop_server import (
    H5_SECRET,
    H5_TOKEN,
    SHOPIFY_SECRET,
    SHOPIFY_TOKEN,
    FakeH5Store,
    FakeShopify,
)
from ordercore import OrderCore
from ordercore.config import Settings
from ordercore.domain.stock_push import PublishRule, ShopPushConfig, StockPushPolicy
from ordercore.errors import InsufficientStock
from ordercore.ports.channels import ChannelPort
from ordercore.services.outbox import HandlerRegistry
from ordercore_adapters.channels.h5 import H5Channel
from ordercore_adapters.channels.shopify import ShopifyChannel
from ordercore_adapters.channels.taobao import TaobaoChannel
from support.postgres import fresh_postgres_database

pytestmark = pytest.mark.anyio

SKU = "FLASH-1"
STOCK = 300
DAMAGED = 60
RESTOCK = 40
BUDGET = 3
BUYERS = 24
POLL = DEBOUNCE = 0.02
OUTBOX_POLL = 0.02
LAG = 1.0
"""The stated lag: detection (POLL) + debounce + a worker's claim (OUTBOX_POLL) + the HTTP
push, with room for a shared, noisy 2-core machine."""


@pytest.fixture(autouse=True)
def _quick_retries() -> Iterator[None]:
    with stamina.set_testing(True, attempts=3, cap=True):
        yield


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shop.db'}"
    else:
        with fresh_postgres_database() as fresh:
            yield fresh


@dataclass
class Storefront:
    """One shop: its adapter, its platform's listings, and how a buyer orders there."""

    name: str
    channel: ChannelPort
    shelf: Shelf
    listing: str
    buy: Callable[[httpx.AsyncClient], Awaitable[str | None]]
    accepted: list[str] = field(default_factory=list)


def _top_buy(
    fake: FakeTopServer, listing: str
) -> Callable[[httpx.AsyncClient], Awaitable[str | None]]:
    async def buy(http: httpx.AsyncClient) -> str | None:
        answer = await http.post(
            fake.url, data={"method": "fake.storefront.buy", "listing": listing}
        )
        order: str | None = answer.json()["order_id"]
        return order

    return buy


def _json_buy(origin: str, listing: str) -> Callable[[httpx.AsyncClient], Awaitable[str | None]]:
    async def buy(http: httpx.AsyncClient) -> str | None:
        answer = await http.post(
            f"{origin}/storefront/buy", content=json.dumps({"listing": listing}).encode()
        )
        order: str | None = answer.json()["order_id"]
        return order

    return buy


def _storefronts(stack: ExitStack) -> list[Storefront]:
    fronts = []
    for name, item in (("taobao-flagship", "1001"), ("tmall-outlet", "2002")):
        top = stack.enter_context(FakeTopServer())
        listing = f"{item}:5001"
        top.shelf.add(listing)
        config = {
            "app_key": APP_KEY,
            "app_secret": APP_SECRET,
            "session": SESSION,
            "session_expires_at": (top.now() + timedelta(days=30)).isoformat(),
            "gateway_url": top.url,
            "requests_per_second": 1000,
            "timeout": 2.0,
        }
        fronts.append(
            Storefront(
                name, TaobaoChannel(name, config), top.shelf, listing, _top_buy(top, listing)
            )
        )
    shopify = stack.enter_context(FakeShopify())
    shopify.shelf.add("55:801")
    shopify_config = {
        "shop_url": shopify.url,
        "access_token": SHOPIFY_TOKEN,
        "webhook_secrets": SHOPIFY_SECRET,
        "leak_rate": 1000,
    }
    fronts.append(
        Storefront(
            "shopify-intl",
            ShopifyChannel("shopify-intl", shopify_config),
            shopify.shelf,
            "55:801",
            _json_buy(shopify.origin, "55:801"),
        )
    )
    h5 = stack.enter_context(FakeH5Store())
    h5.shelf.add(SKU)
    h5_config = {"base_url": h5.url, "api_token": H5_TOKEN, "webhook_secrets": H5_SECRET}
    fronts.append(
        Storefront(
            "h5-store", H5Channel("h5-store", h5_config), h5.shelf, SKU, _json_buy(h5.origin, SKU)
        )
    )
    return fronts


def _policy(fronts: list[Storefront]) -> StockPushPolicy:
    # Each shop may list all it sees; below 60 units the rule tightens to half.
    rule = PublishRule(ratio=Decimal(1), low_stock=60, low_ratio=Decimal("0.5"))
    return StockPushPolicy(
        shops={f.name: ShopPushConfig(rule=rule, listings={SKU: f.listing}) for f in fronts},
        budget=BUDGET,
        debounce_seconds=DEBOUNCE,
        poll_seconds=POLL,
    )


async def _until(check: Callable[[], Awaitable[bool]], limit: float) -> float:
    """Seconds until ``check()`` holds (fails the test past ``limit``)."""
    started = time.monotonic()
    with anyio.fail_after(limit):
        while not await check():  # noqa: ASYNC110 - polls fake platforms in other threads
            await anyio.sleep(0.005)
    return time.monotonic() - started


async def test_four_shops_follow_a_flash_sale_within_budget_and_lag(url: str) -> None:
    """Platforms never sell past stock + budget + in-flight; shops settle within the lag."""
    settings = Settings(outbox_poll_interval=timedelta(seconds=OUTBOX_POLL))
    with ExitStack() as stack:
        fronts = _storefronts(stack)
        by_name = {front.name: front for front in fronts}
        async with OrderCore.open(url, settings=settings) as core:
            await core.inventory.receive(SKU, STOCK)
            core.stock_push.configure(_policy(fronts), {f.name: f.channel for f in fronts})
            registry = HandlerRegistry()
            core.stock_push.register(registry)
            worker = core.outbox.worker(registry, concurrency=4)
            inflight = dict.fromkeys(by_name, 0)
            max_inflight = 0  # most orders one shop had sold but not yet reserved here (U)
            refused: list[str] = []
            rng = random.Random(7)

            async def shown_as_planned() -> bool:
                (plan,) = await core.stock_push.plan([SKU])
                return all(
                    by_name[item.shop].shelf.shows(by_name[item.shop].listing) == item.quantity
                    for item in plan.shops
                )

            async def buyer(http: httpx.AsyncClient) -> None:
                nonlocal inflight, max_inflight
                while await core.inventory.sellable(SKU) > 0:
                    front = rng.choice(fronts)
                    order = await front.buy(http)
                    if order is None:
                        await anyio.sleep(0.002)
                        continue
                    inflight[front.name] += 1
                    max_inflight = max(max_inflight, inflight[front.name])
                    front.accepted.append(order)
                    try:
                        await core.inventory.reserve(f"{front.name}:{order}", {SKU: 1})
                    except InsufficientStock:
                        refused.append(order)
                    finally:
                        inflight[front.name] -= 1

            async with anyio.create_task_group() as group:
                group.start_soon(core.stock_push.run)
                group.start_soon(worker.run)
                first = await _until(shown_as_planned, 10)
                await core.inventory.adjust(SKU, -DAMAGED, reason="damaged")
                dropped = await _until(shown_as_planned, LAG * 5)
                async with (
                    httpx.AsyncClient(timeout=5) as http,
                    anyio.create_task_group() as buyers,
                ):
                    for _ in range(BUYERS):
                        buyers.start_soon(buyer, http)
                settled = await _until(lambda: _all_show(fronts, 0), LAG * 5)
                await core.inventory.receive(SKU, RESTOCK)
                restocked = await _until(shown_as_planned, LAG * 5)

                async def recorded() -> bool:  # the handler records once the push landed
                    return await core.stock_push.drift() == []

                await _until(recorded, LAG * 5)
                (plan,) = await core.stock_push.plan([SKU])
                group.cancel_scope.cancel()
            for front in fronts:
                await front.channel.aclose()

        sold = sum(len(front.accepted) for front in fronts)
    print(
        f"\nsold {sold} of {STOCK - DAMAGED} (+{BUDGET} budget) across "
        f"{[len(f.accepted) for f in fronts]}; refused {len(refused)}; max in flight per shop "
        f"{max_inflight}; first push {first:.3f} s; a 60-unit write-off shown after "
        f"{dropped:.3f} s; all 0 after {settled:.3f} s; "
        f"restock shown after {restocked:.3f} s; stated lag {LAG} s"
    )
    assert sold - (STOCK - DAMAGED) == len(
        refused
    )  # every order beyond stock was one we could not reserve
    # The guarantee: beyond stock the platforms sell at most the budget plus the orders
    # one shop had in flight when its push landed (docs/stock-push.md); measured here it
    # is usually at most stock + budget.
    assert sold <= STOCK - DAMAGED + BUDGET + max_inflight
    assert dropped <= LAG
    assert settled <= LAG
    assert restocked <= LAG
    assert 0 < plan.total <= RESTOCK + BUDGET


def _all_show(fronts: list[Storefront], quantity: int) -> Awaitable[bool]:
    async def check() -> bool:
        return all(front.shelf.shows(front.listing) == quantity for front in fronts)

    return check()
