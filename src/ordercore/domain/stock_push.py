"""What each shop may list: publish rules, their precedence, and the oversell budget.

Platforms accept orders against the quantity a shop lists, not against our stock, so
the quantity published to every shop is computed here, per (shop, SKU), from the
sellable stock of the warehouses that shop draws on:

1. **Rule.** ``q = floor(S_i * ratio) + addend``, raised to ``floor``, cut to ``ceiling``,
   never below 0, and 0 whenever ``S_i`` (the shop's own sellable) is 0. When ``S`` (the
   SKU's sellable over every warehouse any shop uses) is at or below ``low_stock``, the
   rule's ``low_ratio`` replaces ``ratio``: the policy tightens as a SKU runs low.
2. **Precedence.** A shop's rule for a SKU is resolved field by field: the shop's rule
   for that SKU, else its rule for the SKU's product, else the shop's own rule, else the
   policy's default rule, else the built-in default (publish everything). A field left
   out (``None``) at one level falls through to the next.
3. **Budget.** The sync-lag (oversell) budget ``B`` of a SKU bounds what the shops may
   sell beyond our stock before the next push lands. The plan guarantees

   * ``q_i <= S_i + B`` for every shop, and
   * ``sum_i q_i <= S + B``,

   by scaling the rule's quantities down (largest remainder, ties by shop name, never
   above the rule's own quantity) when their sum would exceed ``S + B``.

Why that bounds the oversell (docs/stock-push.md has the full argument): a platform
sells at most what it lists; each sale it accepts comes back to us as an order that
reserves stock. Between two pushes the platforms therefore accept at most
``sum_i q_i <= S + B`` units, of which ``S`` are covered by stock, so at most ``B``
cannot be. Shops are pushed one at a time, so :func:`headroom` caps a raise by what the
other shops may still show (their last accepted or pending quantities). Units sold on a
platform but not yet reserved with us when a push is computed (the intake lag ``U``)
are not in ``S``'s reduction yet and a full-set push lists them again: the end-to-end
bound is ``B + U``. Size ``B`` to cover the peak sales
rate times the intake lag, or keep the lag short (webhooks).

Everything here is pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from ordercore.errors import FieldError, InvalidInput

__all__ = [
    "DEFAULT_RULE",
    "PublishRule",
    "PushRecord",
    "ResolvedRule",
    "ShopPushConfig",
    "ShopQuantity",
    "SkuPlan",
    "StockDrift",
    "StockPushPolicy",
    "allocate",
    "headroom",
    "plan_sku",
    "rule_quantity",
]

Ratio = Annotated[Decimal, Field(ge=0, le=1)]


class PublishRule(BaseModel):
    """One layer of a publish rule; a field left ``None`` falls through to the next layer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ratio: Ratio | None = None
    """Share of the shop's sellable to list (0..1)."""
    addend: int | None = None
    """Units added after the ratio (negative: hold some back)."""
    floor: NonNegativeInt | None = None
    """Least to list while the shop's sellable is above 0 (the budget still caps it)."""
    ceiling: NonNegativeInt | None = None
    """Most to list."""
    warehouses: tuple[str, ...] | None = None
    """The warehouses whose sellable the shop may sell (empty or None: all)."""
    low_stock: NonNegativeInt | None = None
    """At or below this total sellable, ``low_ratio`` replaces ``ratio``."""
    low_ratio: Ratio | None = None
    """The tightened ratio used at or below ``low_stock``."""
    delist_at_zero: bool | None = None
    """Take the listing down while it would show 0; list it again when stock returns."""

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.floor is not None and self.ceiling is not None and self.floor > self.ceiling:
            raise ValueError(f"floor ({self.floor}) must not exceed ceiling ({self.ceiling})")
        return self


@dataclass(frozen=True, slots=True)
class ResolvedRule:
    """A rule with every field decided (see the module's precedence)."""

    ratio: Decimal = Decimal(1)
    addend: int = 0
    floor: int = 0
    ceiling: int | None = None
    warehouses: tuple[str, ...] = ()
    low_stock: int = 0
    low_ratio: Decimal | None = None
    delist_at_zero: bool = False

    def over(self, layer: PublishRule | None) -> ResolvedRule:
        """This rule with ``layer``'s set fields on top."""
        if layer is None:
            return self
        changes = {
            name: value
            for name in PublishRule.model_fields
            if (value := getattr(layer, name)) is not None
        }
        return replace(self, **changes) if changes else self


DEFAULT_RULE = ResolvedRule()
"""Publish all sellable of every warehouse, no floor, no ceiling, never delist."""


def rule_quantity(rule: ResolvedRule, shop_sellable: int, total_sellable: int) -> int:
    """The quantity ``rule`` lists for a shop with ``shop_sellable`` (before the budget)."""
    if shop_sellable <= 0:
        return 0
    ratio = rule.ratio
    if rule.low_ratio is not None and total_sellable <= rule.low_stock:
        ratio = min(ratio, rule.low_ratio)
    quantity = math.floor(Decimal(shop_sellable) * ratio) + rule.addend
    quantity = max(quantity, rule.floor)
    if rule.ceiling is not None:
        quantity = min(quantity, rule.ceiling)
    return max(quantity, 0)


def allocate(wanted: Mapping[str, int], capacity: int) -> dict[str, int]:
    """Cut ``wanted`` (per shop) to sum at most ``capacity``, keeping proportions.

    Each shop gets ``floor(w * capacity / total)``; the units left go one each to the
    largest remainders (ties: shop name). Nobody gets more than asked; the sum is
    ``min(capacity, sum(wanted))``.
    """
    total = sum(wanted.values())
    capacity = max(capacity, 0)
    if total <= capacity:
        return dict(wanted)
    shares = {shop: w * capacity // total for shop, w in wanted.items()}
    left = capacity - sum(shares.values())
    order = sorted(wanted, key=lambda shop: (-(wanted[shop] * capacity % total), shop))
    for shop in order[:left]:
        shares[shop] += 1
    return shares


class ShopPushConfig(BaseModel):
    """One shop: its rules and which of our SKUs it lists, under which listing ids."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: PublishRule = PublishRule()
    product_rules: dict[str, PublishRule] = Field(default_factory=dict)
    sku_rules: dict[str, PublishRule] = Field(default_factory=dict)
    listings: dict[str, str] = Field(default_factory=dict)
    """Our SKU -> the platform's listing id (what the adapter's push_stock takes).

    Only SKUs named here are pushed to the shop; a listing id is the adapter's to
    interpret (Taobao ``num_iid:sku_id``, Shopify ``inventory_item_id``, H5 its SKU).
    """


class StockPushPolicy(BaseModel):
    """Every shop's rules, the oversell budgets, and when pushes run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shops: dict[str, ShopPushConfig] = Field(default_factory=dict)
    """By channel name (the adapter's ``name``)."""
    default_rule: PublishRule = PublishRule()
    products: dict[str, str] = Field(default_factory=dict)
    """Our SKU -> its product (for product-level rules and budgets)."""
    budget: NonNegativeInt = 0
    """Units per SKU the shops together may sell beyond our sellable before a push lands."""
    product_budgets: dict[str, NonNegativeInt] = Field(default_factory=dict)
    sku_budgets: dict[str, NonNegativeInt] = Field(default_factory=dict)
    debounce_seconds: Annotated[float, Field(ge=0, le=3600)] = 1.0
    """Changes are collected this long before a push is enqueued."""
    full_push_seconds: Annotated[float, Field(gt=0)] = 900.0
    """Every mapped SKU is pushed to every shop this often (repairs drift)."""
    poll_seconds: Annotated[float, Field(gt=0, le=3600)] = 1.0
    """How often stock levels are compared with the last ones seen (change detection)."""
    batch_size: Annotated[int, Field(ge=1, le=500)] = 20
    """SKUs per push task (TOP's skus.quantity.update takes 20 at most)."""

    _shop_rules: dict[str, ResolvedRule] = PrivateAttr(default_factory=dict)
    _sorted_shops: list[str] = PrivateAttr(default_factory=list)

    @classmethod
    def parse(cls, data: Mapping[str, Any], where: str = "stock_push") -> Self:
        """Validate a mapping (a TOML table); InvalidInput names each bad field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput(
                where,
                [
                    FieldError(
                        ".".join(str(part) for part in error["loc"]) or where,
                        error["msg"],
                        error.get("input"),
                    )
                    for error in exc.errors()
                ],
            ) from None

    def product_of(self, sku: str) -> str | None:
        """The product a SKU belongs to, if configured."""
        return self.products.get(sku)

    def budget_for(self, sku: str) -> int:
        """The SKU's budget: its own, else its product's, else the policy's."""
        if sku in self.sku_budgets:
            return self.sku_budgets[sku]
        product = self.products.get(sku)
        if product is not None and product in self.product_budgets:
            return self.product_budgets[product]
        return self.budget

    def rule_for(self, shop: str, sku: str) -> ResolvedRule:
        """The shop's rule for a SKU: SKU > product > shop > default > built-in."""
        config = self.shops[shop]
        base = self._shop_rules.get(shop)
        if base is None:
            base = self._shop_rules[shop] = DEFAULT_RULE.over(self.default_rule).over(config.rule)
        product = self.products.get(sku)
        rule = base if product is None else base.over(config.product_rules.get(product))
        return rule.over(config.sku_rules.get(sku))

    def shops_listing(self, sku: str) -> list[str]:
        """The shops that list a SKU, sorted."""
        return [name for name in self._shop_names() if sku in self.shops[name].listings]

    def _shop_names(self) -> list[str]:
        if not self._sorted_shops and self.shops:
            self._sorted_shops.extend(sorted(self.shops))
        return self._sorted_shops

    def mapped_skus(self, shop: str | None = None) -> list[str]:
        """Every SKU some shop (or ``shop``) lists, sorted."""
        shops = [self.shops[shop]] if shop is not None else list(self.shops.values())
        return sorted({sku for config in shops for sku in config.listings})


@dataclass(frozen=True, slots=True)
class ShopQuantity:
    """What one shop should list for one SKU."""

    shop: str
    sku: str
    listing: str
    quantity: int
    listed: bool
    """False: take the listing down (its rule delists at zero and the quantity is 0)."""
    wanted: int
    """The rule's quantity before the budget cut it."""


@dataclass(frozen=True, slots=True)
class SkuPlan:
    """One SKU's quantities for every shop that lists it."""

    sku: str
    sellable: int
    """Over every warehouse any of these shops draws on."""
    budget: int
    shops: tuple[ShopQuantity, ...]

    @property
    def total(self) -> int:
        """The sum published (at most ``sellable + budget``)."""
        return sum(item.quantity for item in self.shops)

    def for_shop(self, shop: str) -> ShopQuantity | None:
        """This SKU's quantity for one shop, if it lists the SKU."""
        return next((item for item in self.shops if item.shop == shop), None)


def _sellable(levels: Mapping[str, int], warehouses: Sequence[str]) -> int:
    chosen: Iterable[str] = warehouses or levels.keys()
    return sum(max(levels.get(warehouse, 0), 0) for warehouse in set(chosen))


def plan_sku(policy: StockPushPolicy, sku: str, levels: Mapping[str, int]) -> SkuPlan:
    """Every shop's quantity for ``sku`` given its sellable per warehouse (the guarantee)."""
    shops = policy.shops_listing(sku)
    rules = {shop: policy.rule_for(shop, sku) for shop in shops}
    used: set[str] = set()
    for rule in rules.values():
        used.update(rule.warehouses or levels.keys())
    total = _sellable(levels, sorted(used)) if used else 0
    budget = policy.budget_for(sku)
    own = {shop: _sellable(levels, rule.warehouses) for shop, rule in rules.items()}
    wanted = {
        shop: min(rule_quantity(rule, own[shop], total), own[shop] + budget)
        for shop, rule in rules.items()
    }
    granted = allocate(wanted, total + budget)
    return SkuPlan(
        sku=sku,
        sellable=total,
        budget=budget,
        shops=tuple(
            ShopQuantity(
                shop=shop,
                sku=sku,
                listing=policy.shops[shop].listings[sku],
                quantity=granted[shop],
                listed=granted[shop] > 0 or not rules[shop].delist_at_zero,
                wanted=wanted[shop],
            )
            for shop in shops
        ),
    )


class PushRecord(BaseModel):
    """The last push of one SKU to one shop: what the platform shows, as far as we know."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shop: str = Field(min_length=1)
    sku: str = Field(min_length=1)
    listing: str = Field(min_length=1)
    quantity: NonNegativeInt | None = None
    """The last quantity the platform accepted (None: never accepted one)."""
    listed: bool = True
    pushed_at: AwareDatetime | None = None
    """When the platform accepted ``quantity``."""
    attempted_at: AwareDatetime
    """The last attempt, successful or not."""
    error: str | None = None
    """The last attempt's error (None: it succeeded)."""
    pending: NonNegativeInt | None = None
    """A quantity being pushed, or whose push failed without an answer: the platform may
    show it. Cleared when a push is accepted or refused."""

    @property
    def bound(self) -> int:
        """The most this shop may show now: the accepted quantity or a pending one."""
        shown = (self.quantity or 0) if self.listed else 0
        return max(shown, self.pending or 0)

    def after_success(self, quantity: int, listed: bool, at: datetime) -> PushRecord:
        """This record once the platform accepted ``quantity`` at ``at``."""
        return self.model_copy(
            update={
                "quantity": quantity,
                "listed": listed,
                "pushed_at": at,
                "attempted_at": at,
                "error": None,
                "pending": None,
            }
        )


def headroom(plan: SkuPlan, shop: str, others: Iterable[PushRecord]) -> int:
    """What ``shop`` may be pushed now without the shops' total passing ``S + B``.

    ``others`` are the other shops' records of this SKU: each may still show its
    :attr:`PushRecord.bound` until its own push lands. A push that lowers a quantity is
    never held back; one that raises it gets at most the room the others leave, so a
    shop whose push is stuck (its API is down) keeps its units out of everyone else's.
    """
    item = plan.for_shop(shop)
    if item is None:
        return 0
    taken = sum(record.bound for record in others if record.shop != shop)
    return max(0, min(item.quantity, plan.sellable + plan.budget - taken))


@dataclass(frozen=True, slots=True)
class StockDrift:
    """A (shop, SKU) whose platform shows (as last pushed) something else than it should."""

    shop: str
    sku: str
    wanted: int
    wanted_listed: bool
    pushed: int | None
    pushed_listed: bool | None
    pushed_at: datetime | None
    error: str | None
