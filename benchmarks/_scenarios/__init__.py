"""The flash-sale comparison's scenarios, one module per family, and the one way to run them.

:data:`SCENARIOS` lists every scenario in table order (PostgreSQL, SQLite, Redis,
memory); :func:`run_scenario` runs one and turns whatever happens into a row.
"""

from __future__ import annotations

import gc
from dataclasses import replace

from _scenarios import in_process, postgres, redis_lua, sqlite_raw
from _scenarios.common import NotRun, Params, Result, Scenario, judge, not_run
from _scenarios.library import SCENARIOS as LIBRARY

__all__ = ["BY_NAME", "SCENARIOS", "run_scenario"]

SCENARIOS: list[Scenario] = [
    *postgres.SCENARIOS,
    *LIBRARY["postgresql"],
    *sqlite_raw.SCENARIOS,
    *LIBRARY["sqlite"],
    *redis_lua.SCENARIOS,
    *in_process.SCENARIOS,
    *LIBRARY["memory"],
]

BY_NAME: dict[str, Scenario] = {scenario.name: scenario for scenario in SCENARIOS}


def run_scenario(scenario: Scenario, params: Params) -> Result:
    """Run one scenario; not runnable here, pending or raising makes a row that says so."""
    if scenario.all_granted:
        params = replace(params, stock=params.buyers)
    gc.collect()  # no garbage from the previous scenario collected on this one's clock
    try:
        measured = scenario.run(params)
    except NotRun as exc:
        return not_run(scenario, params, exc.status, exc.reason)
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:300]
        return not_run(scenario, params, "failed", message)
    return judge(scenario, params, measured)
