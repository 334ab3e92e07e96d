"""Shipment push-back (发货回传) through each channel adapter, over real HTTP to its fake.

The must-show: a push whose platform fails three times then succeeds ends ``ok`` once
(the fake recorded exactly one accepted push), and the packages of one split order reach
the platform in the order they shipped; on the memory storage and a real SQLite file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import stamina

from fakes import douyin_server, jos_server, pdd_server
from fakes.douyin_server import FakeDouyin
from fakes.jos_server import FakeJosServer
from fakes.pdd_server import FakePddServer
from fakes.top_server import APP_KEY, APP_SECRET, SESSION, FakeTopServer, sample_trade
from fakes.webhook_shop_server import (
    H5_SECRET,
    H5_TOKEN,
    SHOPIFY_SECRET,
    SHOPIFY_TOKEN,
    FakeH5Store,
    FakeShopify,
    h5_order,
    shopify_order,
)
from ordercore.config import Settings
from ordercore.core import OrderCore
from ordercore.domain.outbox import OPEN_STATES
from ordercore.domain.shipments import PushState, ShipmentPart, ShipmentState
from ordercore.errors import OrderIntercepted, ShipmentPushRefused
from ordercore.ports.channels import ShipmentPushPort
from ordercore.ports.clock import ManualClock
from ordercore.services.outbox import HandlerRegistry
from ordercore.testing.shipments import FakeRecall
from ordercore.testing.storage_shipments import shipping_order
from ordercore_adapters.channels.douyin import DouyinChannel
from ordercore_adapters.channels.h5 import H5Channel
from ordercore_adapters.channels.jd import JdChannel
from ordercore_adapters.channels.pinduoduo import PinduoduoChannel
from ordercore_adapters.channels.shopify import ShopifyChannel
from ordercore_adapters.channels.taobao import TaobaoChannel


@pytest.fixture(autouse=True)
def _retries_without_waiting() -> Iterator[None]:
    with stamina.set_testing(True, attempts=1, cap=True):
        yield


@pytest.fixture(params=["memory", "sqlite"])
async def core(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OrderCore]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'oc.db'}"
    async with OrderCore.open(url, settings=Settings(), clock=ManualClock()) as opened:
        yield opened


async def _drain(core: OrderCore, registry: HandlerRegistry) -> None:
    worker = core.outbox.worker(registry, concurrency=1)
    clock = core.clock
    assert isinstance(clock, ManualClock)
    for _ in range(20):
        await worker.run_once()
        if not await core.outbox.list(states=OPEN_STATES, limit=1):
            return
        clock.advance(timedelta(minutes=10))


async def _paid(core: OrderCore, order_id: str, channel: str, lines: dict[str, int]) -> None:
    for sku in lines:
        await core.inventory.receive(sku, 10, warehouse="main")
    order = shipping_order(order_id, lines, at=core.clock.now(), channel=channel)
    await core.orders.add(order.model_copy(update={"external_id": order_id.removeprefix("o")}))
    await core.inventory.reserve(order_id, lines, warehouse="main")


def _taobao(fake: FakeTopServer) -> TaobaoChannel:
    return TaobaoChannel(
        "tb",
        {
            "app_key": APP_KEY,
            "app_secret": APP_SECRET,
            "session": SESSION,
            "session_expires_at": (fake.now() + timedelta(days=30)).isoformat(),
            "gateway_url": fake.url,
            "requests_per_second": 1000,
            "timeout": 2.0,
            "attempts": 1,
        },
    )


def _registry(core: OrderCore, adapter: object) -> HandlerRegistry:
    core.shipments.channels["tb"] = adapter
    registry = HandlerRegistry()
    core.shipments.register(registry, max_attempts=6)
    return registry


@pytest.mark.anyio
async def test_taobao_push_failing_three_times_then_succeeding_is_recorded_once(
    core: OrderCore,
) -> None:
    """Three 5xx answers, then success: one offline.send accepted, push ok after 4 attempts."""
    with FakeTopServer() as fake:
        fake.put_trade(sample_trade("1001", fake.now()))
        async with _taobao(fake) as channel:
            assert isinstance(channel, ShipmentPushPort)
            registry = _registry(core, channel)
            await _paid(core, "o1001", "tb", {"A": 1})
            fake.fail_next(3)
            await core.shipments.record(["o1001"], courier="zto", tracking_number="ZT9001")
            await _drain(core, registry)
        [push] = await core.shipments.pushes(order_id="o1001")
        assert (push.state, push.attempts) == (PushState.OK, 4)
        assert [(p.order_id, p.company, p.tracking_number) for p in fake.shipments.accepted] == [
            ("1001", "ZTO", "ZT9001")
        ]


@pytest.mark.anyio
async def test_taobao_pushes_the_packages_of_a_split_trade_in_order(core: OrderCore) -> None:
    """Two packages of one trade go as is_split sends with their sub_tid, first one first."""
    with FakeTopServer() as fake:
        fake.put_trade(sample_trade("1002", fake.now(), lines=2))
        async with _taobao(fake) as channel:
            registry = _registry(core, channel)
            await _paid(core, "o1002", "tb", {"A": 1, "B": 1})
            fake.fail_next(2)
            first = ShipmentPart(order_id="o1002", package_id="1", sub_orders=("10020",))
            second = ShipmentPart(order_id="o1002", package_id="2", sub_orders=("10021",))
            await core.shipments.record([first], courier="zto", tracking_number="ZT1")
            await core.shipments.record([second], courier="sf", tracking_number="SF2")
            await _drain(core, registry)
        assert [(p.company, p.lines) for p in fake.shipments.accepted] == [
            ("ZTO", ("10020",)),
            ("SF", ("10021",)),
        ]
        sends = [f for f in fake.requests if f.get("method") == "taobao.logistics.offline.send"]
        assert all(form["is_split"] == "1" for form in sends)


@pytest.mark.anyio
async def test_taobao_refuses_a_second_tracking_number_for_shipped_lines() -> None:
    """Another out_sid for lines already sent is TOP's refusal: ShipmentPushRefused."""
    with FakeTopServer() as fake:
        fake.put_trade(sample_trade("1003", fake.now()))
        async with _taobao(fake) as channel:
            await channel.push_shipment("1003", "zto", "ZT1", [])
            await channel.push_shipment("1003", "zto", "ZT1", [])  # a re-send: accepted
            with pytest.raises(ShipmentPushRefused, match="B04"):
                await channel.push_shipment("1003", "zto", "ZT2", [])
        assert len(fake.shipments.accepted) == 1


@pytest.mark.anyio
async def test_taobao_refuses_an_unmapped_courier_without_calling_top() -> None:
    """A courier with no TOP company code is refused before any request (courier-unmapped)."""
    with FakeTopServer() as fake:
        fake.put_trade(sample_trade("1004", fake.now()))
        async with _taobao(fake) as channel:
            with pytest.raises(ShipmentPushRefused, match="courier-unmapped"):
                await channel.push_shipment("1004", "acme", "AC1", [])
            channel.courier_codes["acme"] = "YTO"
            await channel.push_shipment("1004", "acme", "AC1", [])
        assert [p.company for p in fake.shipments.accepted] == ["YTO"]


def _pdd(fake: FakePddServer) -> PinduoduoChannel:
    return PinduoduoChannel(
        "pdd",
        {
            "client_id": pdd_server.CLIENT_ID,
            "client_secret": pdd_server.CLIENT_SECRET,
            "access_token": pdd_server.ACCESS_TOKEN,
            "access_token_expires_at": (fake.now() + timedelta(days=30)).isoformat(),
            "gateway_url": fake.url,
            "requests_per_second": 1000,
            "timeout": 2.0,
            "attempts": 1,
        },
    )


@pytest.mark.anyio
async def test_pinduoduo_push_failing_three_times_then_succeeding_is_recorded_once(
    core: OrderCore,
) -> None:
    """Three 5xx answers, then online.send succeeds: one package recorded, push ok."""
    with FakePddServer() as fake:
        fake.put_order(pdd_server.sample_order("260101-01", fake.now()))
        async with _pdd(fake) as channel:
            assert isinstance(channel, ShipmentPushPort)
            core.shipments.channels["pdd"] = channel
            registry = HandlerRegistry()
            core.shipments.register(registry, max_attempts=6)
            await _paid(core, "o260101-01", "pdd", {"A": 1})
            fake.fail_next(3)
            await core.shipments.record(["o260101-01"], courier="zto", tracking_number="ZT5")
            await _drain(core, registry)
        [push] = await core.shipments.pushes(order_id="o260101-01")
        assert (push.state, push.attempts) == (PushState.OK, 4)
        assert [(p.company, p.tracking_number) for p in fake.shipments.accepted] == [("115", "ZT5")]


@pytest.mark.anyio
async def test_pinduoduo_sends_a_second_package_as_extra_logistics() -> None:
    """The first package ships the order; the next goes up as an extra tracking number."""
    with FakePddServer() as fake:
        fake.put_order(pdd_server.sample_order("260101-02", fake.now()))
        async with _pdd(fake) as channel:
            await channel.push_shipment("260101-02", "zto", "ZT1", ["a"])
            await channel.push_shipment("260101-02", "sf", "SF2", ["b"])
            await channel.push_shipment("260101-02", "sf", "SF2", ["b"])  # a re-send
        assert [p.tracking_number for p in fake.shipments.accepted] == ["ZT1", "SF2"]
        apis = [form.get("type") for form in fake.requests]
        assert apis.count("pdd.order.upload.extra.logistic") == 1


@pytest.mark.anyio
async def test_pinduoduo_refuses_an_unknown_order() -> None:
    """An order PDD does not know is a refusal (ShipmentPushRefused), not retried."""
    with FakePddServer() as fake:
        async with _pdd(fake) as channel:
            with pytest.raises(ShipmentPushRefused, match="52102"):
                await channel.push_shipment("nope", "zto", "ZT1", [])
        assert fake.shipments.accepted == []


@pytest.mark.anyio
async def test_shopify_push_failing_three_times_then_succeeding_creates_one_fulfillment(
    core: OrderCore,
) -> None:
    """Three 502s, then a fulfillment: exactly one created, push ok after 4 attempts."""
    with FakeShopify() as fake:
        fake.put(shopify_order(5001, fake.now()))
        config = {
            "shop_url": fake.url,
            "access_token": SHOPIFY_TOKEN,
            "webhook_secrets": SHOPIFY_SECRET,
            "leak_rate": 1000,
        }
        async with ShopifyChannel("shopify", config) as channel:
            assert isinstance(channel, ShipmentPushPort)
            core.shipments.channels["shopify"] = channel
            registry = HandlerRegistry()
            core.shipments.register(registry, max_attempts=6)
            await _paid(core, "o5001", "shopify", {"A": 1})
            fake.fail_next(3)
            await core.shipments.record(["o5001"], courier="sf", tracking_number="SF5001")
            await _drain(core, registry)
        [push] = await core.shipments.pushes(order_id="o5001")
        assert (push.state, push.attempts) == (PushState.OK, 4)
        assert [(p.company, p.tracking_number) for p in fake.shipments.accepted] == [
            ("SF Express", "SF5001")
        ]


@pytest.mark.anyio
async def test_shopify_does_not_fulfil_a_package_twice() -> None:
    """A re-push of a tracking number the order already carries sends no second POST."""
    with FakeShopify() as fake:
        fake.put(shopify_order(5002, fake.now()))
        config = {
            "shop_url": fake.url,
            "access_token": SHOPIFY_TOKEN,
            "webhook_secrets": SHOPIFY_SECRET,
            "leak_rate": 1000,
        }
        async with ShopifyChannel("shopify", config) as channel:
            await channel.push_shipment("5002", "zto", "ZT1", ["11"])
            await channel.push_shipment("5002", "zto", "ZT1", ["11"])
            with pytest.raises(ShipmentPushRefused, match="422"):
                await channel.push_shipment("5002", "zto", "ZT2", ["11"])
        posts = [r for r in fake.requests if r[0] == "POST"]
        assert len(posts) == 2
        assert len(fake.shipments.accepted) == 1


@pytest.mark.anyio
async def test_h5_push_failing_three_times_then_succeeding_records_one_shipment(
    core: OrderCore,
) -> None:
    """Three 502s, then the store takes the shipment once; a split order's lines are sent."""
    with FakeH5Store() as fake:
        fake.put(h5_order("H-1", fake.now()))
        config = {"base_url": fake.url, "api_token": H5_TOKEN, "webhook_secrets": H5_SECRET}
        async with H5Channel("h5", config) as channel:
            assert isinstance(channel, ShipmentPushPort)
            core.shipments.channels["h5"] = channel
            registry = HandlerRegistry()
            core.shipments.register(registry, max_attempts=6)
            await _paid(core, "oH-1", "h5", {"A": 1, "B": 1})
            fake.fail_next(3)
            part = ShipmentPart(order_id="oH-1", package_id="1", sub_orders=("L1",))
            await core.shipments.record([part], courier="yto", tracking_number="YT1")
            await _drain(core, registry)
        [push] = await core.shipments.pushes(order_id="oH-1")
        assert (push.state, push.attempts) == (PushState.OK, 4)
        assert [(p.company, p.lines) for p in fake.shipments.accepted] == [("yto", ("L1",))]


@pytest.mark.anyio
async def test_h5_refuses_an_unknown_order() -> None:
    """The store answers 404 for an order it does not have: ShipmentPushRefused."""
    with FakeH5Store() as fake:
        config = {"base_url": fake.url, "api_token": H5_TOKEN, "webhook_secrets": H5_SECRET}
        async with H5Channel("h5", config) as channel:
            with pytest.raises(ShipmentPushRefused, match="404"):
                await channel.push_shipment("H-404", "yto", "YT1", [])


def _jd(fake: FakeJosServer) -> JdChannel:
    return JdChannel(
        "jd",
        {
            "app_key": jos_server.APP_KEY,
            "app_secret": jos_server.APP_SECRET,
            "access_token": jos_server.ACCESS_TOKEN,
            "access_token_expires_at": (fake.now() + timedelta(days=30)).isoformat(),
            "gateway_url": fake.url,
            "requests_per_second": 1000,
            "timeout": 2.0,
            "attempts": 1,
        },
    )


@pytest.mark.anyio
async def test_jd_push_failing_three_times_then_succeeding_is_recorded_once(
    core: OrderCore,
) -> None:
    """Three 5xx answers, then pop.order.shipment succeeds: one shipment recorded, ok."""
    with FakeJosServer() as fake:
        fake.put_order(jos_server.sample_order("3001", fake.now()))
        async with _jd(fake) as channel:
            assert isinstance(channel, ShipmentPushPort)
            core.shipments.channels["jd"] = channel
            registry = HandlerRegistry()
            core.shipments.register(registry, max_attempts=6)
            await _paid(core, "o3001", "jd", {"A": 1})
            fake.fail_next(3)
            await core.shipments.record(["o3001"], courier="jd", tracking_number="JDV001")
            await _drain(core, registry)
        [push] = await core.shipments.pushes(order_id="o3001")
        assert (push.state, push.attempts) == (PushState.OK, 4)
        assert [(p.company, p.tracking_number) for p in fake.shipments.accepted] == [
            ("2087", "JDV001")
        ]


@pytest.mark.anyio
async def test_jd_refuses_a_second_tracking_number() -> None:
    """JD ships an order once: another tracking number is refused (success false)."""
    with FakeJosServer() as fake:
        fake.put_order(jos_server.sample_order("3002", fake.now()))
        async with _jd(fake) as channel:
            await channel.push_shipment("3002", "zto", "ZT1", [])
            await channel.push_shipment("3002", "zto", "ZT1", [])
            with pytest.raises(ShipmentPushRefused, match="already-shipped"):
                await channel.push_shipment("3002", "zto", "ZT2", [])
        assert [p.tracking_number for p in fake.shipments.accepted] == ["ZT1"]


def _douyin(fake: FakeDouyin) -> DouyinChannel:
    return DouyinChannel(
        "douyin",
        {
            "app_key": douyin_server.APP_KEY,
            "app_secret": douyin_server.APP_SECRET,
            "access_token": douyin_server.ACCESS_TOKEN,
            "access_token_expires_at": (fake.now() + timedelta(days=7)).isoformat(),
            "gateway_url": fake.url,
            "timeout": 2.0,
        },
    )


@pytest.mark.anyio
async def test_douyin_push_failing_three_times_then_succeeding_is_recorded_once(
    core: OrderCore,
) -> None:
    """Three 502s, then logisticsAdd succeeds: one pack recorded, push ok after 4 attempts."""
    with FakeDouyin() as fake:
        fake.add_order("6901", fake.now())
        async with _douyin(fake) as channel:
            assert isinstance(channel, ShipmentPushPort)
            core.shipments.channels["douyin"] = channel
            registry = HandlerRegistry()
            core.shipments.register(registry, max_attempts=6)
            await _paid(core, "o6901", "douyin", {"A": 1})
            fake.fail_next(3)
            await core.shipments.record(["o6901"], courier="yunda", tracking_number="YD1")
            await _drain(core, registry)
        [push] = await core.shipments.pushes(order_id="o6901")
        assert (push.state, push.attempts) == (PushState.OK, 4)
        assert [(p.company, p.tracking_number) for p in fake.shipments.accepted] == [
            ("yunda", "YD1")
        ]


@pytest.mark.anyio
async def test_douyin_ships_a_split_order_as_multi_packs_in_order(core: OrderCore) -> None:
    """Two packages of one order go as multi-pack calls naming their sub-orders."""
    with FakeDouyin() as fake:
        fake.add_order("6902", fake.now())
        async with _douyin(fake) as channel:
            core.shipments.channels["douyin"] = channel
            registry = HandlerRegistry()
            core.shipments.register(registry, max_attempts=6)
            await _paid(core, "o6902", "douyin", {"A": 1, "B": 1})
            first = ShipmentPart(order_id="o6902", package_id="1", sub_orders=("69021",))
            second = ShipmentPart(order_id="o6902", package_id="2", sub_orders=("69022",))
            await core.shipments.record([first], courier="zto", tracking_number="ZT1")
            await core.shipments.record([second], courier="zto", tracking_number="ZT2")
            await _drain(core, registry)
        assert [(p.tracking_number, p.lines) for p in fake.shipments.accepted] == [
            ("ZT1", ("69021",)),
            ("ZT2", ("69022",)),
        ]
        paths = [path for method, path, _ in fake.requests if method == "POST"]
        assert paths.count("/order/logisticsAddMultiPack") == 2


@pytest.mark.anyio
async def test_douyin_refuses_an_unknown_order() -> None:
    """An order Douyin does not have is a refusal: ShipmentPushRefused."""
    with FakeDouyin() as fake:
        async with _douyin(fake) as channel:
            with pytest.raises(ShipmentPushRefused, match="unknown-order"):
                await channel.push_shipment("nope", "zto", "ZT1", [])


@pytest.mark.anyio
@pytest.mark.parametrize("storage", ["memory", "sqlite"])
async def test_a_taobao_refund_between_pick_and_ship_stops_the_parcel(
    storage: str, tmp_path: Path
) -> None:
    """Synced paid, packed and picked; TOP then says TRADE_CLOSED: the parcel is stopped."""
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    url = "memory://" if storage == "memory" else f"sqlite:///{tmp_path / 'oc.db'}"
    with FakeTopServer(clock=clock.now) as fake:
        fake.put_trade(sample_trade("2001", clock.now() - timedelta(minutes=10)))
        async with (
            OrderCore.open(url, clock=clock, settings=Settings()) as core,
            _taobao(fake) as channel,
        ):
            core.shipments.channels["tb"] = channel
            core.shipments.recall_port = recall = FakeRecall()
            registry = HandlerRegistry()
            core.shipments.register(registry)
            await core.inventory.receive("TEE-2026-BLK-S", 10)
            await core.intake.sync(channel, first_sync_from=clock.now() - timedelta(hours=1))
            order = await core.orders.find("tb", "2001")
            assert order is not None
            assert await _level(core) == (10, 1)
            parcel = await core.shipments.prepare([order.id], courier="zto", tracking_number="Z1")
            await core.shipments.pick(parcel.id)
            clock.advance(timedelta(minutes=5))
            closed = sample_trade("2001", clock.now() - timedelta(minutes=2), status="TRADE_CLOSED")
            fake.put_trade(closed)
            clock.advance(timedelta(minutes=2))
            run = await core.intake.sync(channel)
            assert run.errors == ()
            with pytest.raises(OrderIntercepted):
                await core.shipments.ship(parcel.id)
            assert await _level(core) == (10, 0)
            await _drain(core, registry)
            assert (await core.shipments.get(parcel.id)).state is ShipmentState.RECALLED
            assert [r.tracking_number for r in recall.recalled.values()] == ["Z1"]
            assert [p.state for p in await core.shipments.pushes(order_id=order.id)] == [
                PushState.CANCELLED
            ]
        assert fake.shipments.requests == 0


async def _level(core: OrderCore) -> tuple[int, int]:
    level = await core.inventory.stock("TEE-2026-BLK-S", "main")
    return level.on_hand, level.reserved
