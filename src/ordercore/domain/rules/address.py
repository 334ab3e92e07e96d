"""Vague-address rules (family ``vague_address``): fuzzy words, missing parts, too short."""

from __future__ import annotations

from ordercore.domain.contact_checks import found_words, has_house_number, missing_regions
from ordercore.domain.orders import Order
from ordercore.domain.rules.base import Rule, ScreeningContext
from ordercore.domain.rules.config import RulesConfig
from ordercore.domain.severity import Severity

__all__ = ["ADDRESS_RULES", "check_fuzzy_address", "check_incomplete_address"]

FAMILY = "vague_address"


def check_fuzzy_address(order: Order, context: ScreeningContext, config: RulesConfig) -> list[str]:
    """The street or detail uses words that describe a place by its surroundings."""
    address = order.address
    if address.masked:
        return []
    words = found_words(f"{address.street}{address.detail}", config.address.fuzzy_words)
    if not words:
        return []
    return [f"address uses fuzzy words ({'、'.join(words)})"]


def check_incomplete_address(
    order: Order, context: ScreeningContext, config: RulesConfig
) -> list[str]:
    """The address lacks a region, a house/room number, or is too short to find."""
    address = order.address
    if address.masked:
        return []
    rules = config.address
    reasons: list[str] = []
    missing = missing_regions(
        address,
        municipalities=rules.municipalities,
        without_districts=rules.cities_without_districts,
    )
    if missing:
        reasons.append(f"address lacks {', '.join(missing)}")
    detail = f"{address.street}{address.detail}".replace(" ", "")
    if len(detail) < rules.min_detail_length:
        reasons.append(
            f"address detail has {len(detail)} characters (rule: at least "
            f"{rules.min_detail_length})"
        )
    elif not has_house_number(detail):
        reasons.append("address has no house, building or room number")
    return reasons


ADDRESS_RULES = (
    Rule(
        id="address.fuzzy",
        family=FAMILY,
        description="Address described by its surroundings (附近, 楼下, 旁边, 对面, 门口, ...)",
        severity=Severity.WARNING,
        check=check_fuzzy_address,
    ),
    Rule(
        id="address.incomplete",
        family=FAMILY,
        description="Address lacks province/city/district or a house number, or is too short",
        severity=Severity.WARNING,
        check=check_incomplete_address,
    ),
)
"""The built-in vague-address rules."""
