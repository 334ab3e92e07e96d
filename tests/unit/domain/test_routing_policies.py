"""Routing policies on plain requests: choice, splits, transfers, the registry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ordercore.domain import routing
from ordercore.domain.geo import resolve_text
from ordercore.domain.routing import (
    Allocation,
    FewestSplitsPolicy,
    NearestPolicy,
    PriorityPolicy,
    RouteLine,
    RoutingRequest,
    Transfer,
    build_plan,
    policy_named,
    policy_names,
    register_policy,
)
from ordercore.domain.warehouses import Warehouse
from ordercore.errors import UnknownAdapter, Unroutable

HANGZHOU = resolve_text("浙江省杭州市西湖区")
SH = Warehouse.located("SH", "上海市嘉定区", priority=30)  # ~165 km from Hangzhou
WH = Warehouse.located("WH", "湖北省武汉市东西湖区", priority=20)  # ~560 km
GZ = Warehouse.located("GZ", "广东省广州市白云区", priority=10)  # ~1,040 km
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _request(
    lines: dict[str, int], stock: dict[tuple[str, str], int], *, placed: bool = True
) -> RoutingRequest:
    return RoutingRequest(
        order_id="o1",
        lines=tuple(RouteLine(i, sku, q) for i, (sku, q) in enumerate(lines.items())),
        region=HANGZHOU if placed else None,
        warehouses=(GZ, SH, WH),
        sellable=stock,
    )


def test_nearest_picks_the_closest_warehouse_that_fills_everything() -> None:
    """SH is nearest but lacks B; WH is next and holds both: WH ships the whole order."""
    request = _request({"A": 1, "B": 1}, {("A", "SH"): 5, ("A", "WH"): 1, ("B", "WH"): 1})
    assert NearestPolicy().allocate(request) == Allocation(("WH", "WH"))


def test_nearest_splits_by_line_when_no_warehouse_fills_everything() -> None:
    """Each line goes to the nearest warehouse holding it; no transfers."""
    request = _request({"A": 1, "B": 1}, {("A", "SH"): 5, ("B", "GZ"): 5, ("B", "WH"): 5})
    assert NearestPolicy().allocate(request) == Allocation(("SH", "WH"))


def test_priority_prefers_the_lowest_priority_number() -> None:
    """GZ (priority 10) wins over the nearer SH when both fill the order."""
    request = _request({"A": 1}, {("A", "SH"): 5, ("A", "GZ"): 5})
    assert PriorityPolicy().allocate(request) == Allocation(("GZ",))


def test_an_explicit_priority_list_overrides_warehouse_priorities() -> None:
    """PriorityPolicy(order=[...]) ranks by the list first."""
    request = _request({"A": 1}, {("A", "SH"): 5, ("A", "GZ"): 5, ("A", "WH"): 5})
    assert PriorityPolicy(["WH", "SH"]).allocate(request) == Allocation(("WH",))


def test_fewest_splits_uses_fewer_warehouses_than_nearest() -> None:
    """Nearest per line makes three packages; fewest_splits covers it with two."""
    stock = {
        ("A", "SH"): 1,
        ("B", "WH"): 1,
        ("C", "GZ"): 1,
        ("B", "GZ"): 1,
        ("A", "GZ"): 0,
    }
    request = _request({"A": 1, "B": 1, "C": 1}, stock)
    assert set(NearestPolicy().allocate(request).assignments) == {"SH", "WH", "GZ"}
    assert FewestSplitsPolicy().allocate(request) == Allocation(("SH", "GZ", "GZ"))


def test_fewest_splits_breaks_ties_by_distance() -> None:
    """Two warehouses cover the same lines: the nearer one is chosen."""
    request = _request({"A": 1, "B": 1}, {("A", "SH"): 1, ("B", "WH"): 1, ("B", "GZ"): 1})
    assert FewestSplitsPolicy().allocate(request) == Allocation(("SH", "WH"))


def test_a_line_no_warehouse_fills_alone_gets_a_transfer() -> None:
    """3 units of A, 2 in SH and 2 in WH: SH ships, 1 unit is transferred in from WH."""
    request = _request({"A": 3}, {("A", "SH"): 2, ("A", "WH"): 2})
    allocation = NearestPolicy().allocate(request)
    assert allocation == Allocation(("SH",), (Transfer(0, "A", 1, "WH", "SH"),))


def test_without_splits_one_warehouse_ships_and_the_rest_is_transferred() -> None:
    """nearest_no_split: SH ships both lines; B comes from GZ by transfer."""
    request = _request({"A": 1, "B": 2}, {("A", "SH"): 5, ("B", "GZ"): 5, ("B", "SH"): 1})
    allocation = policy_named("nearest_no_split").allocate(request)
    assert allocation == Allocation(("SH", "SH"), (Transfer(1, "B", 1, "GZ", "SH"),))


def test_an_order_the_network_cannot_fill_is_unroutable() -> None:
    """All warehouses together hold 3 of the 4 units wanted: Unroutable names the SKU."""
    request = _request({"A": 4}, {("A", "SH"): 2, ("A", "GZ"): 1})
    with pytest.raises(Unroutable) as caught:
        NearestPolicy().allocate(request)
    assert (caught.value.sku, caught.value.requested, caught.value.available) == ("A", 4, 3)


def test_an_unplaced_receiver_ranks_by_priority() -> None:
    """Without a region every distance is unknown; priority breaks the tie."""
    request = _request({"A": 1}, {("A", "SH"): 5, ("A", "GZ"): 5}, placed=False)
    assert NearestPolicy().allocate(request) == Allocation(("GZ",))


def test_build_plan_groups_lines_into_packages_with_distances() -> None:
    """Packages are per warehouse, in first-line order, with the distance in km."""
    request = _request({"A": 1, "B": 1, "C": 1}, {})
    allocation = Allocation(("SH", "GZ", "SH"), (Transfer(1, "B", 1, "WH", "GZ"),))
    plan = build_plan(request, allocation, policy="custom", now=NOW, new_id=lambda: "t1")
    assert [(p.warehouse, [line.index for line in p.lines]) for p in plan.packages] == [
        ("SH", [0, 2]),
        ("GZ", [1]),
    ]
    assert plan.packages[0].distance_km == pytest.approx(165, abs=10)
    assert [(t.id, t.from_warehouse, t.to_warehouse) for t in plan.transfers] == [
        ("t1", "WH", "GZ")
    ]
    assert plan.is_split
    assert plan.warehouse_of(2) == "SH"


def test_build_plan_refuses_a_warehouse_that_was_not_a_candidate() -> None:
    """A policy answering an unknown warehouse code is a programming error, not a plan."""
    request = _request({"A": 1}, {})
    with pytest.raises(ValueError, match="not a candidate"):
        build_plan(request, Allocation(("XX",)), policy="bad", now=NOW, new_id=lambda: "t")


def test_unknown_policy_names_list_the_known_ones() -> None:
    """policy_named raises UnknownAdapter listing the registered names."""
    with pytest.raises(UnknownAdapter) as caught:
        policy_named("cheapest")
    assert "nearest" in caught.value.known


def test_a_registered_policy_is_found_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """register_policy makes a custom policy available to route(policy=...)."""
    monkeypatch.setattr(routing, "_POLICIES", dict(routing._POLICIES))  # undone after the test

    class AlwaysGz:
        name = "always_gz"

        def allocate(self, request: RoutingRequest) -> Allocation:
            return Allocation(tuple("GZ" for _ in request.lines))

    register_policy("always_gz", AlwaysGz)
    assert "always_gz" in policy_names()
    assert policy_named("always_gz").allocate(_request({"A": 1}, {})) == Allocation(("GZ",))
