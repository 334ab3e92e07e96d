"""Routing: 300 orders reserved in the default warehouse, then routed, per storage.

One round adds 300 two-line orders to Hangzhou, reserves each in ``main`` (the
pipeline's reserve step), then routes each: the address is placed offline, the policy
chooses among 5 warehouses and the reservation is relocated there in one transaction.
Orders per second of both steps and their ratio are in ``extra_info``. Rounds = 1 per
storage (the orders must be new). Compare within one run only.
"""

from __future__ import annotations

import time

import pytest

from ordercore import OrderCore
from ordercore.domain.warehouses import Warehouse
from ordercore.testing.storage_routing import routing_order

ORDERS = 300
PLACES = {
    "SH": "上海市嘉定区",
    "GZ": "广东省广州市白云区",
    "BJ": "北京市大兴区",
    "WH": "湖北省武汉市东西湖区",
    "CD": "四川省成都市双流区",
}


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_route_three_hundred_reserved_orders(
    storage_url: str, benchmark: pytest.FixtureRequest
) -> None:
    """300 orders reserved then routed: all routed, figures in extra_info."""
    async with OrderCore.open(storage_url) as core:
        for code, place in PLACES.items():
            await core.warehouses.add(Warehouse.located(code, place))
            for sku in ("A", "B"):
                await core.inventory.receive(sku, 10 * ORDERS, warehouse=code)
        for sku in ("A", "B"):
            await core.inventory.receive(sku, 10 * ORDERS)
        orders = [routing_order(f"o{n}", {"A": 1, "B": 2}, core.clock.now()) for n in range(ORDERS)]
        for order in orders:
            await core.orders.add(order)
        started = time.perf_counter()
        for order in orders:
            await core.inventory.reserve_order(order)
        reserved = time.perf_counter()
        for order in orders:
            await core.routing.route(order.id)
        routed = time.perf_counter()
        assert (await core.inventory.stock("A", "SH")).reserved == ORDERS
        assert await core.inventory.verify() == []
    reserve_s, route_s = reserved - started, routed - reserved
    benchmark.extra_info["reserve_orders_per_s"] = round(ORDERS / reserve_s)  # type: ignore[attr-defined]
    benchmark.extra_info["route_orders_per_s"] = round(ORDERS / route_s)  # type: ignore[attr-defined]
    benchmark.extra_info["route_over_reserve_time"] = round(route_s / reserve_s, 2)  # type: ignore[attr-defined]
    benchmark.pedantic(lambda: None, rounds=1)  # type: ignore[attr-defined]
