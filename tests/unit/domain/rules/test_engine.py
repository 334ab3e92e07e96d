"""The rules engine: registry, user rules, configuration overrides, the alert ladder."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ordercore.domain.exceptions import RuleAction, default_actions
from ordercore.domain.orders import Address, Contact, Money, Order, OrderLine
from ordercore.domain.rules import (
    BUILTIN_RULES,
    Rule,
    RuleOverride,
    RuleRegistry,
    RulesConfig,
    RulesEngine,
    ScreeningContext,
)
from ordercore.domain.severity import Severity
from ordercore.errors import InvalidInput

NOW = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)


def order(**changes: object) -> Order:
    """A clean order; keyword arguments replace fields."""
    fields: dict[str, object] = {
        "id": "o1",
        "external_id": "E1",
        "buyer_id": "vip-1",
        "lines": (OrderLine(sku="TEA", quantity=1, unit_price=Money(amount=Decimal("89"))),),
        "receiver": Contact(name="李娜", phone="13657120984"),
        "address": Address(
            province="浙江省", city="杭州市", district="西湖区", detail="文三路478号1203室"
        ),
        "created_at": NOW,
        "updated_at": NOW,
    }
    fields.update(changes)
    return Order.model_validate(fields)


CONTEXT = ScreeningContext(now=NOW)


def test_the_severity_ladder_adds_actions_level_by_level() -> None:
    """info flags; warning notifies operations; high holds; critical notifies a supervisor."""
    assert default_actions(Severity.INFO) == {RuleAction.FLAG}
    assert default_actions(Severity.WARNING) == {RuleAction.FLAG, RuleAction.NOTIFY_OPERATIONS}
    assert RuleAction.HOLD_SHIPMENT in default_actions(Severity.HIGH)
    assert RuleAction.NOTIFY_SUPERVISOR not in default_actions(Severity.HIGH)
    assert RuleAction.NOTIFY_SUPERVISOR in default_actions(Severity.CRITICAL)


def test_builtin_rules_cover_every_family_with_unique_ids() -> None:
    """The built-ins span the six families and no id repeats."""
    assert len({rule.id for rule in BUILTIN_RULES}) == len(BUILTIN_RULES)
    assert {rule.family for rule in BUILTIN_RULES} == {
        "vague_address",
        "invalid_contact",
        "payment",
        "stock",
        "fraud",
        "remark_risk",
    }


def test_a_user_rule_registered_by_decorator_runs_with_its_params() -> None:
    """A rule added through the registry fires from the engine, reading config.params."""
    registry = RuleRegistry.with_builtins()

    @registry.rule("shop.vip", family="vip", severity=Severity.INFO, description="VIP buyer")
    def vip(order: Order, context: ScreeningContext, config: RulesConfig) -> list[str]:
        return ["VIP buyer"] if order.buyer_id in config.params["shop.vip"]["buyers"] else []

    engine = RulesEngine(RulesConfig(params={"shop.vip": {"buyers": ["vip-1"]}}), registry)
    [finding] = engine.evaluate(order(), CONTEXT)
    assert (finding.rule_id, finding.family, finding.actions) == (
        "shop.vip",
        "vip",
        frozenset({RuleAction.FLAG}),
    )


def test_registering_an_id_twice_is_refused() -> None:
    """A second rule under a taken id raises InvalidInput naming the id."""
    registry = RuleRegistry.with_builtins()
    with pytest.raises(InvalidInput, match=r"address\.fuzzy"):
        registry.register(BUILTIN_RULES[0])


def test_an_override_of_an_unknown_rule_lists_the_known_ones() -> None:
    """A misspelt rule id in the overrides raises InvalidInput listing the registered ids."""
    with pytest.raises(InvalidInput, match=r"known: address\.fuzzy.*got .adress\.fuzzy"):
        RulesEngine(RulesConfig(rules={"adress.fuzzy": RuleOverride(enabled=False)}))


def test_a_severity_override_moves_the_rule_up_the_ladder() -> None:
    """Raising remark.risk to high adds hold_shipment and keeps its own extra actions."""
    engine = RulesEngine(RulesConfig(rules={"remark.risk": RuleOverride(severity=Severity.HIGH)}))
    [finding] = engine.evaluate(order(remark="差评"), CONTEXT)
    assert finding.severity is Severity.HIGH
    assert {RuleAction.HOLD_SHIPMENT, RuleAction.RAISE_PRIORITY} <= finding.actions


def test_an_actions_override_replaces_the_whole_set() -> None:
    """Configured actions are exactly the actions of the finding."""
    only_flag = RuleOverride(actions=frozenset({RuleAction.FLAG}))
    engine = RulesEngine(RulesConfig(rules={"contact.phone": only_flag}))
    [finding] = engine.evaluate(order(receiver=Contact(name="李娜", phone="")), CONTEXT)
    assert finding.actions == {RuleAction.FLAG}


def test_rules_without_their_context_stay_silent() -> None:
    """Stock, payment and velocity rules say nothing when the context does not know."""
    assert RulesEngine().evaluate(order(), CONTEXT) == ()


def test_rule_reasons_are_collected_in_one_finding_per_rule() -> None:
    """A rule with several problems yields one finding carrying each reason."""
    bare = Address(province="", city="", district="", detail="春熙路")
    [finding] = RulesEngine().evaluate(order(address=bare), CONTEXT)
    assert finding.rule_id == "address.incomplete"
    assert len(finding.reasons) == 2


def test_a_rule_is_plain_data_plus_a_function() -> None:
    """A Rule built by hand runs in an engine of its own registry."""
    rule = Rule(
        id="shop.big",
        family="fraud",
        description="big quantity",
        severity=Severity.WARNING,
        check=lambda o, c, cfg: ["big"] if o.lines[0].quantity > 3 else [],
    )
    engine = RulesEngine(registry=RuleRegistry([rule]))
    assert engine.evaluate(order(), CONTEXT) == ()
    big = order(lines=(OrderLine(sku="TEA", quantity=4),))
    assert [f.rule_id for f in engine.evaluate(big, CONTEXT)] == ["shop.big"]
