"""The flash-sale comparison of issue 3: ordercore against the usual answers, in one run.

N buyers (``--buyers``, default 10,000) each want one unit of one SKU that has M units
(``--stock``, default 1,000). Every scenario runs that sale ``--repeat`` times (default
3; the row is the median run), one scenario after the other in this process, each sale
on a fresh store and checked for exactness afterwards (successes == min(N, M), nothing
oversold, the store's counters match its records; for ordercore ``verify() == []``).
Rows marked "stock = buyers" run the same sale with M = N, every request granted::

    .venv/bin/python benchmarks/flash_sale_compare.py                    # the table
    .venv/bin/python benchmarks/flash_sale_compare.py --json             # one JSON object
    .venv/bin/python benchmarks/flash_sale_compare.py --only pg-naive,lib-pg
    .venv/bin/python benchmarks/flash_sale_compare.py --list             # scenario names
    .venv/bin/python benchmarks/flash_sale_compare.py --profile lib-pg   # where time goes
    .venv/bin/python benchmarks/flash_sale_compare.py --footprint        # bytes/reservation

``reservations/s`` is successes / wall time of the reserve phase, ``requests/s`` is N /
the same wall time (setup and checks are outside the clock). The machine is small and
noisy: compare rows of one run (the ratios at the bottom), not runs. PostgreSQL
scenarios create a throwaway database on ``--postgres-url``'s server and drop it; Redis
keys live under a unique prefix and are deleted. A row whose server is unreachable is
"skipped", one whose library feature does not exist yet "pending", each with the reason.

Targets print PASS or MISS and never change the exit status (the numbers are for the
docs, not a gate); the exit status is 1 only when a scenario that ran was not exact or
raised.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import anyio

from _scenarios import BY_NAME, SCENARIOS, run_repeated
from _scenarios.common import DEFAULT_REDIS_URL, NotRun, Params, Result, judge
from _scenarios.postgres import server_version as postgres_version

__all__ = ["TARGETS", "Ratio", "Target", "compute_ratios", "main", "run_all"]

DEFAULT_POSTGRES_URL = (
    os.environ.get("ORDERCORE_BENCH_POSTGRES_URL")
    or os.environ.get("ORDERCORE_TEST_POSTGRES_URL")
    or "postgresql+psycopg://127.0.0.1:5432/test"
)
DEFAULT_BASELINE = "pg-naive"


@dataclass(frozen=True, slots=True)
class Target:
    """A ratio of one row to another (the best of several), or one row's absolute rate."""

    label: str
    numerator: str
    denominators: tuple[str, ...] = ()
    """Empty: the numerator's reservations/s itself is compared with ``minimum``."""
    minimum: float | None = None
    """None: shown for information, no PASS/MISS."""
    percent: bool = False


TARGETS = [
    # The sale as run (N buyers, M units: most requests are refusals).
    Target("PostgreSQL coalesced / PostgreSQL naive", "lib-pg-coalesced", ("pg-naive",), 30),
    Target(
        "PostgreSQL coalesced / Redis Lua pipelined",
        "lib-pg-coalesced",
        ("redis-lua-pipelined",),
        2,
    ),
    Target(
        "PostgreSQL coalesced / raw grouped ceiling",
        "lib-pg-coalesced",
        ("pg-grouped-32", "pg-grouped-500"),
        0.5,
        percent=True,
    ),
    Target(
        "SQLite coalesced / raw grouped ceiling",
        "lib-sqlite-coalesced",
        ("sqlite-grouped-100", "sqlite-grouped-500"),
        0.5,
        percent=True,
    ),
    Target(
        "memory coalesced / dict ceiling",
        "lib-memory-coalesced",
        ("dict-dataclass",),
        0.5,
        percent=True,
    ),
    Target("PostgreSQL bulk / PostgreSQL naive", "lib-pg-bulk", ("pg-naive",), 30),
    Target("PostgreSQL bulk / Redis Lua pipelined", "lib-pg-bulk", ("redis-lua-pipelined",), 2),
    Target(
        "PostgreSQL bulk / raw grouped ceiling",
        "lib-pg-bulk",
        ("pg-grouped-32", "pg-grouped-500"),
        0.5,
        percent=True,
    ),
    Target(
        "SQLite bulk / raw grouped ceiling",
        "lib-sqlite-bulk",
        ("sqlite-grouped-100", "sqlite-grouped-500"),
        0.5,
        percent=True,
    ),
    Target("memory bulk, flash sale, reservations/s", "lib-memory-bulk", ()),
    Target("memory bulk / dict ceiling", "lib-memory-bulk", ("dict-dataclass",), percent=True),
    Target("memory per request / dict ceiling", "lib-memory", ("dict-dataclass",), percent=True),
    Target("PostgreSQL per request / PostgreSQL naive", "lib-pg", ("pg-naive",)),
    Target("SQLite per request / raw sqlite3 per request", "lib-sqlite", ("sqlite-raw-1",)),
    # Stock = buyers: every request granted, so the ratios compare reservation work.
    Target(
        "= PG coalesced / PG naive",
        "lib-pg-coalesced-granted",
        ("pg-naive-granted",),
        30,
    ),
    Target(
        "= PG coalesced / Redis Lua pipelined",
        "lib-pg-coalesced-granted",
        ("redis-lua-pipelined-granted",),
        2,
    ),
    Target(
        "= PG coalesced / raw grouped ceiling",
        "lib-pg-coalesced-granted",
        ("pg-grouped-500-granted",),
        0.5,
        percent=True,
    ),
    Target(
        "= SQLite coalesced / raw grouped ceiling",
        "lib-sqlite-coalesced-granted",
        ("sqlite-grouped-500-granted",),
        0.5,
        percent=True,
    ),
    Target(
        "= memory coalesced / dict ceiling",
        "lib-memory-coalesced-granted",
        ("dict-dataclass-granted",),
        0.5,
        percent=True,
    ),
    Target("= PG bulk / PG naive", "lib-pg-bulk-granted", ("pg-naive-granted",), 30),
    Target(
        "= PG bulk / Redis Lua pipelined",
        "lib-pg-bulk-granted",
        ("redis-lua-pipelined-granted",),
        2,
    ),
    Target(
        "= PG bulk / raw grouped ceiling",
        "lib-pg-bulk-granted",
        ("pg-grouped-500-granted",),
        0.5,
        percent=True,
    ),
    Target(
        "= SQLite bulk / raw grouped ceiling",
        "lib-sqlite-bulk-granted",
        ("sqlite-grouped-500-granted",),
        0.5,
        percent=True,
    ),
    Target("= PG bulk, reservations/s", "lib-pg-bulk-granted", ()),
    Target("= memory bulk, reservations/s", "lib-memory-bulk-granted", (), 300_000),
    Target(
        "= memory bulk / dict ceiling",
        "lib-memory-bulk-granted",
        ("dict-dataclass-granted",),
        percent=True,
    ),
]
"""Labels starting with "=" use the stock = buyers rows (every request granted)."""


@dataclass(frozen=True, slots=True)
class Ratio:
    """One line of the ratios: its value (None when a row is missing) and the verdict."""

    target: Target
    value: float | None
    against: str
    """The denominator row actually used (the best of the candidates), or why n/a."""
    verdict: str
    """PASS, MISS, INFO or N/A."""

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready values."""
        return {
            "label": self.target.label,
            "numerator": self.target.numerator,
            "against": self.against,
            "value": self.value,
            "minimum": self.target.minimum,
            "verdict": self.verdict,
        }


def compute_ratios(results: Sequence[Result], targets: Sequence[Target] = TARGETS) -> list[Ratio]:
    """Every target over the exact rows of one run (reservations/s, same N and M each)."""
    exact = {result.name: result for result in results if result.exact}
    ratios = []
    for target in targets:
        top = exact.get(target.numerator)
        if top is None:
            ratios.append(Ratio(target, None, _why_missing(results, target.numerator), "N/A"))
            continue
        if not target.denominators:
            value, against = top.reservations_per_s, ""
        else:
            bottoms = [exact[name] for name in target.denominators if name in exact]
            if not bottoms:
                why = _why_missing(results, target.denominators[0])
                ratios.append(Ratio(target, None, why, "N/A"))
                continue
            bottom = max(bottoms, key=lambda result: result.reservations_per_s)
            value = top.reservations_per_s / bottom.reservations_per_s
            against = bottom.name
        if target.minimum is None:
            verdict = "INFO"
        else:
            verdict = "PASS" if value >= target.minimum else "MISS"
        ratios.append(Ratio(target, value, against, verdict))
    return ratios


def _why_missing(results: Sequence[Result], name: str) -> str:
    for result in results:
        if result.name == name:
            return f"{name} {result.status}" + (f": {result.reason}" if result.reason else "")
    return f"{name} not run"


def run_all(
    params: Params, names: Sequence[str], *, repeat: int = 1, progress: bool = True
) -> list[Result]:
    """Run the named scenarios one after the other, in table order (median of ``repeat``)."""
    chosen = [scenario for scenario in SCENARIOS if scenario.name in names]
    results = []
    for number, scenario in enumerate(chosen, 1):
        if progress:
            print(f"[{number}/{len(chosen)}] {scenario.name} ...", end="", file=sys.stderr)
            sys.stderr.flush()
        started = time.perf_counter()
        result = run_repeated(scenario, params, repeat)
        results.append(result)
        if progress:
            took = time.perf_counter() - started
            rates = ", ".join(f"{rate:,.0f}" for rate in result.rates)
            detail = f"reservations/s: {rates}" if result.ran else result.reason
            print(f" {result.status} in {took:.1f} s {detail}", file=sys.stderr)
    return results


# -- output ---------------------------------------------------------------------------------


def machine(params: Params) -> dict[str, object]:
    """What the numbers were measured on."""
    from _scenarios.redis_lua import server_version as redis_version

    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version(params.postgres_url),
        "redis": redis_version(params.redis_url),
        "buyers": params.buyers,
        "stock": params.stock,
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def _loads(loads: Sequence[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in loads)


def _rate(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def render_table(results: Sequence[Result], baseline: str) -> str:
    """The results as one Markdown table."""
    base = next((r for r in results if r.name == baseline and r.exact), None)
    header = (
        "| scenario | what | reservations/s | requests/s | p50 ms | p99 ms "
        f"| x {baseline} | exact |"
    )
    lines = [header, "|" + "---|" * 8]
    for result in results:
        if not result.ran:
            lines.append(
                f"| {result.name} | {result.label} | | | | | | {result.status}: {result.reason} |"
            )
            continue
        times = (
            f"{result.reservations_per_s / base.reservations_per_s:,.2f}"
            if base is not None and base.reservations_per_s
            else ""
        )
        verdict = "yes" if result.exact else f"NO: {result.reason}"
        lines.append(
            f"| {result.name} | {result.label} | {_rate(result.reservations_per_s)} "
            f"| {_rate(result.requests_per_s)} | {_ms(result.p50_ms)} | {_ms(result.p99_ms)} "
            f"| {times} | {verdict} |"
        )
    return "\n".join(lines)


def render_ratios(ratios: Sequence[Ratio]) -> str:
    """The ratios, one per line, with the target and the verdict."""
    lines = [
        "Ratios (reservations/s of one run; like with like: rows of the sale as run, or,",
        'for labels starting with "=", rows with stock = buyers where every request is granted):',
    ]
    for ratio in ratios:
        target = ratio.target
        if ratio.value is None:
            shown = "n/a"
        elif target.percent:
            shown = f"{ratio.value:.0%}"
        elif not target.denominators:
            shown = f"{ratio.value:,.0f}/s"
        else:
            shown = f"{ratio.value:,.1f}x" if ratio.value >= 1 else f"{ratio.value:.2g}x"
        if target.minimum is None:
            goal = ""
        elif target.percent:
            goal = f"target >= {target.minimum:.0%}"
        elif not target.denominators:
            goal = f"target >= {target.minimum:,.0f}/s"
        else:
            goal = f"target >= {target.minimum:g}x"
        against = f"(vs {ratio.against})" if ratio.value is not None and ratio.against else ""
        if ratio.value is None:
            against = f"({ratio.against})"
        lines.append(
            f"  {ratio.verdict:<4}  {target.label:<46} {shown:>10}  {goal:<18} {against}".rstrip()
        )
    return "\n".join(lines)


# -- the profile and the footprint ------------------------------------------------------------


def profile(name: str, params: Params, top: int = 25) -> int:
    """Run one library scenario under cProfile (every thread) and print the top functions."""
    from _scenarios.library import SALES, run_library
    from _scenarios.profiling import ThreadProfile

    scenario = BY_NAME[name]
    if scenario.all_granted:
        params = replace(params, stock=params.buyers)
    profiler = ThreadProfile()
    try:
        with profiler.installed():
            measured = run_library(SALES[name], params, around=profiler.window)
    except NotRun as exc:
        print(f"{name}: {exc.status}: {exc.reason}")
        return 0
    result = judge(scenario, params, measured)
    print(
        f"{name} under cProfile ({params.buyers} buyers, {params.stock} stock): "
        f"{_rate(result.reservations_per_s)} reservations/s, "
        f"{_rate(result.requests_per_s)} requests/s, exact: {result.exact} {result.reason}"
    )
    print(profiler.report(top))
    return 0 if result.exact else 1


def footprint(count: int, as_json: bool) -> int:
    """Make ``count`` active reservations on the memory storage; print bytes per reservation."""
    from _scenarios.footprint import measure_footprint

    measured = anyio.run(measure_footprint, count)
    if as_json:
        print(
            json.dumps(
                {
                    "count": measured.count,
                    "held_bytes": measured.held_bytes,
                    "bytes_per_reservation": round(measured.bytes_per_reservation, 1),
                    "seconds": round(measured.seconds, 2),
                }
            )
        )
    else:
        print(
            f"memory storage: {measured.count:,} active reservations hold "
            f"{measured.held_bytes / 2**20:,.1f} MiB = "
            f"{measured.bytes_per_reservation:,.0f} bytes each (tracemalloc; target < 1,024); "
            f"made in {measured.seconds:.1f} s under tracing"
        )
    return 0


# -- the command ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="The flash-sale comparison: ordercore against the usual answers, one run.",
    )
    parser.add_argument("--buyers", type=int, default=10_000, help="buyers, one unit each")
    parser.add_argument("--stock", type=int, default=1_000, help="units on sale")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="sales per scenario, the median is shown (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--only", default="", help="comma-separated scenario names (--list)")
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="server to make throwaway databases on (default: %(default)s)",
    )
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="default: %(default)s")
    parser.add_argument(
        "--baseline", default=DEFAULT_BASELINE, help="row the table's ratio column divides by"
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--profile", metavar="NAME", help="run one lib-* scenario under cProfile, print the top 25"
    )
    parser.add_argument(
        "--footprint",
        type=int,
        nargs="?",
        const=1_000_000,
        metavar="K",
        help="bytes per active reservation of the memory storage (K, default 1,000,000)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison (or --list, --profile, --footprint); the exit status."""
    args = _parser().parse_args(argv)
    if args.buyers <= 0 or args.stock < 0 or args.repeat <= 0:
        _parser().error("--buyers and --repeat must be > 0, --stock >= 0")
    params = Params(
        buyers=args.buyers,
        stock=args.stock,
        postgres_url=args.postgres_url,
        redis_url=args.redis_url,
    )
    if args.list:
        for scenario in SCENARIOS:
            print(f"{scenario.name:<30} {scenario.label}")
        return 0
    if args.footprint is not None:
        return footprint(args.footprint, args.json)
    if args.profile:
        if args.profile not in BY_NAME or not BY_NAME[args.profile].library:
            known = ", ".join(s.name for s in SCENARIOS if s.library)
            _parser().error(f"--profile takes one of: {known}")
        return profile(args.profile, params)

    names = [name.strip() for name in args.only.split(",") if name.strip()] or list(BY_NAME)
    unknown = [name for name in names if name not in BY_NAME]
    if unknown:
        _parser().error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    about = machine(params)
    started_load = os.getloadavg()
    results = run_all(params, names, repeat=args.repeat)
    ratios = compute_ratios(results)
    if args.json:
        print(
            json.dumps(
                {
                    "machine": about,
                    "baseline": args.baseline,
                    "repeat": args.repeat,
                    "scenarios": [result.to_dict() for result in results],
                    "ratios": [ratio.to_dict() for ratio in ratios],
                    "all_exact": all(r.exact for r in results if r.ran or r.status == "failed"),
                },
                indent=2,
            )
        )
    else:
        print(
            f"Flash sale: {params.buyers:,} buyers x 1 unit, {params.stock:,} units of one SKU; "
            f"{about['platform']}, {about['cpus']} CPUs, Python {about['python']}, "
            f"SQLite {about['sqlite']}, PostgreSQL {about['postgresql'] or 'unreachable'}, "
            f"Redis {about['redis'] or 'unreachable'}; {about['when']}; "
            f"median of {args.repeat} sales per row; load average at the start "
            f"{_loads(started_load)}, at the end {_loads(os.getloadavg())}\n"
        )
        print(render_table(results, args.baseline))
        print()
        print(render_ratios(ratios))
    broken = [r for r in results if r.status in ("inexact", "failed")]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
