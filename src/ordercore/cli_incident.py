"""``ordercore replay-incident``: the New Year sale with a hanging courier, replayed.

::

    ordercore replay-incident --db sqlite:///replay.db
    ordercore replay-incident --db postgresql+psycopg://127.0.0.1/test --json
    ordercore replay-incident --orders 2000 --hang-from 0.5 --hang-for 3

Starts simulated courier APIs on 127.0.0.1 (per run a primary and a backup), runs
the day's orders through the fulfilment pipeline twice side by side, one run whose
primary courier hangs for a stretch and one without the fault
(:func:`ordercore.incident.run_incident`), and prints the report. Exit code 0 when
every check passed, 1 when one failed, 2 for bad input. Without ``--db`` a fresh
SQLite file in a temporary folder is used.
"""

from __future__ import annotations

import importlib
import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import click
from rich.console import Console
from rich.table import Table

from ordercore.core import OrderCore
from ordercore.errors import InvalidInput, OrderCoreError, UnknownAdapter
from ordercore.incident import (
    INCIDENT_ORDERS,
    IncidentConfig,
    IncidentReport,
    RigFactory,
    RunReport,
    run_incident,
)
from ordercore.loadtest import redact, url_scheme

__all__ = ["replay_incident"]

T = TypeVar("T")

SIMULATOR = "ordercore_adapters.couriers.simulator"
"""Where the courier simulator lives (imported lazily: the core never imports adapters)."""
_DEFAULTS = IncidentConfig()


class _Failed(click.ClickException):
    exit_code = 1


class _BadInput(click.ClickException):
    exit_code = 2


def _guarded(url: str, action: Callable[[], T]) -> T:
    try:
        return action()
    except OrderCoreError as exc:
        failure = _BadInput if isinstance(exc, UnknownAdapter | InvalidInput) else _Failed
        raise failure(redact(str(exc), url)) from exc


@contextmanager
def _database(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="ordercore-", ignore_cleanup_errors=True) as folder:
        yield f"sqlite:///{(Path(folder) / 'incident.db').as_posix()}"


def _rigs() -> RigFactory:
    try:
        module = importlib.import_module(SIMULATOR)
    except ImportError as exc:
        raise UnknownAdapter(
            "couriers", f"simulator (needs {exc.name}; pip install ordercore)", [SIMULATOR]
        ) from exc
    factory: RigFactory = module.incident_rig
    return factory


@click.command(name="replay-incident")
@click.option(
    "--db",
    "url",
    metavar="URL",
    help="Storage URL: sqlite:///path.db or postgresql+psycopg://host/db (an empty "
    "database is best).  [default: a fresh SQLite file]",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--orders",
    type=click.IntRange(min=10),
    default=INCIDENT_ORDERS,
    show_default=True,
    help="Orders of the day (per run).",
)
@click.option(
    "--hang-from",
    type=click.FloatRange(min=0, max=1),
    default=_DEFAULTS.hang_from,
    show_default=True,
    help="Share of the orders through the critical path when the primary courier "
    "starts hanging (0.3: after 30 %).",
)
@click.option(
    "--hang-for",
    type=click.FloatRange(min=0.1),
    default=_DEFAULTS.hang_for,
    show_default=True,
    help="Seconds the primary courier hangs.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=_DEFAULTS.workers,
    show_default=True,
    help="Waybill tasks run at once.",
)
@click.option(
    "--window",
    type=click.IntRange(min=1),
    default=_DEFAULTS.window,
    show_default=True,
    help="Orders per channel per accept call (one intake window).",
)
def replay_incident(
    url: str | None,
    as_json: bool,
    orders: int,
    hang_from: float,
    hang_for: float,
    workers: int,
    window: int,
) -> None:
    """Replay the sale day whose courier hung: throughput, failover, one waybill per order."""
    config = IncidentConfig(
        orders=orders, hang_from=hang_from, hang_for=hang_for, workers=workers, window=window
    )
    console = Console(stderr=True, quiet=as_json)
    with _database(url) as chosen:
        rigs = _guarded(chosen, _rigs)

        async def replay() -> IncidentReport:
            async with OrderCore.open(chosen) as core:
                return await run_incident(core, rigs, config, progress=console.print)

        console.print(
            f"replaying {orders:,} orders x 2 (side by side) on {url_scheme(chosen)}: "
            f"the primary courier hangs after {hang_from:.0%} of the orders, for {hang_for:g} s"
        )
        report = _guarded(chosen, lambda: anyio.run(replay))
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        _show(report)
    if not report.ok:
        raise _Failed("the replay failed a check (see the report)")


def _show(report: IncidentReport) -> None:
    console = Console()
    table = Table(title="incident replay")
    table.add_column("")
    runs = (report.healthy, report.faulted)
    for run in runs:
        table.add_column(run.label, justify="right")
    rows: list[tuple[str, Callable[[RunReport], Any]]] = [
        ("orders", lambda run: f"{run.orders:,}"),
        ("orders/s (created + reserved)", lambda run: f"{run.orders_per_s:,.0f}"),
        ("critical path, s", lambda run: f"{run.ingest_seconds:.2f}"),
        ("all waybills done, s", lambda run: f"{run.drain_seconds:.2f}"),
        ("waybills by courier", lambda run: _couriers(run.waybills_by_courier)),
        ("orders with exactly one waybill", lambda run: f"{run.orders_with_one_waybill:,}"),
        ("orders without a waybill", lambda run: str(run.orders_without_waybill)),
        ("orders with more than one", lambda run: str(run.orders_with_several)),
        ("duplicate live waybills", lambda run: str(run.duplicate_live_waybills)),
        ("dead / open tasks", lambda run: f"{run.dead_tasks} / {run.open_tasks}"),
        ("held / failed orders", lambda run: f"{run.held} / {run.failed}"),
        ("deferred waybill attempts", lambda run: str(run.deferred)),
    ]
    for name, value in rows:
        table.add_row(name, *(value(run) for run in runs))
    console.print(table)
    faulted = report.faulted
    if faulted.hang_started is not None:
        console.print(
            f"primary hung from {faulted.hang_started:.2f} s to {faulted.hang_ended or 0:.2f} s"
        )
    for change in faulted.breaker_history:
        console.print(
            f"  {change['at']}  {change['service']}: {change['old']} -> {change['new']}"
            f"  ({change['reason']})"
        )
    verdict = "ok" if report.ok else "FAILED"
    console.print(
        f"throughput ratio {report.ratio:.3f} (need >= {report.config.min_ratio:.2f}); "
        f"breaker opened and closed: {report.breaker_opened_and_closed}; "
        f"failed over: {report.failed_over}; {verdict}"
    )


def _couriers(counts: dict[str, int]) -> str:
    return ", ".join(f"{code} {count:,}" for code, count in sorted(counts.items())) or "-"
