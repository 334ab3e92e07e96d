"""The labelled corpus: precision and recall of each built-in rule (docs/exceptions.md)."""

from __future__ import annotations

from collections import Counter

import pytest

from ordercore.domain.rules import BUILTIN_RULES, RuleOverride, RulesEngine
from support.screening_corpus import corpus_config, load_cases

MIN_PRECISION = 0.9
MIN_RECALL = 0.9


def _scores() -> tuple[dict[str, tuple[int, int, int]], int, list[str]]:
    config = corpus_config()
    engine = RulesEngine(config)
    cases = load_cases(config)
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    misses = []
    for case in cases:
        fired = {finding.rule_id for finding in engine.evaluate(case.order, case.context)}
        for rule_id in fired & case.labels:
            tp[rule_id] += 1
        for rule_id in fired - case.labels:
            fp[rule_id] += 1
            misses.append(f"{case.id}: {rule_id} fired, not labelled")
        for rule_id in case.labels - fired:
            fn[rule_id] += 1
            misses.append(f"{case.id}: {rule_id} labelled, did not fire")
    table = {rule.id: (tp[rule.id], fp[rule.id], fn[rule.id]) for rule in BUILTIN_RULES}
    return table, len(cases), misses


def test_corpus_has_at_least_300_cases_and_labels_for_every_rule() -> None:
    """The corpus holds >= 300 cases and every built-in rule is labelled positive somewhere."""
    cases = load_cases()
    assert len(cases) >= 300
    assert len({case.id for case in cases}) == len(cases)
    labelled = {label for case in cases for label in case.labels}
    assert labelled == {rule.id for rule in BUILTIN_RULES}


def test_every_rule_meets_precision_and_recall_on_the_corpus() -> None:
    """Each built-in rule has precision and recall >= 0.9 on the corpus; the table is printed."""
    table, total, misses = _scores()
    print(f"\n{total} cases")
    print("| rule | positives | TP | FP | FN | precision | recall |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    failing = []
    for rule_id, (tp, fp, fn) in table.items():
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        print(f"| {rule_id} | {tp + fn} | {tp} | {fp} | {fn} | {precision:.3f} | {recall:.3f} |")
        if precision < MIN_PRECISION or recall < MIN_RECALL:
            failing.append(rule_id)
    for miss in misses:
        print(f"  miss: {miss}")
    assert not failing, f"rules below {MIN_PRECISION}/{MIN_RECALL}: {failing}"


@pytest.mark.parametrize("rule_id", [rule.id for rule in BUILTIN_RULES])
def test_a_disabled_rule_finds_nothing_on_the_corpus(rule_id: str) -> None:
    """Turning a rule off in the configuration silences it on every case."""
    config = corpus_config()
    disabled = config.model_copy(update={"rules": {rule_id: RuleOverride(enabled=False)}})
    engine = RulesEngine(disabled)
    for case in load_cases(config):
        assert rule_id not in {f.rule_id for f in engine.evaluate(case.order, case.context)}
