"""The ``ordercore`` command: a thin layer over the library.

::

    ordercore demo                      # the flash sale on a fresh SQLite file
    ordercore loadtest --db sqlite:///shop.db --buyers 10000 --stock 1000 --json
    ordercore loadtest --db postgresql+psycopg://host/shop --processes 4 --no-coalesce
    ordercore migrate --db postgresql+psycopg://host/shop
    ordercore sync --db sqlite:///shop.db --channel taobao-flagship --config ordercore.toml
    ordercore import 2026-11-11.csv --db sqlite:///shop.db --channel pos --rejects-out bad.csv
    ordercore runs --db sqlite:///shop.db --channel pos --json
    ordercore replay --db sqlite:///s.db --channel shop --window 2026-11-11T00:00Z 2026-11-11T06:00Z
    ordercore replay --db sqlite:///shop.db --channel taobao-flagship --rejects
    ordercore tasks list --db sqlite:///shop.db --state dead
    ordercore worker --db postgresql+psycopg://host/shop --handlers myshop.tasks:registry
    ordercore serve --db sqlite:///shop.db --config ordercore.toml [--json-log] [--once]
    ordercore tickets list --db sqlite:///shop.db --overdue --json   # also show, resolve, stats

Exit codes: 0 success, 1 a run that was not exact or did not succeed (or a storage
failure), 2 bad input (usage errors, an unknown storage scheme or channel, a bad config
or file, invalid parameters), 3 a sync paused because the channel's credentials expired.
Errors are printed as one clean line on stderr; a storage URL is never printed whole,
only its scheme, and no channel secret is ever printed.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

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
from ordercore.channels_config import load_channel
from ordercore.cli_after_sales import after_sales
from ordercore.cli_incident import replay_incident
from ordercore.cli_serve import serve
from ordercore.cli_tasks import tasks, worker
from ordercore.cli_tickets import tickets
from ordercore.config import Settings
from ordercore.core import OrderCore, create_storage
from ordercore.domain.intake import RunStatus, SyncRun
from ordercore.errors import ChannelAuthExpired, InvalidInput, OrderCoreError, UnknownAdapter
from ordercore.loadtest import (
    DEFAULT_SKU,
    CoalesceMode,
    FlashSaleConfig,
    FlashSaleReport,
    redact,
    run_flash_sale,
    url_scheme,
)
from ordercore.services.imports import ImportReport
from ordercore.services.replay import RejectReplay

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


# -- channel intake -----------------------------------------------------------------------

_CONFIG_HELP = "Channel config (TOML).  [default: $ORDERCORE_CONFIG, else ./ordercore.toml]"
_EXIT_BY_STATUS = {RunStatus.SUCCEEDED: 0, RunStatus.PAUSED: 3}


@main.command()
@click.option("--db", "url", metavar="URL", required=True, help=_DB_HELP)
@click.option(
    "--channel", "channel_name", metavar="NAME", required=True, help="A configured channel."
)
@click.option("--config", "config", metavar="PATH", help=_CONFIG_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object and nothing else.")
def sync(url: str, channel_name: str, config: str | None, as_json: bool) -> None:
    """Run one incremental sync of a channel and print its ledger entry.

    Exits 0 when the run succeeded, 1 when it was partial or failed, 3 when it paused on
    expired credentials, 2 on bad input.
    """
    run = _guarded(url, lambda: anyio.run(_sync, url, channel_name, config))
    _print_run(run, url, as_json)
    raise click.exceptions.Exit(_EXIT_BY_STATUS.get(run.status, 1))


async def _sync(url: str, channel_name: str, config: str | None) -> SyncRun:
    channel = load_channel(channel_name, config)
    try:
        async with OrderCore.open(url) as core:
            try:
                return await core.intake.sync(channel)
            except ChannelAuthExpired:
                return (await core.intake.runs(channel.name, limit=1))[0]
    finally:
        await channel.aclose()


@main.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--db", "url", metavar="URL", required=True, help=_DB_HELP)
@click.option("--channel", "channel_name", metavar="NAME", default="pos", show_default=True)
@click.option(
    "--rejects-out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the rejected rows as CSV (UTF-8 with BOM, opens in Excel).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object and nothing else.")
def import_(
    file: Path, url: str, channel_name: str, rejects_out: Path | None, as_json: bool
) -> None:
    """Import a POS export (CSV or XLSX) once; the same file again changes nothing.

    Rejected rows are listed (and kept for replay) but do not fail the command: exits 0
    when the file was imported or already had been, 2 when the file as a whole is bad.
    """
    data = file.read_bytes()
    report = _guarded(url, lambda: anyio.run(_import, url, data, file.name, channel_name))
    if rejects_out is not None:
        rejects_out.write_text(report.rejects_csv(), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
        return
    _print_import(report, url)


async def _import(url: str, data: bytes, filename: str, channel: str) -> ImportReport:
    async with OrderCore.open(url) as core:
        return await core.imports.import_pos_file(data, filename, channel=channel)


@main.command()
@click.option("--db", "url", metavar="URL", required=True, help=_DB_HELP)
@click.option("--channel", "channel_name", metavar="NAME", help="Only this channel's runs.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object and nothing else.")
def runs(url: str, channel_name: str | None, limit: int, as_json: bool) -> None:
    """Show the sync ledger, newest run first."""
    found = _guarded(url, lambda: anyio.run(_runs, url, channel_name, limit))
    if as_json:
        click.echo(json.dumps({"runs": [_run_dict(run) for run in found]}, ensure_ascii=False))
        return
    table = Table(title=f"sync ledger on {url_scheme(url)}")
    for column in (
        "started (UTC)",
        "channel",
        "trigger",
        "status",
        "fetched",
        "created",
        "updated",
        "unchanged",
        "rejected",
        "cursor after",
        "errors",
    ):
        table.add_column(column)
    for run in found:
        table.add_row(
            _when(run.started_at),
            run.channel,
            run.trigger,
            str(run.status),
            str(run.fetched),
            str(run.created),
            str(run.updated),
            str(run.unchanged),
            str(run.rejected),
            _when(run.cursor_after),
            str(len(run.errors)),
        )
    Console(width=160).print(table)


async def _runs(url: str, channel: str | None, limit: int) -> list[SyncRun]:
    async with OrderCore.open(url) as core:
        return await core.intake.runs(channel, limit=limit)


@main.command()
@click.option("--db", "url", metavar="URL", required=True, help=_DB_HELP)
@click.option(
    "--channel", "channel_name", metavar="NAME", required=True, help="A configured channel."
)
@click.option("--config", "config", metavar="PATH", help=_CONFIG_HELP)
@click.option(
    "--window",
    nargs=2,
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M:%S"]),
    metavar="START END",
    help="Re-fetch this window [START, END) (ISO 8601; without an offset, UTC).",
)
@click.option("--rejects", "replay_rejects", is_flag=True, help="Re-map the kept rejects.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object and nothing else.")
def replay(
    url: str,
    channel_name: str,
    config: str | None,
    window: tuple[datetime, datetime] | None,
    replay_rejects: bool,
    as_json: bool,
) -> None:
    """Replay one window, or the kept rejects, without moving the channel's cursor.

    Exits 0 when the replay succeeded, 1 otherwise, 2 on bad input.
    """
    if (window is None) == (not replay_rejects):
        raise click.UsageError("give exactly one of --window START END and --rejects")
    bounds = None if window is None else (_utc(window[0]), _utc(window[1]))
    outcome = _guarded(url, lambda: anyio.run(_replay, url, channel_name, config, bounds))
    extra: dict[str, Any] = {}
    if isinstance(outcome, RejectReplay):
        run = outcome.run
        extra = {"resolved": outcome.resolved, "still_rejected": outcome.still_rejected}
    else:
        run = outcome
    if as_json:
        click.echo(json.dumps(_run_dict(run) | extra, ensure_ascii=False))
    else:
        _print_run(run, url, as_json=False)
        if extra:
            click.echo(
                f"  rejects resolved {len(extra['resolved'])}, "
                f"still rejected {len(extra['still_rejected'])}"
            )
    raise click.exceptions.Exit(0 if run.status is RunStatus.SUCCEEDED else 1)


async def _replay(
    url: str, channel_name: str, config: str | None, window: tuple[datetime, datetime] | None
) -> SyncRun | RejectReplay:
    channel = load_channel(channel_name, config)
    try:
        async with OrderCore.open(url) as core:
            if window is None:
                return await core.replay.replay_rejects(channel)
            return await core.replay.replay_window(channel, *window)
    finally:
        await channel.aclose()


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _run_dict(run: SyncRun) -> dict[str, Any]:
    return run.model_dump(mode="json")


def _print_run(run: SyncRun, url: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(_run_dict(run), ensure_ascii=False))
        return
    lines = [
        f"{run.trigger} {run.channel} on {url_scheme(url)}: {run.status} (run {run.id})",
        f"  windows {run.windows}, pages {run.pages}, fetched {run.fetched}",
        f"  created {run.created}, updated {run.updated}, unchanged {run.unchanged}, "
        f"stale {run.stale}, rejected {run.rejected}",
        f"  cursor {_when(run.cursor_before)} -> {_when(run.cursor_after)} (UTC)"
        if run.trigger == "poll"
        else "  cursor not moved (a replay or import never moves it)",
        f"  credentials {run.credential_state or '-'}",
    ]
    lines.extend(f"  error: {redact(error, url)}" for error in run.errors)
    click.echo("\n".join(lines))


def _print_import(report: ImportReport, url: str) -> None:
    head = f"import {report.filename} into {report.channel} on {url_scheme(url)}"
    if report.already_imported:
        click.echo(f"{head}: already imported (sha256 {report.sha256[:12]}), nothing changed")
        return
    stored = report.stored
    lines = [
        f"{head}: orders {report.orders} (run {report.run_id})",
        f"  created {stored.created}, updated {stored.updated}, unchanged {stored.unchanged}, "
        f"stale {stored.stale}",
        f"  rejected orders {report.rejected_orders}, row errors {len(report.rejects)}",
    ]
    lines.extend(
        f"  line {r.line} order {r.order_no or '-'} {r.column} {r.value!r}: {r.message}"
        for r in report.rejects
    )
    lines.extend(f"  error: {redact(error, url)}" for error in stored.errors)
    click.echo("\n".join(lines))


main.add_command(serve)
main.add_command(tickets)
main.add_command(tasks)
main.add_command(worker)
main.add_command(replay_incident)
main.add_command(after_sales)

if __name__ == "__main__":
    main(prog_name="ordercore")
