"""Publish rules, their precedence, and the oversell budget the plan guarantees."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordercore.domain.stock_push import (
    PublishRule,
    PushRecord,
    ResolvedRule,
    ShopPushConfig,
    StockPushPolicy,
    allocate,
    headroom,
    plan_sku,
    rule_quantity,
)
from ordercore.errors import InvalidInput

WAREHOUSES = ("north", "south", "east")


def _policy(**shops: ShopPushConfig) -> StockPushPolicy:
    return StockPushPolicy(shops=shops)


def test_rule_applies_ratio_addend_floor_and_ceiling_in_order() -> None:
    """floor(S * ratio) + addend, raised to the floor, cut to the ceiling."""
    rule = ResolvedRule(ratio=Decimal("0.29"), addend=-2, floor=5, ceiling=20)
    assert rule_quantity(rule, 100, 100) == 20  # 29 - 2 = 27, cut to 20
    assert rule_quantity(rule, 30, 30) == 6  # floor(8.7) - 2 = 6 (exact decimal, not 8.69)
    assert rule_quantity(rule, 10, 10) == 5  # 2 - 2 = 0, raised to the floor
    assert rule_quantity(rule, 0, 0) == 0  # nothing sellable: nothing listed, floor or not


def test_low_stock_tightens_the_ratio() -> None:
    """At or below low_stock, low_ratio replaces the ratio."""
    rule = ResolvedRule(ratio=Decimal(1), low_stock=10, low_ratio=Decimal("0.5"))
    assert rule_quantity(rule, 11, 11) == 11
    assert rule_quantity(rule, 10, 10) == 5


def test_precedence_is_sku_over_product_over_shop_over_default() -> None:
    """Each field comes from the most specific layer that sets it."""
    policy = StockPushPolicy(
        default_rule=PublishRule(ratio=Decimal("0.9"), ceiling=500, addend=1),
        products={"SKU-1": "P1", "SKU-2": "P1"},
        shops={
            "tb": ShopPushConfig(
                rule=PublishRule(ratio=Decimal("0.8"), floor=1),
                product_rules={"P1": PublishRule(ratio=Decimal("0.5"), ceiling=50)},
                sku_rules={"SKU-1": PublishRule(ceiling=7)},
                listings={"SKU-1": "1", "SKU-2": "2", "SKU-3": "3"},
            )
        },
    )
    sku1 = policy.rule_for("tb", "SKU-1")
    assert (sku1.ratio, sku1.ceiling, sku1.floor, sku1.addend) == (Decimal("0.5"), 7, 1, 1)
    sku2 = policy.rule_for("tb", "SKU-2")
    assert (sku2.ratio, sku2.ceiling) == (Decimal("0.5"), 50)
    sku3 = policy.rule_for("tb", "SKU-3")
    assert (sku3.ratio, sku3.ceiling, sku3.floor) == (Decimal("0.8"), 500, 1)


def test_budget_resolves_sku_over_product_over_policy() -> None:
    """A SKU's budget is its own, else its product's, else the policy's."""
    policy = StockPushPolicy(
        budget=3,
        products={"A": "P", "B": "P"},
        product_budgets={"P": 1},
        sku_budgets={"A": 0},
    )
    assert (policy.budget_for("A"), policy.budget_for("B"), policy.budget_for("C")) == (0, 1, 3)


def test_warehouse_selection_limits_a_shops_sellable() -> None:
    """A shop drawing on one warehouse lists only that warehouse's sellable."""
    policy = _policy(
        north=ShopPushConfig(rule=PublishRule(warehouses=("north",)), listings={"A": "a"}),
        every=ShopPushConfig(listings={"A": "a"}),
    )
    plan = plan_sku(policy, "A", {"north": 3, "south": 4})
    north, every = plan.for_shop("north"), plan.for_shop("every")
    assert north is not None
    assert every is not None
    assert plan.sellable == 7
    assert (north.wanted, every.wanted) == (3, 7)


def test_low_stock_scales_shops_down_to_sellable_plus_budget() -> None:
    """Four shops each wanting all 10 units share 10 + budget 2 between them."""
    shops = {name: ShopPushConfig(listings={"A": name}) for name in ("a", "b", "c", "d")}
    policy = StockPushPolicy(shops=shops, budget=2)
    plan = plan_sku(policy, "A", {"main": 10})
    assert [item.quantity for item in plan.shops] == [3, 3, 3, 3]
    assert plan.total == 12


def test_delist_at_zero_and_relist_when_stock_returns() -> None:
    """A delisting shop is not listed at 0 and listed again once it gets units."""
    policy = _policy(
        tb=ShopPushConfig(rule=PublishRule(delist_at_zero=True), listings={"A": "1"}),
        h5=ShopPushConfig(listings={"A": "A"}),
    )
    empty, back = plan_sku(policy, "A", {"main": 0}), plan_sku(policy, "A", {"main": 5})
    assert [(i.shop, i.quantity, i.listed) for i in empty.shops] == [
        ("h5", 0, True),
        ("tb", 0, False),
    ]
    assert [(i.shop, i.listed) for i in back.shops] == [("h5", True), ("tb", True)]


def test_invalid_policy_names_the_field() -> None:
    """A ratio above 1 is refused with its path in the policy."""
    with pytest.raises(InvalidInput, match=r"shops\.tb\.rule\.ratio"):
        StockPushPolicy.parse({"shops": {"tb": {"rule": {"ratio": 1.5}}}})


def test_floor_above_ceiling_is_refused() -> None:
    """A rule whose floor exceeds its ceiling is invalid."""
    with pytest.raises(InvalidInput, match="floor"):
        StockPushPolicy.parse({"default_rule": {"floor": 9, "ceiling": 3}})


rules = st.builds(
    PublishRule,
    ratio=st.none() | st.decimals(0, 1, places=2),
    addend=st.none() | st.integers(-5, 50),
    floor=st.none() | st.integers(0, 30),
    ceiling=st.none() | st.integers(30, 200),
    warehouses=st.none() | st.lists(st.sampled_from(WAREHOUSES), max_size=2).map(tuple),
    low_stock=st.none() | st.integers(0, 50),
    low_ratio=st.none() | st.decimals(0, 1, places=2),
    delist_at_zero=st.none() | st.booleans(),
)
shop_configs = st.builds(
    ShopPushConfig,
    rule=rules,
    sku_rules=st.dictionaries(st.just("A"), rules, max_size=1),
    listings=st.just({"A": "listing"}),
)


@given(
    shops=st.dictionaries(st.sampled_from("abcdef"), shop_configs, min_size=1, max_size=6),
    default=rules,
    budget=st.integers(0, 20),
    levels=st.dictionaries(st.sampled_from(WAREHOUSES), st.integers(-3, 300)),
)
def test_published_total_never_exceeds_sellable_plus_budget(
    shops: dict[str, ShopPushConfig], default: PublishRule, budget: int, levels: dict[str, int]
) -> None:
    """Whatever the rules and stock: sum q_i <= S + B, each q_i <= S_i + B and <= its rule."""
    policy = StockPushPolicy(shops=shops, default_rule=default, budget=budget)
    plan = plan_sku(policy, "A", levels)
    assert plan.total <= plan.sellable + budget
    for item in plan.shops:
        rule = policy.rule_for(item.shop, "A")
        chosen = rule.warehouses or tuple(levels)
        own = sum(max(levels.get(w, 0), 0) for w in set(chosen))
        assert 0 <= item.quantity <= item.wanted <= own + budget
        assert item.listed or (item.quantity == 0 and rule.delist_at_zero)


@given(
    wanted=st.dictionaries(st.text("abc", min_size=1, max_size=3), st.integers(0, 1000)),
    capacity=st.integers(-5, 3000),
)
def test_allocate_fills_capacity_without_exceeding_any_wish(
    wanted: dict[str, int], capacity: int
) -> None:
    """The allocation sums to min(capacity, total wanted) and never exceeds a shop's wish."""
    granted = allocate(wanted, capacity)
    assert sum(granted.values()) == min(max(capacity, 0), sum(wanted.values()))
    assert all(0 <= granted[shop] <= wanted[shop] for shop in wanted)


@given(levels=st.integers(0, 400), budget=st.integers(0, 10))
def test_shops_follow_stock_monotonically(levels: int, budget: int) -> None:
    """More sellable never lists less on any shop (the plan follows a sale down smoothly)."""
    shops = {n: ShopPushConfig(listings={"A": n}) for n in ("a", "b", "c")}
    policy = StockPushPolicy(shops=shops, budget=budget)
    lower = plan_sku(policy, "A", {"main": levels})
    higher = plan_sku(policy, "A", {"main": levels + 1})
    assert all(h.quantity >= lo.quantity for h, lo in zip(higher.shops, lower.shops, strict=True))


@given(
    levels=st.integers(0, 100),
    budget=st.integers(0, 10),
    bounds=st.lists(st.integers(0, 120), min_size=1, max_size=4),
)
def test_headroom_keeps_the_total_within_sellable_plus_budget(
    levels: int, budget: int, bounds: list[int]
) -> None:
    """What headroom allows never takes the shops' possible total past S + B."""
    names = [f"s{n}" for n in range(len(bounds))]
    shops = {n: ShopPushConfig(listings={"A": n}) for n in [*names, "me"]}
    plan = plan_sku(StockPushPolicy(shops=shops, budget=budget), "A", {"main": levels})
    now = datetime(2026, 11, 11, tzinfo=UTC)
    others = [
        PushRecord(shop=n, sku="A", listing=n, quantity=b, attempted_at=now)
        for n, b in zip(names, bounds, strict=True)
    ]
    allowed = headroom(plan, "me", others)
    mine = plan.for_shop("me")
    assert mine is not None
    assert 0 <= allowed <= mine.quantity
    assert allowed == 0 or allowed + sum(bounds) <= levels + budget
