"""The flash-sale comparison's scenarios, one module per family, and the one way to run them.

:data:`SCENARIOS` lists every scenario in table order (PostgreSQL, SQLite, Redis,
memory); :func:`run_scenario` runs one and turns whatever happens into a row.

A scenario starts with the heap collected and frozen (``gc.freeze``), so the garbage
collector never walks objects that earlier scenarios or imports left behind.
"""

from __future__ import annotations

import gc
from dataclasses import replace

from _scenarios import in_process, postgres, redis_lua, sqlite_raw
from _scenarios.common import NotRun, Params, Result, Scenario, judge, not_run
from _scenarios.library import SCENARIOS as LIBRARY

__all__ = ["BY_NAME", "GRANTED_TWINS", "SCENARIOS", "run_repeated", "run_scenario"]

GRANTED_TWINS = ("pg-naive", "pg-grouped-500", "sqlite-grouped-500", "redis-lua-pipelined")
"""Baselines and ceilings that also run with stock = buyers (``<name>-granted``), so the
library's granted rows compare with like: reservation throughput, not rejection speed."""


def _with_granted_twins(scenarios: list[Scenario]) -> list[Scenario]:
    rows = []
    for scenario in scenarios:
        rows.append(scenario)
        if scenario.name in GRANTED_TWINS:
            rows.append(
                replace(
                    scenario,
                    name=f"{scenario.name}-granted",
                    label=f"{scenario.label}, stock = buyers",
                    all_granted=True,
                )
            )
    return rows


SCENARIOS: list[Scenario] = [
    *_with_granted_twins(postgres.SCENARIOS),
    *LIBRARY["postgresql"],
    *_with_granted_twins(sqlite_raw.SCENARIOS),
    *LIBRARY["sqlite"],
    *_with_granted_twins(redis_lua.SCENARIOS),
    *in_process.SCENARIOS,
    *LIBRARY["memory"],
]

BY_NAME: dict[str, Scenario] = {scenario.name: scenario for scenario in SCENARIOS}


def run_scenario(scenario: Scenario, params: Params) -> Result:
    """Run one scenario; not runnable here, pending or raising makes a row that says so."""
    if scenario.all_granted:
        params = replace(params, stock=params.buyers)
    # Collect the previous scenarios' garbage, then freeze what survives (imported
    # modules, caches): the collector then traverses only this scenario's own objects,
    # so a scenario's time does not depend on what ran before it in this process.
    gc.collect()
    gc.freeze()
    try:
        measured = scenario.run(params)
    except NotRun as exc:
        return not_run(scenario, params, exc.status, exc.reason)
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:300]
        return not_run(scenario, params, "failed", message)
    finally:
        gc.unfreeze()
    return judge(scenario, params, measured)


def run_repeated(scenario: Scenario, params: Params, repeat: int) -> Result:
    """Run a scenario ``repeat`` times; the median run by reservations/s.

    The first run that is not exact (or does not run) is returned at once: one broken
    sale is the finding, whatever the others did.
    """
    runs: list[Result] = []
    for _ in range(repeat):
        result = run_scenario(scenario, params)
        if not result.exact:
            return result
        runs.append(result)
    median = sorted(runs, key=lambda result: result.reservations_per_s)[(len(runs) - 1) // 2]
    median.rates = [result.reservations_per_s for result in runs]
    return median
