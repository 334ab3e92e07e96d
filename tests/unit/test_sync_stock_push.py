"""The blocking facade reaches core.stock_push."""

from __future__ import annotations

from ordercore.domain.stock_push import ShopPushConfig, StockPushPolicy
from ordercore.sync import SyncOrderCore


def test_sync_facade_plans_without_await() -> None:
    """core.stock_push.plan() answers from a sync caller (Django, scripts)."""
    with SyncOrderCore.open("memory://") as core:
        core.inventory.receive("A", 5)
        core.core.stock_push.policy = StockPushPolicy(
            shops={"h5": ShopPushConfig(listings={"A": "A"})}, budget=1
        )
        (plan,) = core.stock_push.plan()
    assert (plan.sku, plan.sellable, plan.total) == ("A", 5, 5)
