"""push_stock (and H5's set_listed) of the Taobao, Shopify-style and H5 adapters over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import stamina

from fakes.top_server import APP_KEY, APP_SECRET, SESSION, FakeTopServer
from fakes.webhook_shop_server import (
    H5_SECRET,
    H5_TOKEN,
    SHOPIFY_SECRET,
    SHOPIFY_TOKEN,
    FakeH5Store,
    FakeShopify,
)
from ordercore.errors import ChannelAuthExpired
from ordercore.ports.channels import ListingPort, StockPushPort
from ordercore_adapters.channels.h5 import H5Channel
from ordercore_adapters.channels.shopify import ShopifyChannel
from ordercore_adapters.channels.taobao import TaobaoChannel


@pytest.fixture(autouse=True)
def _retries_without_waiting() -> Iterator[None]:
    with stamina.set_testing(True, attempts=2, cap=True):
        yield


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
        },
    )


@pytest.mark.anyio
async def test_taobao_sets_sku_and_item_quantities_in_calls_of_at_most_20() -> None:
    """25 SKUs of one item go in two skus.quantity.update calls; an item without SKUs alone."""
    with FakeTopServer() as fake:
        listings = [f"1001:{2000 + n}" for n in range(25)]
        for listing in [*listings, "1002"]:
            fake.shelf.add(listing)
        async with _taobao(fake) as channel:
            assert isinstance(channel, StockPushPort)
            wanted = {listing: n for n, listing in enumerate(listings)} | {"1002": 7}
            answers = await channel.push_stock(wanted)
        assert answers == dict.fromkeys(wanted)
        assert {listing: fake.shelf.quantity[listing] for listing in wanted} == wanted
        methods = [form["method"] for form in fake.requests]
        assert methods.count("taobao.skus.quantity.update") == 2
        assert methods.count("taobao.item.quantity.update") == 1


@pytest.mark.anyio
async def test_taobao_answers_a_refusal_per_call_and_a_bad_id_per_listing() -> None:
    """An unknown item is refused (isv.item-not-exist) without failing the other items."""
    with FakeTopServer() as fake:
        fake.shelf.add("1001:1")
        async with _taobao(fake) as channel:
            answers = await channel.push_stock({"1001:1": 4, "9999:1": 2, "not-an-id": 1})
        assert answers["1001:1"] is None
        assert "isv.item-not-exist" in str(answers["9999:1"])
        assert "not a Taobao listing id" in str(answers["not-an-id"])
        assert fake.shelf.quantity == {"1001:1": 4}


@pytest.mark.anyio
async def test_shopify_sets_available_per_inventory_level() -> None:
    """inventory_levels/set.json sets each level; an unknown one is answered 422."""
    with FakeShopify() as fake:
        fake.shelf.add("55:801")
        config = {
            "shop_url": fake.url,
            "access_token": SHOPIFY_TOKEN,
            "webhook_secrets": SHOPIFY_SECRET,
            "leak_rate": 1000,
        }
        async with ShopifyChannel("shopify", config) as channel:
            answers = await channel.push_stock({"55:801": 9, "55:999": 1})
            assert answers["55:801"] is None
            assert "422" in str(answers["55:999"])
            fake.expire_credentials()
            with pytest.raises(ChannelAuthExpired):
                await channel.push_stock({"55:801": 1})
        assert fake.shelf.quantity["55:801"] == 9


@pytest.mark.anyio
async def test_h5_sets_quantities_and_listing_state() -> None:
    """/v1/stock sets quantities, /v1/listings takes a listing down; unknowns are answered."""
    with FakeH5Store() as fake:
        fake.shelf.add("TEE-M")
        config = {"base_url": fake.url, "api_token": H5_TOKEN, "webhook_secrets": H5_SECRET}
        async with H5Channel("h5", config) as channel:
            assert isinstance(channel, ListingPort)
            answers = await channel.push_stock({"TEE-M": 0, "GONE": 1})
            listed = await channel.set_listed({"TEE-M": False})
        assert answers == {"TEE-M": None, "GONE": "no listing 'GONE'"}
        assert listed == {"TEE-M": None}
        assert (fake.shelf.quantity["TEE-M"], fake.shelf.listed["TEE-M"]) == (0, False)
