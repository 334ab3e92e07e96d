"""The [stock_push] tables of ordercore.toml become a StockPushPolicy."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from ordercore.errors import InvalidInput
from ordercore.stock_push_config import load_stock_push_policy

CONFIG = """
[channels.taobao-flagship]
kind = "taobao"

[stock_push]
budget = 2
debounce = "500ms"
poll_every = 2
full_push_every = "15m"
products = { "TEE-M" = "TEE", "TEE-L" = "TEE" }
product_budgets = { TEE = 0 }

[stock_push.default_rule]
ratio = 0.9

[stock_push.shops.taobao-flagship]
rule = { ratio = 0.6, warehouses = ["hangzhou"], low_stock = 20, low_ratio = 0.3 }
listings = { "TEE-M" = "612345:4501", "TEE-L" = "612345:4502" }
sku_rules = { "TEE-L" = { delist_at_zero = true } }
"""


def test_a_config_file_builds_the_policy(tmp_path: Path) -> None:
    """Rules, listings, budgets and durations come from the file."""
    path = tmp_path / "ordercore.toml"
    path.write_text(CONFIG.replace('"500ms"', '"1s"'), encoding="utf-8")
    policy = load_stock_push_policy(path)
    assert (policy.debounce_seconds, policy.poll_seconds, policy.full_push_seconds) == (
        1.0,
        2.0,
        900.0,
    )
    assert policy.budget_for("TEE-M") == 0
    rule = policy.rule_for("taobao-flagship", "TEE-L")
    assert (rule.ratio, rule.warehouses, rule.delist_at_zero) == (
        Decimal("0.6"),
        ("hangzhou",),
        True,
    )
    assert policy.shops["taobao-flagship"].listings["TEE-M"] == "612345:4501"


def test_a_bad_duration_names_its_key(tmp_path: Path) -> None:
    """An unreadable duration is refused with the key named."""
    path = tmp_path / "ordercore.toml"
    path.write_text(CONFIG, encoding="utf-8")
    with pytest.raises(InvalidInput, match="debounce"):
        load_stock_push_policy(path)


def test_a_file_without_stock_push_gives_an_empty_policy(tmp_path: Path) -> None:
    """No [stock_push] table: no shops, nothing pushed."""
    path = tmp_path / "ordercore.toml"
    path.write_text("[channels.x]\nkind = 'h5'\n", encoding="utf-8")
    assert load_stock_push_policy(path).shops == {}
