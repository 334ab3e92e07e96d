"""What every scenario shares: its parameters, its tally, its result and the exactness rule.

Every scenario is the same flash sale: ``buyers`` buyers each want one unit of one SKU
that has ``stock`` units. A scenario runs the sale once, measures the wall time of the
reserve phase only (setup and checks are outside the clock), then reads its store back
and is judged by :func:`judge`: exactly ``min(buyers, stock)`` successes, nothing oversold,
counters that match the records.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "SKU",
    "WAREHOUSE",
    "Measured",
    "NotRun",
    "Params",
    "Pending",
    "Result",
    "Scenario",
    "Skipped",
    "Tally",
    "clock",
    "judge",
    "not_run",
    "percentile_ms",
]

SKU = "FLASH-1"
WAREHOUSE = "main"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_SAMPLES = 3


class NotRun(Exception):
    """The scenario cannot run here; ``status`` says why in one word."""

    status = "skipped"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Skipped(NotRun):
    """A server the scenario needs is unreachable."""

    status = "skipped"


class Pending(NotRun):
    """The library feature the scenario measures does not exist yet."""

    status = "pending"


@dataclass(frozen=True, slots=True)
class Params:
    """One run's parameters, the same for every scenario."""

    buyers: int = 10_000
    stock: int = 1_000
    postgres_url: str = DEFAULT_POSTGRES_URL
    """A server to create throwaway databases on (any database of it; never written to)."""
    redis_url: str = DEFAULT_REDIS_URL
    clients: int = 32
    """Client threads/connections of the raw per-request PostgreSQL scenarios."""


@dataclass(slots=True)
class Tally:
    """What the reserve phase saw, counted by the client."""

    successes: int = 0
    rejected: int = 0
    errors: int = 0
    wall: float = 0.0
    latencies: list[float] | None = None
    """Seconds per request, where one request is one call (None: not meaningful)."""
    samples: list[str] = field(default_factory=list)

    def error(self, exc: BaseException) -> None:
        """Count a failed request and keep its message if it is a new one."""
        self.errors += 1
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        if len(self.samples) < _SAMPLES and message not in self.samples:
            self.samples.append(message)

    def merge(self, other: Tally) -> None:
        """Add another client's counts (its wall time is ignored)."""
        self.successes += other.successes
        self.rejected += other.rejected
        self.errors += other.errors
        if self.latencies is not None and other.latencies is not None:
            self.latencies.extend(other.latencies)
        for sample in other.samples:
            if len(self.samples) < _SAMPLES and sample not in self.samples:
                self.samples.append(sample)


@dataclass(slots=True)
class Measured:
    """A finished sale: the client's tally and what the store holds afterwards."""

    tally: Tally
    reserved: int
    """The store's own counter of held units."""
    on_hand: int
    records: int | None = None
    """Reservation records in the store (None: ``drift``, the library's verify(), covers it)."""
    drift: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Result:
    """One row of the table."""

    name: str
    label: str
    status: str
    """ok, inexact (ran but broke the exactness rule), failed (raised), pending, skipped."""
    buyers: int
    stock: int
    successes: int = 0
    rejected: int = 0
    errors: int = 0
    oversold: int = 0
    reserved: int = 0
    """The store's own counter of held units after the sale."""
    records: int | None = None
    """Reservation records found in the store (None where the store says it via verify)."""
    drift: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    reservations_per_s: float = 0.0
    requests_per_s: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    reason: str = ""
    """Why it did not run, or what broke."""
    rates: list[float] = field(default_factory=list)
    """reservations/s of every repeat, in run order (this row is their median run)."""

    @property
    def ran(self) -> bool:
        """True when the sale ran to the end (exact or not)."""
        return self.status in ("ok", "inexact")

    @property
    def exact(self) -> bool:
        """True when the sale ran and met the exactness rule."""
        return self.status == "ok"

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready values."""
        return {
            "name": self.name,
            "label": self.label,
            "status": self.status,
            "exact": self.exact,
            "buyers": self.buyers,
            "stock": self.stock,
            "successes": self.successes,
            "rejected": self.rejected,
            "errors": self.errors,
            "oversold": self.oversold,
            "reserved": self.reserved,
            "records": self.records,
            "drift": self.drift,
            "wall_s": self.wall_s,
            "reservations_per_s": self.reservations_per_s,
            "requests_per_s": self.requests_per_s,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "reason": self.reason,
            "rates": self.rates,
        }


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named way to run the flash sale."""

    name: str
    label: str
    family: str
    """postgresql, sqlite, redis or memory: which ceiling and baseline it compares with."""
    run: Callable[[Params], Measured]
    library: bool = False
    """Runs ordercore through its public API (and can be profiled)."""
    all_granted: bool = False
    """Runs with stock = buyers (every request granted) instead of the run's stock."""


def percentile_ms(latencies: list[float] | None, percent: float) -> float | None:
    """Nearest-rank percentile in milliseconds (None when there are no latencies)."""
    if not latencies:
        return None
    ordered = sorted(latencies)
    rank = max(1, math.ceil(len(ordered) * percent / 100))
    return round(ordered[min(rank, len(ordered)) - 1] * 1000, 3)


def judge(scenario: Scenario, params: Params, measured: Measured) -> Result:
    """The row for a finished sale: exact when the client and the store agree on min(N, M)."""
    tally, reserved, records, drift = (
        measured.tally,
        measured.reserved,
        measured.records,
        measured.drift,
    )
    expected = min(params.buyers, params.stock)
    held = [tally.successes, reserved] + ([records] if records is not None else [])
    oversold = max(0, *(count - params.stock for count in held), reserved - measured.on_hand)
    problems = []
    if tally.successes != expected:
        problems.append(f"{tally.successes} successes, expected {expected}")
    if reserved != tally.successes:
        problems.append(f"store holds {reserved} units for {tally.successes} successes")
    if records is not None and records != tally.successes:
        problems.append(f"{records} reservation records for {tally.successes} successes")
    if oversold:
        problems.append(f"{oversold} oversold")
    if drift:
        problems.append(f"verify() found {len(drift)} drifts: {drift[0]}")
    if tally.errors:
        problems.append(f"{tally.errors} errors: {'; '.join(tally.samples)}")
    wall = tally.wall
    return Result(
        name=scenario.name,
        label=scenario.label,
        status="inexact" if problems else "ok",
        buyers=params.buyers,
        stock=params.stock,
        successes=tally.successes,
        rejected=tally.rejected,
        errors=tally.errors,
        oversold=oversold,
        reserved=reserved,
        records=records,
        drift=list(drift),
        wall_s=round(wall, 4),
        reservations_per_s=round(tally.successes / wall, 1) if wall > 0 else 0.0,
        requests_per_s=round(params.buyers / wall, 1) if wall > 0 else 0.0,
        p50_ms=percentile_ms(tally.latencies, 50),
        p99_ms=percentile_ms(tally.latencies, 99),
        reason="; ".join(problems),
    )


def not_run(scenario: Scenario, params: Params, status: str, reason: str) -> Result:
    """The row for a scenario that did not run (or raised)."""
    return Result(
        name=scenario.name,
        label=scenario.label,
        status=status,
        buyers=params.buyers,
        stock=params.stock,
        reason=reason,
    )


clock: Callable[[], float] = time.perf_counter
"""The clock every scenario times with."""
