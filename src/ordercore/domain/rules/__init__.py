"""The exception rules: data plus small functions, evaluated by :class:`RulesEngine`.

A rule has an id, a family (the ticket type), a description, a severity and actions,
and a check ``(order, context, config) -> reasons``. The built-in families are
``vague_address``, ``invalid_contact``, ``payment``, ``stock``, ``fraud`` and
``remark_risk``; thresholds, word lists and blacklists are data in :class:`RulesConfig`
(loadable from TOML); users register their own rules on a :class:`RuleRegistry`.
See docs/exceptions.md.
"""

from ordercore.domain.rules.base import (
    Check,
    HistorySummary,
    PaymentState,
    PaymentStatus,
    Rule,
    ScreeningContext,
)
from ordercore.domain.rules.config import (
    AddressRules,
    ContactRules,
    FraudRules,
    PaymentRules,
    RemarkRules,
    RuleOverride,
    RulesConfig,
    StockRules,
)
from ordercore.domain.rules.engine import BUILTIN_RULES, RuleRegistry, RulesEngine
from ordercore.domain.rules.history import (
    HistoryEntry,
    history_entry,
    screening_key,
    summarise_history,
)
from ordercore.domain.rules.loader import load_rules_config, parse_rules_config
from ordercore.domain.rules.remarks import RiskMatcher

__all__ = [
    "BUILTIN_RULES",
    "AddressRules",
    "Check",
    "ContactRules",
    "FraudRules",
    "HistoryEntry",
    "HistorySummary",
    "PaymentRules",
    "PaymentState",
    "PaymentStatus",
    "RemarkRules",
    "RiskMatcher",
    "Rule",
    "RuleOverride",
    "RuleRegistry",
    "RulesConfig",
    "RulesEngine",
    "ScreeningContext",
    "StockRules",
    "history_entry",
    "load_rules_config",
    "parse_rules_config",
    "screening_key",
    "summarise_history",
]
