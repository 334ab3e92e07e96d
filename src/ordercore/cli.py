"""The ``ordercore`` command: a thin layer over the library.

::

    ordercore demo                      # the flash sale on a fresh SQLite file
    ordercore loadtest --db sqlite:///shop.db --buyers 10000 --stock 1000 --json
    ordercore loadtest --db postgresql+psycopg://host/shop --processes 4 --no-coalesce
    ordercore migrate --db postgresql+psycopg://host/shop

Exit codes: 0 success, 1 a run that was not exact (or a storage failure), 2 bad input
(usage errors, an unknown storage scheme, invalid parameters). Errors are printed as one
clean line on stderr; a storage URL is never printed whole, only its scheme.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TypeVar

import anyio
import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ordercore import __version__
from ordercore.config import Settings
from ordercore.core import create_storage
from ordercore.errors import InvalidInput, OrderCoreError, UnknownAdapter
from ordercore.loadtest import (
    DEFAULT_SKU,
    CoalesceMode,
    FlashSaleConfig,
    FlashSaleReport,
    redact,
    run_flash_sale,
    url_scheme,
)

__all__ = ["main"]

T = TypeVar("T")

_DB_HELP = "Storage URL: memory://, sqlite:///path.db or postgresql+psycopg://host/db."


class _Failed(click.ClickException):
    """An ordercore error the caller did not cause, shown as one line on stderr (exit 1)."""

    exit_code = 1


class _BadInput(click.ClickException):
    """An unknown storage scheme or an invalid parameter, one line on stderr (exit 2)."""

    exit_code = 2


def _guarded(url: str, action: Callable[[], T]) -> T:
    """Run ``action``; turn an OrderCoreError into a clean, redacted message and exit code."""
    try:
        return action()
    except OrderCoreError as exc:
        failure = _BadInput if isinstance(exc, UnknownAdapter | InvalidInput) else _Failed
        raise failure(redact(str(exc), url)) from exc


@contextmanager
def _database(url: str | None, name: str) -> Iterator[str]:
    """The URL given, or a fresh SQLite file in a temporary folder removed afterwards."""
    if url is not None:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="ordercore-", ignore_cleanup_errors=True) as folder:
        yield f"sqlite:///{(Path(folder) / name).as_posix()}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ordercore")
def main() -> None:
    """ordercore: multi-channel order management that never oversells."""


@main.command()
@click.option("--db", "url", metavar="URL", help=f"{_DB_HELP} [default: a fresh SQLite file]")
@click.option("--buyers", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--stock", type=click.IntRange(min=0), default=1_000, show_default=True)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Reservations in flight at most (over all processes).  [default: all buyers at once]",
)
@click.option("--sku", default=DEFAULT_SKU, show_default=True, help="SKU on sale.")
@click.option(
    "--coalesce/--no-coalesce",
    default=None,
    help="Group concurrent reservations of the SKU into one transaction, or reserve each "
    "on its own.  [default: auto: grouped on SQLite and PostgreSQL, not on memory]",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help="Most reservations one grouped transaction decides.  "
    f"[default: {Settings.model_fields['coalesce_batch_size'].default}]",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="OS processes sharing the buyers, each with its own core on the database "
    "(SQLite or PostgreSQL; memory:// takes 1).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object and nothing else.")
def loadtest(
    url: str | None,
    buyers: int,
    stock: int,
    concurrency: int | None,
    sku: str,
    coalesce: bool | None,
    batch_size: int | None,
    processes: int,
    as_json: bool,
) -> None:
    """Run the flash sale: BUYERS buyers race for STOCK units of one SKU.

    Exits 0 when the outcome is exact (min(buyers, stock) reservations, no oversell, no
    drift), 1 when it is not, 2 on bad input.
    """
    mode: CoalesceMode = "auto" if coalesce is None else "on" if coalesce else "off"
    with _database(url, "loadtest.db") as resolved:
        config = FlashSaleConfig(
            resolved,
            buyers=buyers,
            stock=stock,
            concurrency=concurrency,
            sku=sku,
            coalesce=mode,
            batch_size=batch_size,
            processes=processes,
        )
        report = _run_flash_sale(config, as_json)
    _finish(report, as_json)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object and nothing else.")
def demo(as_json: bool) -> None:
    """Show the no-oversell guarantee: 10,000 buyers, 1,000 units, a fresh SQLite file."""
    with _database(None, "demo.db") as url:
        report = _run_flash_sale(FlashSaleConfig(url, buyers=10_000, stock=1_000), as_json)
    _finish(report, as_json)


@main.command()
@click.option("--db", "url", metavar="URL", required=True, help=_DB_HELP)
def migrate(url: str) -> None:
    """Bring the storage's schema to the newest migration."""
    _guarded(url, lambda: anyio.run(_migrate, url))
    click.echo(f"{url_scheme(url)}: schema up to date")


async def _migrate(url: str) -> None:
    storage = create_storage(url, Settings(migrate_on_open=True))
    await storage.open()
    try:
        await storage.ping()
    finally:
        await storage.close()


def _run_flash_sale(config: FlashSaleConfig, as_json: bool) -> FlashSaleReport:
    if as_json:
        return _guarded(config.url, lambda: anyio.run(run_flash_sale, config))
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    description = f"flash sale on {url_scheme(config.url)}"
    if config.processes > 1:
        description += f", {config.processes} processes"
    task = progress.add_task(description, total=config.buyers)

    def advance(done: int, total: int) -> None:
        if not progress.live.is_started:  # shown once the reserve phase begins
            progress.start()
        progress.update(task, completed=done, refresh=done == total)

    run = partial(run_flash_sale, config, on_progress=advance)
    try:
        return _guarded(config.url, lambda: anyio.run(run))
    finally:
        progress.stop()


def _finish(report: FlashSaleReport, as_json: bool) -> None:
    """Print the report (JSON or a table), then exit 1 unless the run passed."""
    if report.note:
        Console(stderr=True).print(f"[yellow]note:[/] {report.note}", highlight=False)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        _render(report)
    if not report.passed:
        raise click.exceptions.Exit(1)


def _render(report: FlashSaleReport) -> None:
    table = Table(title=f"flash sale on {report.db}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows: list[tuple[str, str]] = [
        ("SKU", report.sku),
        ("buyers", f"{report.buyers:,}"),
        ("stock", f"{report.stock:,}"),
        ("concurrency", f"{report.concurrency:,}"),
        ("processes", f"{report.processes:,}"),
        ("coalesce", f"{report.coalesce} ({'grouped' if report.coalesced else 'per request'})"),
        ("batch size", f"{report.batch_size:,}" if report.coalesced else "-"),
        ("successes", f"{report.successes:,}"),
        ("rejected", f"{report.rejected:,}"),
        ("errors", f"{report.errors:,}"),
        ("oversold", f"{report.oversold:,}"),
        ("reserved (storage)", f"{report.reserved:,}"),
        ("final sellable", f"{report.final_sellable:,}"),
        ("drift", "; ".join(report.drift) or "none"),
        ("reservations/s", f"{report.reservations_per_s:,.0f}"),
        ("requests/s", f"{report.requests_per_s:,.0f}"),
        ("p50 latency", f"{report.p50_ms:.2f} ms"),
        ("p99 latency", f"{report.p99_ms:.2f} ms"),
        ("reserve phase", f"{report.reserve_wall_s:.2f} s"),
        ("elapsed", f"{report.elapsed_s:.2f} s"),
        ("peak RSS", f"{report.peak_rss_mb:.1f} MiB"),
    ]
    for label, value in rows:
        table.add_row(label, value)
    console = Console()
    console.print(table)
    for sample in report.error_samples:
        console.print(f"[red]error:[/] {sample}", highlight=False)
    if report.exact:
        verdict = "[green]exact[/]: every unit sold once, none oversold, no drift"
    else:
        verdict = "[red]NOT exact[/]: see successes, oversold and drift above"
    console.print(verdict)


if __name__ == "__main__":
    main(prog_name="ordercore")
