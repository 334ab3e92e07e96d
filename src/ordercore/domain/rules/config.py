"""Rule configuration as data: thresholds, word lists, blacklists and per-rule overrides.

Every field has a default that suits a typical Chinese shop; load changes from TOML with
:func:`ordercore.domain.rules.load_rules_config` or build a :class:`RulesConfig` in code.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ordercore.domain.exceptions import RuleAction
from ordercore.domain.health import FUZZY_ADDRESS_WORDS
from ordercore.domain.severity import Severity

__all__ = [
    "AddressRules",
    "ContactRules",
    "FraudRules",
    "PaymentRules",
    "RemarkRules",
    "RuleOverride",
    "RulesConfig",
    "StockRules",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
Positive = Annotated[int, Field(gt=0)]


class AddressRules(BaseModel):
    """Vague-address settings."""

    model_config = _FROZEN

    fuzzy_words: tuple[str, ...] = (
        *FUZZY_ADDRESS_WORDS,
        "隔壁",
        "后面",
        "一带",
        "不远",
        "差不多",
        "好像",
        "到了打电话",
        "到了联系",
    )
    """Words that make an address a guess rather than a place."""
    min_detail_length: Annotated[int, Field(ge=0)] = 6
    """Fewest characters of street + detail an address needs."""
    municipalities: tuple[str, ...] = ("北京", "上海", "天津", "重庆")
    """Provinces whose city may be left empty."""
    cities_without_districts: tuple[str, ...] = (
        "东莞市",
        "中山市",
        "儋州市",
        "嘉峪关市",
        "三沙市",
    )
    """Prefecture-level cities with no districts: their district may be left empty."""


class ContactRules(BaseModel):
    """Invalid-contact settings."""

    model_config = _FROZEN

    placeholder_names: frozenset[str] = frozenset(
        {
            "无",
            "空",
            "未知",
            "不详",
            "匿名",
            "先生",
            "女士",
            "小姐",
            "收货人",
            "收件人",
            "客户",
            "买家",
            "顾客",
            "亲",
            "某某",
            "测试",
            "test",
            "xxx",
            "abc",
            "null",
            "none",
            "n/a",
            "na",
            "-",
            "?",
            "？",
            ".",
        }
    )
    """Names (lower-cased) that are not a person's name."""
    placeholder_phones: frozenset[str] = frozenset({"13800138000", "13888888888", "13900000000"})
    """Known fake numbers besides repeated digits and runs."""
    allow_service_numbers: bool = False
    """Accept 400/800 hotlines as a receiver phone (a business receiver)."""


class PaymentRules(BaseModel):
    """Payment-callback settings."""

    model_config = _FROZEN

    confirm_within: timedelta = timedelta(minutes=30)
    """How long a started payment may wait for its confirming callback."""


class StockRules(BaseModel):
    """Stock and listing settings."""

    model_config = _FROZEN

    delisted_skus: frozenset[str] = frozenset()
    """SKUs no longer sold (besides those the listing provider reports)."""


class FraudRules(BaseModel):
    """Fraud and brushing (刷单) settings."""

    model_config = _FROZEN

    window: timedelta = timedelta(hours=1)
    """The velocity window: orders from one phone, address or device within it count."""
    max_orders_per_phone: Positive = 5
    max_orders_per_address: Positive = 8
    max_orders_per_device: Positive = 5
    """Most orders (this one included) one key may place within ``window``."""
    mismatch_window: timedelta = timedelta(hours=24)
    max_receivers_per_buyer: Positive = 4
    """Most distinct receiver phones one buyer account ships to within ``mismatch_window``."""
    max_buyers_per_receiver: Positive = 4
    """Most distinct buyer accounts shipping to one receiver phone within ``mismatch_window``."""
    max_order_amount: Decimal = Decimal(20_000)
    min_order_amount: Decimal = Decimal("0.10")
    """Totals above the maximum or below the minimum (0.01 brushing orders) are abnormal."""
    max_line_quantity: Positive = 50
    blacklist_phones: frozenset[str] = frozenset()
    blacklist_buyers: frozenset[str] = frozenset()
    blacklist_devices: frozenset[str] = frozenset()
    blacklist_address_words: tuple[str, ...] = ()
    """Fragments of addresses known for fraud (a parcel-forwarding drop, ...)."""


class RemarkRules(BaseModel):
    """Remark-risk settings: words in buyer messages and notes that need a supervisor."""

    model_config = _FROZEN

    risk_words: tuple[str, ...] = (
        "假货",
        "假的",
        "仿货",
        "高仿",
        "投诉",
        "差评",
        "12315",
        "12345热线",
        "消协",
        "消费者协会",
        "工商局",
        "找工商",
        "告到工商",
        "工商部门",
        "市场监管",
        "退款",
        "退钱",
        "赔偿",
        "假一赔",
        "举报",
        "曝光",
        "找媒体",
        "维权",
        "起诉",
        "律师函",
        "骗子",
        "欺诈",
        "骗人",
        "质量问题",
        # traditional forms, from Hong Kong, Macao and Taiwan buyers
        "假貨",
        "投訴",
        "差評",
        "退錢",
        "賠償",
        "舉報",
        "騙子",
    )
    """Words that make a message a risk (complaint, refund, fake-goods claim, ...)."""
    negations: tuple[str, ...] = (
        "不会给差评",
        "不给差评",
        "不会差评",
        "不差评",
        "不会投诉",
        "不投诉",
        "不用退款",
        "不退款",
        "不是假货",
        "不会退",
    )
    """Phrases that mention a risk word to rule it out; they are ignored."""


class RuleOverride(BaseModel):
    """Per-rule switches from configuration: turn a rule off, or change its level/actions."""

    model_config = _FROZEN

    enabled: bool = True
    severity: Severity | None = None
    actions: frozenset[RuleAction] | None = None
    """The complete action set (replaces the severity ladder and the rule's extras)."""


class RulesConfig(BaseModel):
    """Every setting of the built-in rules plus overrides and parameters of user rules."""

    model_config = _FROZEN

    address: AddressRules = AddressRules()
    contact: ContactRules = ContactRules()
    payment: PaymentRules = PaymentRules()
    stock: StockRules = StockRules()
    fraud: FraudRules = FraudRules()
    remark: RemarkRules = RemarkRules()
    rules: dict[str, RuleOverride] = Field(default_factory=dict)
    """Overrides by rule id."""
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Free-form parameters of user rules, by rule id."""
