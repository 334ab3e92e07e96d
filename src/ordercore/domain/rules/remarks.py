"""The remark-risk rule (family ``remark_risk``): complaints, refunds, fake-goods claims.

Matching uses an Aho-Corasick automaton (pyahocorasick, a C extension): every risk word
and negation phrase is found in one pass over the text, whatever the number of words,
and the automaton is built once per word list.
"""

from __future__ import annotations

import functools
import unicodedata

import ahocorasick

from ordercore.domain.exceptions import RuleAction
from ordercore.domain.orders import Order
from ordercore.domain.rules.base import Rule, ScreeningContext
from ordercore.domain.rules.config import RulesConfig
from ordercore.domain.severity import Severity

__all__ = ["REMARK_RULES", "RiskMatcher", "check_remark_risk"]

FAMILY = "remark_risk"


class RiskMatcher:
    """Finds risk words in text, ignoring those inside a negation phrase (不会给差评)."""

    def __init__(self, words: tuple[str, ...], negations: tuple[str, ...]) -> None:
        self._automaton = ahocorasick.Automaton()
        for word in words:
            self._automaton.add_word(_normal(word), (len(_normal(word)), word, False))
        for phrase in negations:
            self._automaton.add_word(_normal(phrase), (len(_normal(phrase)), phrase, True))
        self._empty = not (words or negations)
        if not self._empty:
            self._automaton.make_automaton()

    def find(self, text: str) -> list[str]:
        """The risk words in ``text``, each once, in order of first appearance."""
        if self._empty or not text:
            return []
        risks: list[tuple[int, int, str]] = []
        negated: list[tuple[int, int]] = []
        for end, (length, word, is_negation) in self._automaton.iter(_normal(text)):
            span = (end - length + 1, end)
            if is_negation:
                negated.append(span)
            else:
                risks.append((*span, word))
        found: list[str] = []
        for start, end, word in risks:
            if word in found or any(a <= start and end <= b for a, b in negated):
                continue
            found.append(word)
        return found


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


@functools.lru_cache(maxsize=16)
def _matcher(words: tuple[str, ...], negations: tuple[str, ...]) -> RiskMatcher:
    return RiskMatcher(words, negations)


def check_remark_risk(order: Order, context: ScreeningContext, config: RulesConfig) -> list[str]:
    """The remark or a message mentions a complaint, refund, fake goods or a regulator."""
    matcher = _matcher(config.remark.risk_words, config.remark.negations)
    words: list[str] = []
    for text in (order.remark, *context.messages):
        words.extend(word for word in matcher.find(text) if word not in words)
    if not words:
        return []
    return [f"remark mentions {'、'.join(words)}"]


REMARK_RULES = (
    Rule(
        id="remark.risk",
        family=FAMILY,
        description="Remarks mention 假货, 投诉, 差评, 12315, 退款 and the like",
        severity=Severity.WARNING,
        check=check_remark_risk,
        extra_actions=frozenset({RuleAction.RAISE_PRIORITY, RuleAction.NOTIFY_SUPERVISOR}),
    ),
)
"""The built-in remark-risk rule."""
