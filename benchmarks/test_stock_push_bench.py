"""Stock push planning: what one change-detection round costs for 2,000 SKUs and 4 shops.

``plan_sku`` is pure (rules, precedence, budget scaling); ``detect_changes`` reads every
stock level from the memory storage and compares it with the last round (the fallback
while the inventory service has no change hook). Their ratio says which dominates a
round. Compare within one run only.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from decimal import Decimal

import pytest

from ordercore import OrderCore
from ordercore.domain.stock_push import PublishRule, ShopPushConfig, StockPushPolicy, plan_sku

SKUS = [f"SKU-{n:05d}" for n in range(2_000)]
RULE = PublishRule(ratio=Decimal("0.8"), low_stock=20, low_ratio=Decimal("0.3"), floor=1)


def _policy() -> StockPushPolicy:
    return StockPushPolicy(
        shops={
            name: ShopPushConfig(rule=RULE, listings={sku: f"{name}-{sku}" for sku in SKUS})
            for name in ("tb-a", "tb-b", "shopify", "h5")
        },
        budget=2,
    )


def test_plan_two_thousand_skus_for_four_shops(benchmark: pytest.FixtureRequest) -> None:
    """2,000 SKU plans; every total within sellable + budget."""
    policy = _policy()
    levels = {sku: {"main": n % 50, "east": n % 7} for n, sku in enumerate(SKUS)}

    def run() -> int:
        return sum(plan_sku(policy, sku, levels[sku]).total for sku in SKUS)

    total = benchmark(run)  # type: ignore[operator]
    assert total <= sum(sum(v.values()) + 2 for v in levels.values())


def test_detect_changes_over_two_thousand_skus(benchmark: pytest.FixtureRequest) -> None:
    """One polling round over 2,000 SKUs (memory storage) finds the one SKU that changed."""
    with asyncio.Runner() as runner:
        stack = AsyncExitStack()
        core = runner.run(stack.enter_async_context(OrderCore.open("memory://")))
        try:

            async def setup() -> None:
                for sku in SKUS:
                    await core.inventory.receive(sku, 10)
                core.stock_push.policy = _policy()
                await core.stock_push.detect_changes()

            async def one_round() -> set[str]:
                await core.inventory.receive(SKUS[0], 1)
                return await core.stock_push.detect_changes()

            runner.run(setup())
            changed = benchmark(lambda: runner.run(one_round()))  # type: ignore[operator]
            assert changed == {SKUS[0]}
        finally:
            runner.run(stack.aclose())
