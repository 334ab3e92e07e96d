"""Each channel adapter's after-sales feed over real HTTP against its fake platform.

One suite, one harness per adapter: the harness starts the fake, opens the adapter and
puts requests on the platform in the platform's own shape. The suite syncs through
``core.after_sales`` and checks paging, window caps, mapping and exactly-once storage
across re-polls and stale versions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import pytest
import stamina

from fakes import douyin_server, jos_server, pdd_server
from fakes.douyin_server import FakeDouyin
from fakes.jos_server import FakeJosServer
from fakes.pdd_server import FakePddServer
from fakes.top_server import APP_KEY, APP_SECRET, SESSION, FakeTopServer, sample_refund
from fakes.webhook_shop_server import (
    H5_SECRET,
    H5_TOKEN,
    SHOPIFY_SECRET,
    SHOPIFY_TOKEN,
    FakeH5Store,
    FakeShopify,
    shopify_order,
)
from ordercore import OrderCore, Settings
from ordercore.domain.after_sales import AfterSaleKind, AfterSaleStatus
from ordercore.domain.channels import TimeWindow
from ordercore.domain.intake import RunStatus
from ordercore.errors import ChannelAuthExpired, OrderCoreError
from ordercore.ports.channels import AfterSalesPort, ChannelPort
from ordercore_adapters.channels.douyin import DouyinChannel
from ordercore_adapters.channels.h5 import H5Channel
from ordercore_adapters.channels.jd import JdChannel
from ordercore_adapters.channels.pinduoduo import PinduoduoChannel
from ordercore_adapters.channels.shopify import ShopifyChannel
from ordercore_adapters.channels.taobao import TaobaoChannel


@pytest.fixture(autouse=True)
def _retries_without_waiting() -> Iterator[None]:
    with stamina.set_testing(True, attempts=3, cap=True):
        yield


class Harness(Protocol):
    """An adapter on its fake platform."""

    channel: ChannelPort
    page_size: int
    max_window: timedelta
    no_return_kind: AfterSaleKind
    """What a request without goods coming back maps to on this platform."""
    listed_status: AfterSaleStatus
    """What the suite's default status ("returning") maps to on this platform."""
    platform_cap: bool
    """Whether the fake refuses windows longer than ``max_window`` (the platform's cap)."""

    def order_key(self, order_id: str) -> str:
        """The platform's id of the suite's order ``order_id``."""
        ...

    def now(self) -> datetime:
        """The platform's clock."""
        ...

    def put(self, request_id: str, order_id: str, modified: datetime, **kind: Any) -> None:
        """Create or change a request: ``status`` in (requested, approved, returning,
        refunded, closed) and ``returns`` (goods come back) in the platform's terms."""
        ...

    def pages_served(self) -> int:
        """After-sales pages (or order pages carrying them) the fake answered."""
        ...

    def expire(self) -> None:
        """The platform stops accepting the channel's token."""
        ...


class _Plain:
    listed_status = AfterSaleStatus.RETURNING
    platform_cap = True
    server: Any

    def expire(self) -> None:
        self.server.expire_credentials()

    def order_key(self, order_id: str) -> str:
        return order_id


# -- harnesses ------------------------------------------------------------------------------

_TOP_STATUS = {
    "requested": "WAIT_SELLER_AGREE",
    "approved": "WAIT_BUYER_RETURN_GOODS",
    "returning": "WAIT_SELLER_CONFIRM_GOODS",
    "refunded": "SUCCESS",
    "closed": "CLOSED",
}


class TaobaoHarness(_Plain):
    page_size = 20
    max_window = timedelta(days=1)
    no_return_kind = AfterSaleKind.REFUND_ONLY

    def __init__(self, server: FakeTopServer, channel: TaobaoChannel) -> None:
        self.server = server
        self.channel = channel

    def now(self) -> datetime:
        return self.server.now()

    def put(
        self,
        request_id: str,
        order_id: str,
        modified: datetime,
        *,
        status: str = "returning",
        returns: bool = True,
        units: int = 1,
    ) -> None:
        self.server.put_refund(
            sample_refund(
                request_id,
                order_id,
                modified,
                status=_TOP_STATUS[status],
                has_good_return=returns,
                num=units,
            )
        )

    def pages_served(self) -> int:
        return len(self.server.refund_pages)


@asynccontextmanager
async def taobao() -> AsyncIterator[TaobaoHarness]:
    with FakeTopServer() as server:
        config = {
            "app_key": APP_KEY,
            "app_secret": APP_SECRET,
            "session": SESSION,
            "session_expires_at": (server.now() + timedelta(days=30)).isoformat(),
            "gateway_url": server.url,
            "page_size": TaobaoHarness.page_size,
            "requests_per_second": 1000,
            "timeout": 2.0,
        }
        async with TaobaoChannel("taobao-flagship", config) as channel:
            yield TaobaoHarness(server, channel)


_PDD_STATUS = {"requested": 3, "approved": 7, "returning": 33, "refunded": 10, "closed": 11}


class PinduoduoHarness(_Plain):
    page_size = 20
    max_window = timedelta(minutes=30)
    no_return_kind = AfterSaleKind.REFUND_ONLY

    def __init__(self, server: FakePddServer, channel: PinduoduoChannel) -> None:
        self.server = server
        self.channel = channel

    def now(self) -> datetime:
        return self.server.now()

    def put(
        self,
        request_id: str,
        order_id: str,
        modified: datetime,
        *,
        status: str = "returning",
        returns: bool = True,
        units: int = 1,
    ) -> None:
        self.server.put_refund(
            pdd_server.sample_refund(
                request_id,
                order_id,
                modified,
                after_sales_type=3 if returns else 2,
                after_sales_status=_PDD_STATUS[status],
                goods_number=units,
            )
        )

    def pages_served(self) -> int:
        return len(self.server.refund_pages)


@asynccontextmanager
async def pinduoduo() -> AsyncIterator[PinduoduoHarness]:
    with FakePddServer() as server:
        config = {
            "client_id": pdd_server.CLIENT_ID,
            "client_secret": pdd_server.CLIENT_SECRET,
            "access_token": pdd_server.ACCESS_TOKEN,
            "access_token_expires_at": (server.now() + timedelta(days=30)).isoformat(),
            "gateway_url": server.url,
            "page_size": PinduoduoHarness.page_size,
            "requests_per_second": 1000,
            "timeout": 2.0,
        }
        async with PinduoduoChannel("pdd-main", config) as channel:
            yield PinduoduoHarness(server, channel)


_JD_STATUS = {
    "requested": 10001,
    "approved": 10012,
    "returning": 10004,
    "refunded": 10010,
    "closed": 10011,
}


class JdHarness(_Plain):
    page_size = 20
    max_window = timedelta(days=1)
    no_return_kind = AfterSaleKind.RESEND

    def __init__(self, server: FakeJosServer, channel: JdChannel) -> None:
        self.server = server
        self.channel = channel

    def now(self) -> datetime:
        return self.server.now()

    def put(
        self,
        request_id: str,
        order_id: str,
        modified: datetime,
        *,
        status: str = "returning",
        returns: bool = True,
        units: int = 1,
    ) -> None:
        self.server.put_service(
            jos_server.sample_service(
                request_id,
                order_id,
                modified,
                customer_expect=10 if returns else 80,
                service_status=_JD_STATUS[status],
                count=units,
            )
        )

    def pages_served(self) -> int:
        return len(self.server.service_pages)


@asynccontextmanager
async def jd() -> AsyncIterator[JdHarness]:
    with FakeJosServer() as server:
        config = {
            "app_key": jos_server.APP_KEY,
            "app_secret": jos_server.APP_SECRET,
            "access_token": jos_server.ACCESS_TOKEN,
            "access_token_expires_at": (server.now() + timedelta(days=30)).isoformat(),
            "gateway_url": server.url,
            "page_size": JdHarness.page_size,
            "requests_per_second": 1000,
            "timeout": 2.0,
        }
        async with JdChannel("jd-pop", config) as channel:
            yield JdHarness(server, channel)


_DOUYIN_STATUS = {"requested": 6, "approved": 7, "returning": 11, "refunded": 12, "closed": 28}


class DouyinHarness(_Plain):
    page_size = 20
    max_window = timedelta(days=1)
    no_return_kind = AfterSaleKind.REFUND_ONLY

    def __init__(self, server: FakeDouyin, channel: DouyinChannel) -> None:
        self.server = server
        self.channel = channel

    def now(self) -> datetime:
        return self.server.now()

    def put(
        self,
        request_id: str,
        order_id: str,
        modified: datetime,
        *,
        status: str = "returning",
        returns: bool = True,
        units: int = 1,
    ) -> None:
        updated = int(modified.timestamp())
        self.server.put_after_sale(
            {
                "aftersale_info": {
                    "aftersale_id": request_id,
                    "aftersale_type": 0 if returns else 2,
                    "aftersale_status": _DOUYIN_STATUS[status],
                    "refund_amount": 5900,
                    "reason": "不想要了",
                    "return_logistics_code": "YT9876543210" if returns else "",
                    "create_time": updated - 3600,
                    "update_time": updated,
                },
                "order_info": {
                    "shop_order_id": order_id,
                    "related_order_info": [
                        {
                            "sku_order_id": f"{order_id}1",
                            "shop_sku_code": "TEE-BLK-M",
                            "aftersale_item_num": units,
                        }
                    ],
                },
            }
        )

    def pages_served(self) -> int:
        return len(self.server.after_sale_pages)


@asynccontextmanager
async def douyin() -> AsyncIterator[DouyinHarness]:
    with FakeDouyin() as server:
        config = {
            "app_key": douyin_server.APP_KEY,
            "app_secret": douyin_server.APP_SECRET,
            "access_token": douyin_server.ACCESS_TOKEN,
            "access_token_expires_at": (server.now() + timedelta(days=7)).isoformat(),
            "gateway_url": server.url,
            "page_size": DouyinHarness.page_size,
            "timeout": 2.0,
        }
        async with DouyinChannel("douyin-shop", config) as channel:
            yield DouyinHarness(server, channel)


class H5Harness(_Plain):
    platform_cap = False
    page_size = 20
    max_window = timedelta(days=1)
    no_return_kind = AfterSaleKind.REFUND_ONLY

    def __init__(self, store: FakeH5Store, channel: H5Channel) -> None:
        self.store = self.server = store
        self.channel = channel

    def now(self) -> datetime:
        return self.store.now()

    def put(
        self,
        request_id: str,
        order_id: str,
        modified: datetime,
        *,
        status: str = "returning",
        returns: bool = True,
        units: int = 1,
    ) -> None:
        self.store.put_after_sale(
            {
                "schema": "h5.after-sale.v1",
                "id": request_id,
                "order_id": order_id,
                "type": "return_refund" if returns else "refund_only",
                "status": status,
                "lines": [{"id": f"{order_id}-1", "sku": "TEE-BLK-M", "quantity": units}],
                "refund_amount": "59.00",
                "currency": "CNY",
                "reason": "size",
                "created_at": (modified - timedelta(hours=1)).isoformat(),
                "updated_at": modified.isoformat(),
            }
        )

    def pages_served(self) -> int:
        return len(self.store.after_sale_pages)


@asynccontextmanager
async def h5() -> AsyncIterator[H5Harness]:
    with FakeH5Store() as store:
        config = {
            "base_url": store.url,
            "api_token": H5_TOKEN,
            "webhook_secrets": [H5_SECRET],
            "page_size": H5Harness.page_size,
            "timeout": 2.0,
        }
        async with H5Channel("h5-store", config) as channel:
            yield H5Harness(store, channel)


class ShopifyHarness:
    page_size = 20
    max_window = timedelta(days=1)
    no_return_kind = AfterSaleKind.REFUND_ONLY
    listed_status = AfterSaleStatus.REFUNDED
    platform_cap = False

    def __init__(self, shop: FakeShopify, channel: ShopifyChannel) -> None:
        self.shop = shop
        self.channel = channel

    def expire(self) -> None:
        self.shop.expire_credentials()

    def now(self) -> datetime:
        return self.shop.now()

    def order_key(self, order_id: str) -> str:
        return str(1000 + int(order_id.lstrip("T")))

    def put(
        self,
        request_id: str,
        order_id: str,
        modified: datetime,
        *,
        status: str = "returning",
        returns: bool = True,
        units: int = 1,
    ) -> None:
        order = shopify_order(int(self.order_key(order_id)), modified)
        order["refunds"] = [
            {
                "id": request_id,
                "created_at": (modified - timedelta(minutes=1)).isoformat(),
                "note": "size",
                "refund_line_items": [
                    {
                        "quantity": units,
                        "restock_type": "return" if returns else "no_restock",
                        "line_item": order["line_items"][0],
                    }
                ],
                "transactions": [{"kind": "refund", "amount": "59.00", "status": "success"}],
            }
        ]
        self.shop.put(order)

    def pages_served(self) -> int:
        return sum(1 for _, path, _ in self.shop.requests if path.endswith("/orders.json"))


@asynccontextmanager
async def shopify() -> AsyncIterator[ShopifyHarness]:
    with FakeShopify() as shop:
        config = {
            "shop_url": shop.url,
            "access_token": SHOPIFY_TOKEN,
            "webhook_secrets": SHOPIFY_SECRET,
            "page_size": ShopifyHarness.page_size,
            "timeout": 2.0,
            "leak_rate": 1000,
        }
        async with ShopifyChannel("shopify-shop", config) as channel:
            yield ShopifyHarness(shop, channel)


HARNESSES: dict[str, Any] = {
    "douyin": douyin,
    "h5": h5,
    "shopify": shopify,
    "jd": jd,
    "pinduoduo": pinduoduo,
    "taobao": taobao,
}


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    opener: AbstractAsyncContextManager[Harness] = HARNESSES[request.param]()
    async with opener as opened:
        yield opened


@pytest.fixture
async def core() -> AsyncIterator[OrderCore]:
    async with OrderCore.open("memory://", settings=Settings()) as opened:
        yield opened


def _second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


# -- the suite --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_adapter_implements_the_after_sales_port(harness: Harness) -> None:
    """The adapter is an AfterSalesPort whose window fits the platform's cap."""
    assert isinstance(harness.channel, AfterSalesPort)
    assert harness.channel.after_sales_limits.max_window <= harness.max_window


@pytest.mark.anyio
async def test_a_sync_pages_through_every_request_once(harness: Harness, core: OrderCore) -> None:
    """More requests than a page, over more than one window: each stored once, mapped."""
    channel = harness.channel
    assert isinstance(channel, AfterSalesPort)
    window = channel.after_sales_limits.max_window
    settled = _second(harness.now()) - channel.after_sales_limits.lag - timedelta(minutes=1)
    start = settled - 2 * window
    count = 2 * harness.page_size + 5
    for index in range(count):
        harness.put(f"R{index}", f"T{index}", start + 2 * window * index / count)
    run = await core.after_sales.sync(harness.channel, first_sync_from=start)
    assert run.status is RunStatus.SUCCEEDED, run.errors
    assert (run.created, run.fetched) == (count, count)
    assert run.windows >= 3
    assert harness.pages_served() >= run.windows + 2
    stored = await core.after_sales.list(limit=1000)
    assert len(stored) == count
    one = await core.after_sales.get(f"{channel.name}:R0")
    assert (one.kind, one.status) == (AfterSaleKind.RETURN_REFUND, harness.listed_status)
    assert one.order_external_id == harness.order_key("T0")
    assert one.refund.amount == Decimal("59.00")
    assert [line.quantity for line in one.lines] == [1]


@pytest.mark.anyio
async def test_re_polls_are_exactly_once_and_stale_versions_lose(
    harness: Harness, core: OrderCore
) -> None:
    """Re-polls change nothing; a newer version wins; an older one served later is stale."""
    assert isinstance(harness.channel, AfterSalesPort)
    now = _second(harness.now()) - harness.channel.after_sales_limits.lag
    harness.put("R1", "T1", now - timedelta(minutes=30), status="requested", returns=False)
    first = await core.after_sales.sync(
        harness.channel, first_sync_from=now - timedelta(minutes=40)
    )
    assert first.created == 1, first.errors
    again = await core.after_sales.sync(harness.channel)
    assert (again.created, again.updated) == (0, 0)
    harness.put("R1", "T1", now - timedelta(minutes=3), status="refunded", returns=False)
    newer = await core.after_sales.sync(harness.channel)
    assert newer.updated == 1
    harness.put("R1", "T1", now - timedelta(minutes=5), status="closed", returns=False)
    older = await core.after_sales.sync(harness.channel)
    assert (older.updated, older.stale) == (0, 1), older
    stored = await core.after_sales.get(f"{harness.channel.name}:R1")
    assert (stored.kind, stored.status) == (harness.no_return_kind, AfterSaleStatus.REFUNDED)
    assert stored.version == 2


@pytest.mark.anyio
async def test_a_window_over_the_platforms_cap_is_refused(harness: Harness) -> None:
    """The fake enforces the platform's span cap, so the adapter's limits are what keep it."""
    channel = harness.channel
    assert isinstance(channel, AfterSalesPort)
    if not harness.platform_cap:
        pytest.skip("this platform's list has no span cap")
    end = _second(harness.now()) - timedelta(hours=1)
    too_long = TimeWindow(start=end - harness.max_window - timedelta(minutes=2), end=end)
    with pytest.raises(OrderCoreError):
        await channel.fetch_after_sales(too_long, None)


@pytest.mark.anyio
async def test_expired_credentials_pause_the_after_sales_feed(
    harness: Harness, core: OrderCore
) -> None:
    """A token the platform no longer accepts pauses the run and raises ChannelAuthExpired."""
    harness.expire()
    with pytest.raises(ChannelAuthExpired):
        await core.after_sales.sync(harness.channel)
    runs = await core.intake.runs(harness.channel.name)
    assert [run.status for run in runs] == [RunStatus.PAUSED]


@pytest.mark.anyio
async def test_an_unknown_platform_status_is_kept_as_a_reject(core: OrderCore) -> None:
    """Pinduoduo status 99 is not guessed: the record is kept whole and named in the run."""
    async with pinduoduo() as harness:
        moment = _second(harness.now()) - harness.channel.limits.lag - timedelta(minutes=5)
        harness.server.put_refund(
            pdd_server.sample_refund("R1", "T1", moment, after_sales_status=99)
        )
        run = await core.after_sales.sync(
            harness.channel, first_sync_from=moment - timedelta(minutes=1)
        )
    assert (run.created, run.rejected) == (0, 1)
    assert any("after_sales_status" in error for error in run.errors)
    rejects = await core.intake.rejects(harness.channel.name)
    assert rejects[0].payload["after_sales_status"] == 99
