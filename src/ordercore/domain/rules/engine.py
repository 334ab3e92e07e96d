"""The rule registry and the engine that evaluates its rules on an order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace

from ordercore.domain.exceptions import Finding, RuleAction
from ordercore.domain.orders import Order
from ordercore.domain.rules.address import ADDRESS_RULES
from ordercore.domain.rules.base import Check, Rule, ScreeningContext
from ordercore.domain.rules.config import RulesConfig
from ordercore.domain.rules.contact import CONTACT_RULES
from ordercore.domain.rules.fraud import FRAUD_RULES
from ordercore.domain.rules.payment import PAYMENT_RULES
from ordercore.domain.rules.remarks import REMARK_RULES
from ordercore.domain.rules.stock import STOCK_RULES
from ordercore.domain.severity import Severity
from ordercore.errors import FieldError, InvalidInput

__all__ = ["BUILTIN_RULES", "RuleRegistry", "RulesEngine"]

BUILTIN_RULES: tuple[Rule, ...] = (
    *ADDRESS_RULES,
    *CONTACT_RULES,
    *PAYMENT_RULES,
    *STOCK_RULES,
    *FRAUD_RULES,
    *REMARK_RULES,
)
"""Every built-in rule, in evaluation order."""


class RuleRegistry:
    """The rules an engine can run: the built-ins plus the user's own.

    ::

        registry = RuleRegistry.with_builtins()

        @registry.rule("shop.vip_gift", family="vip", severity=Severity.INFO,
                       description="VIP orders get a gift card")
        def vip_gift(order, context, config):
            return ["VIP buyer"] if order.buyer_id in config.params["shop.vip_gift"]["vips"] else []
    """

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self._rules: dict[str, Rule] = {}
        for rule in rules:
            self.register(rule)

    @classmethod
    def with_builtins(cls) -> RuleRegistry:
        """A registry holding every built-in rule."""
        return cls(BUILTIN_RULES)

    def register(self, rule: Rule, *, replace_existing: bool = False) -> Rule:
        """Add a rule; InvalidInput when its id is taken (unless ``replace_existing``)."""
        if not rule.id.strip():
            raise InvalidInput("rule", [FieldError("id", "must not be empty", rule.id)])
        if rule.id in self._rules and not replace_existing:
            raise InvalidInput(
                "rule", [FieldError("id", "is already registered (pass replace_existing)", rule.id)]
            )
        self._rules[rule.id] = rule
        return rule

    def rule(
        self,
        rule_id: str,
        *,
        family: str,
        severity: Severity,
        description: str,
        extra_actions: Iterable[RuleAction] = (),
    ) -> Callable[[Check], Check]:
        """Register the decorated check function as a rule."""

        def decorate(check: Check) -> Check:
            self.register(
                Rule(
                    id=rule_id,
                    family=family,
                    description=description,
                    severity=severity,
                    check=check,
                    extra_actions=frozenset(extra_actions),
                )
            )
            return check

        return decorate

    def get(self, rule_id: str) -> Rule:
        """The rule with this id; InvalidInput listing the known ids when there is none."""
        try:
            return self._rules[rule_id]
        except KeyError:
            known = ", ".join(self._rules)
            raise InvalidInput(
                "rule", [FieldError("id", f"unknown rule (known: {known})", rule_id)]
            ) from None

    def ids(self) -> tuple[str, ...]:
        """Registered rule ids, in registration order."""
        return tuple(self._rules)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules.values())

    def __len__(self) -> int:
        return len(self._rules)


class RulesEngine:
    """Evaluates the enabled rules of a registry, as configured, on one order at a time.

    Pure: no I/O, the context carries everything a rule needs. A rule that raises is a
    bug in that rule and propagates.
    """

    def __init__(self, config: RulesConfig | None = None, registry: RuleRegistry | None = None):
        self.config = config or RulesConfig()
        self.registry = registry or RuleRegistry.with_builtins()
        self.rules: tuple[Rule, ...] = _configured(self.registry, self.config)

    def evaluate(self, order: Order, context: ScreeningContext) -> tuple[Finding, ...]:
        """The findings of every enabled rule that fires on ``order``."""
        config = self.config
        findings = []
        for rule in self.rules:
            reasons = rule.check(order, context, config)
            if reasons:
                findings.append(
                    Finding(
                        rule_id=rule.id,
                        family=rule.family,
                        severity=rule.severity,
                        reasons=tuple(reasons),
                        actions=rule.actions,
                    )
                )
        return tuple(findings)

    def evaluate_many(
        self, items: Sequence[tuple[Order, ScreeningContext]]
    ) -> list[tuple[Finding, ...]]:
        """``evaluate`` over many orders, aligned with the input."""
        return [self.evaluate(order, context) for order, context in items]


def _configured(registry: RuleRegistry, config: RulesConfig) -> tuple[Rule, ...]:
    for rule_id in config.rules:
        registry.get(rule_id)  # an override of an unknown rule is a typo: say so
    rules = []
    for rule in registry:
        override = config.rules.get(rule.id)
        if override is None:
            rules.append(rule)
            continue
        if not override.enabled:
            continue
        rules.append(
            replace(
                rule,
                severity=override.severity or rule.severity,
                actions_override=override.actions,
            )
        )
    return tuple(rules)
