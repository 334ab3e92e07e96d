"""Stock-push configuration: the ``[stock_push]`` tables of ``ordercore.toml``.

::

    [stock_push]
    budget = 2                    # units per SKU the shops may oversell before a push lands
    debounce = "1s"               # changes are collected this long
    poll_every = "1s"             # stock levels compared this often (change detection)
    full_push_every = "15m"       # every mapped SKU pushed to every shop
    batch_size = 20               # SKUs per push task
    products = { "TEE-BLK-M" = "TEE", "TEE-BLK-L" = "TEE" }
    product_budgets = { TEE = 0 }
    sku_budgets = { "MUG-1" = 5 }

    [stock_push.default_rule]     # fields: ratio, addend, floor, ceiling, warehouses,
    ratio = 0.9                   #   low_stock, low_ratio, delist_at_zero

    [stock_push.shops.taobao-flagship]      # a channel name from [channels.NAME]
    rule = { ratio = 0.6, warehouses = ["hangzhou"], low_stock = 20, low_ratio = 0.3 }
    listings = { "TEE-BLK-M" = "612345:4501", "TEE-BLK-L" = "612345:4502" }
    product_rules = { TEE = { ceiling = 200 } }
    sku_rules = { "TEE-BLK-L" = { delist_at_zero = true } }

Durations take the forms :func:`ordercore.channels_config.parse_duration` reads. Every
mistake raises :class:`~ordercore.errors.InvalidInput` naming the key path.
"""

from __future__ import annotations

import os
import tomllib
from typing import Any

from ordercore.channels_config import config_path, parse_duration
from ordercore.domain.stock_push import StockPushPolicy
from ordercore.errors import FieldError, InvalidInput

__all__ = ["load_stock_push_policy", "stock_push_policy"]

_DURATIONS = {
    "debounce": "debounce_seconds",
    "poll_every": "poll_seconds",
    "full_push_every": "full_push_seconds",
}


def stock_push_policy(table: dict[str, Any], where: str = "[stock_push]") -> StockPushPolicy:
    """The policy a parsed ``[stock_push]`` table describes."""
    data = dict(table)
    for key, field in _DURATIONS.items():
        if key in data:
            try:
                data[field] = parse_duration(data.pop(key)).total_seconds()
            except (InvalidInput, ValueError, TypeError) as exc:
                raise InvalidInput(where, [FieldError(key, str(exc), table[key])]) from None
    return StockPushPolicy.parse(data, where)


def load_stock_push_policy(path: str | os.PathLike[str] | None = None) -> StockPushPolicy:
    """Read the ``[stock_push]`` tables of the config file (an empty policy when absent)."""
    file = config_path(path)
    where = f"config {file.name!r} [stock_push]"
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(
            where, [FieldError("file", f"cannot be read: {exc}", str(file))]
        ) from None
    table = document.get("stock_push", {})
    if not isinstance(table, dict):
        raise InvalidInput(where, [FieldError("stock_push", "must be a table", table)])
    return stock_push_policy(table, where)
