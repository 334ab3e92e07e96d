"""Stock rules (family ``stock``): SKUs unknown, delisted, or without enough stock."""

from __future__ import annotations

from ordercore.domain.orders import Order
from ordercore.domain.rules.base import Rule, ScreeningContext
from ordercore.domain.rules.config import RulesConfig
from ordercore.domain.severity import Severity

__all__ = ["STOCK_RULES", "check_delisted", "check_out_of_stock", "check_unknown_sku"]

FAMILY = "stock"


def _wanted(order: Order) -> dict[str, int]:
    wanted: dict[str, int] = {}
    for line in order.lines:
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
    return wanted


def check_unknown_sku(order: Order, context: ScreeningContext, config: RulesConfig) -> list[str]:
    """A line names a SKU the inventory has never heard of."""
    stock = context.stock
    if stock is None:
        return []
    return [
        f"SKU {sku!r} is unknown to the inventory" for sku in _wanted(order) if sku not in stock
    ]


def check_out_of_stock(order: Order, context: ScreeningContext, config: RulesConfig) -> list[str]:
    """A known SKU cannot cover the quantity this order needs."""
    stock = context.stock
    if stock is None:
        return []
    return [
        f"SKU {sku!r} is out of stock: needs {quantity}, available {stock[sku]}"
        for sku, quantity in _wanted(order).items()
        if sku in stock and stock[sku] < quantity
    ]


def check_delisted(order: Order, context: ScreeningContext, config: RulesConfig) -> list[str]:
    """A line names a SKU that is no longer sold."""
    configured = config.stock.delisted_skus
    return [
        f"SKU {sku!r} is delisted"
        for sku in _wanted(order)
        if sku in context.delisted or sku in configured
    ]


STOCK_RULES = (
    Rule(
        id="stock.out_of_stock",
        family=FAMILY,
        description="Not enough sellable stock for a line",
        severity=Severity.HIGH,
        check=check_out_of_stock,
    ),
    Rule(
        id="stock.delisted",
        family=FAMILY,
        description="A line's SKU is delisted",
        severity=Severity.HIGH,
        check=check_delisted,
    ),
    Rule(
        id="stock.unknown_sku",
        family=FAMILY,
        description="A line's SKU is unknown to the inventory",
        severity=Severity.HIGH,
        check=check_unknown_sku,
    ),
)
"""The built-in stock rules."""
