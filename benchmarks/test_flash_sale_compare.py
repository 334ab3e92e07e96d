"""The flash-sale comparison at small size: every scenario is exact. No timing is asserted.

``pytest benchmarks/test_flash_sale_compare.py`` runs each scenario of
``flash_sale_compare.py`` once with 2,000 buyers and 200 units. A scenario whose server
is unreachable skips with the reason (fails under ``ORDERCORE_REQUIRE_POSTGRES=1`` for
PostgreSQL), one whose library feature does not exist yet skips as pending.
"""

from __future__ import annotations

import json
import os

import pytest

import flash_sale_compare
from _scenarios import BY_NAME, SCENARIOS, run_scenario
from _scenarios.common import Params, Result, Scenario

SMALL = Params(buyers=2_000, stock=200, postgres_url=flash_sale_compare.DEFAULT_POSTGRES_URL)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.name)
def test_every_scenario_is_exact(scenario: Scenario) -> None:
    """Each scenario grants exactly min(buyers, stock) units, oversells none, drifts none."""
    result = run_scenario(scenario, SMALL)
    if result.status in ("skipped", "pending"):
        required = os.environ.get("ORDERCORE_REQUIRE_POSTGRES") == "1"
        if required and scenario.family == "postgresql" and result.status == "skipped":
            pytest.fail(f"ORDERCORE_REQUIRE_POSTGRES=1 but {result.reason}")
        pytest.skip(f"{result.status}: {result.reason}")
    assert result.status == "ok", result.reason
    assert result.successes == min(SMALL.buyers, result.stock)
    assert result.successes + result.rejected == SMALL.buyers
    assert result.reserved == result.successes
    assert result.oversold == 0
    assert result.drift == []


def test_every_target_compares_rows_of_one_stock_setting() -> None:
    """Each ratio divides like by like: granted rows by granted rows, sale rows by sale rows."""
    for target in flash_sale_compare.TARGETS:
        top = BY_NAME[target.numerator]
        assert target.label.startswith("=") == top.all_granted, target.label
        for name in target.denominators:
            assert BY_NAME[name].all_granted == top.all_granted, target.label


def test_a_target_whose_row_did_not_run_is_not_applicable() -> None:
    """A ratio is N/A (never PASS or MISS) when one of its rows is pending or missing."""
    naive = Result("pg-naive", "", "ok", 10, 1, successes=1, reservations_per_s=100.0)
    pending = Result("lib-pg-coalesced", "", "pending", 10, 1, reason="not built yet")
    target = flash_sale_compare.Target("x", "lib-pg-coalesced", ("pg-naive",), 30)

    (ratio,) = flash_sale_compare.compute_ratios([naive, pending], [target])

    assert ratio.verdict == "N/A"
    assert ratio.value is None
    assert "pending" in ratio.against


def test_json_output_is_one_object_with_every_chosen_row(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--json prints one JSON object holding each chosen scenario's row and the ratios."""
    status = flash_sale_compare.main(
        ["--json", "--only", "dict-dataclass,lib-memory", "--buyers", "500", "--stock", "50"]
    )

    report = json.loads(capsys.readouterr().out)
    assert status == 0
    assert [row["name"] for row in report["scenarios"]] == ["dict-dataclass", "lib-memory"]
    assert all(row["exact"] for row in report["scenarios"])
    assert {ratio["label"] for ratio in report["ratios"]} >= {
        "PostgreSQL coalesced / PostgreSQL naive"
    }


def test_profile_prints_the_top_functions(capsys: pytest.CaptureFixture[str]) -> None:
    """--profile runs a library scenario under cProfile and prints its top functions."""
    status = flash_sale_compare.main(
        ["--profile", "lib-memory", "--buyers", "500", "--stock", "50"]
    )

    out = capsys.readouterr().out
    assert status == 0
    assert "top 25 by cumulative time" in out
    assert "reserve" in out
