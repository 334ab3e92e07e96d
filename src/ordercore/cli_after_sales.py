"""``ordercore after-sales``: pull refunds, returns, exchanges and resends; list; inspect.

::

    ordercore after-sales sync --db sqlite:///shop.db --channel taobao-flagship --json
    ordercore after-sales list --db sqlite:///shop.db --channel taobao-flagship --unlinked
    ordercore after-sales inspect taobao-flagship:70012 --db sqlite:///shop.db --by li \\
        --line TEE-BLK-M:sellable=1,defective=1 --line MUG-01:scrap=1

Exit codes: 0 success; 1 a partial or failed run, or a storage failure; 2 bad input
(an unknown channel, request or storage scheme, an inspection that does not fit the
request or conflicts with the recorded one); 3 a run paused on expired credentials.
Errors are one line on stderr; a storage URL is never printed whole.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import anyio
import click
from rich.console import Console
from rich.table import Table

from ordercore.channels_config import load_channel
from ordercore.core import OrderCore
from ordercore.domain.after_sales import AfterSale, AfterSaleStatus, InspectionLine
from ordercore.domain.intake import RunStatus, SyncRun
from ordercore.errors import (
    AfterSaleNotFound,
    ChannelAuthExpired,
    FieldError,
    InspectionConflict,
    InvalidInput,
    OrderCoreError,
    UnknownAdapter,
)
from ordercore.loadtest import redact, url_scheme
from ordercore.services.after_sales import InspectionReport

__all__ = ["after_sales"]

T = TypeVar("T")

_DB_HELP = "Storage URL: memory://, sqlite:///path.db or postgresql+psycopg://host/db."
_CONFIG_HELP = "Channel config (TOML).  [default: $ORDERCORE_CONFIG, else ./ordercore.toml]"
_JSON_HELP = "Print one JSON object and nothing else."
_EXIT_BY_STATUS = {RunStatus.SUCCEEDED: 0, RunStatus.PAUSED: 3}
_GRADES = ("sellable", "defective", "scrap")


class _Failed(click.ClickException):
    exit_code = 1


class _BadInput(click.ClickException):
    exit_code = 2


def _run(url: str, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work``; an OrderCoreError becomes one redacted line and an exit code."""
    try:
        return anyio.run(work)
    except OrderCoreError as exc:
        bad = (InvalidInput, UnknownAdapter, AfterSaleNotFound, InspectionConflict)
        failure = _BadInput if isinstance(exc, bad) else _Failed
        raise failure(redact(str(exc), url)) from exc


@click.group(name="after-sales")
def after_sales() -> None:
    """Refunds, returns, exchanges and resends: sync from channels, list, inspect."""


@after_sales.command()
@click.option("--db", "url", metavar="URL", required=True, help=_DB_HELP)
@click.option(
    "--channel", "channel_name", metavar="NAME", required=True, help="A configured channel."
)
@click.option("--config", "config", metavar="PATH", help=_CONFIG_HELP)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
def sync(url: str, channel_name: str, config: str | None, as_json: bool) -> None:
    """Run one incremental after-sales sync of a channel and print its ledger entry."""

    async def work() -> SyncRun:
        channel = load_channel(channel_name, config)
        try:
            async with OrderCore.open(url) as core:
                try:
                    return await core.after_sales.sync(channel)
                except ChannelAuthExpired:
                    return (await core.intake.runs(channel.name, limit=1))[0]
        finally:
            await channel.aclose()

    run = _run(url, work)
    if as_json:
        click.echo(json.dumps(run.model_dump(mode="json"), ensure_ascii=False))
    else:
        lines = [
            f"after-sales {run.channel} on {url_scheme(url)}: {run.status} (run {run.id})",
            f"  windows {run.windows}, pages {run.pages}, fetched {run.fetched}",
            f"  created {run.created}, updated {run.updated}, unchanged {run.unchanged}, "
            f"stale {run.stale}, rejected {run.rejected}",
            f"  cursor {_when(run.cursor_before)} -> {_when(run.cursor_after)} (UTC)",
        ]
        lines.extend(f"  error: {redact(error, url)}" for error in run.errors)
        click.echo("\n".join(lines))
    raise click.exceptions.Exit(_EXIT_BY_STATUS.get(run.status, 1))


@after_sales.command(name="list")
@click.option("--db", "url", metavar="URL", required=True, help=_DB_HELP)
@click.option("--channel", "channel_name", metavar="NAME", help="Only this channel's.")
@click.option("--order", "order_id", metavar="ID", help="Only those of this order (our id).")
@click.option(
    "--status", type=click.Choice([status.value for status in AfterSaleStatus]), default=None
)
@click.option("--unlinked", is_flag=True, help="Only those whose order is not stored yet.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
def list_(
    url: str,
    channel_name: str | None,
    order_id: str | None,
    status: str | None,
    unlinked: bool,
    limit: int,
    as_json: bool,
) -> None:
    """List after-sale requests, most recently changed on the platform first."""

    async def work() -> list[AfterSale]:
        async with OrderCore.open(url) as core:
            return await core.after_sales.list(
                channel=channel_name,
                order_id=order_id,
                status=AfterSaleStatus(status) if status else None,
                unlinked_only=unlinked,
                limit=limit,
            )

    found = _run(url, work)
    if as_json:
        rows = [item.model_dump(mode="json") for item in found]
        click.echo(json.dumps({"after_sales": rows}, ensure_ascii=False))
        return
    table = Table(title=f"after-sales on {url_scheme(url)}")
    for column in ("id", "kind", "status", "order", "lines", "refund", "changed (UTC)"):
        table.add_column(column)
    for item in found:
        table.add_row(
            item.id,
            item.kind.value,
            item.status.value,
            item.order_id or f"({item.order_external_id}: not stored yet)",
            ", ".join(f"{line.sku} x{line.quantity}" for line in item.lines) or "-",
            f"{item.refund.amount} {item.refund.currency}",
            _when(item.source_modified_at),
        )
    Console().print(table)


@after_sales.command()
@click.argument("after_sale_id")
@click.option("--db", "url", metavar="URL", required=True, help=_DB_HELP)
@click.option("--by", "by", metavar="NAME", required=True, help="Who inspected the goods.")
@click.option(
    "--line",
    "lines",
    metavar="SKU:GRADE=N[,GRADE=N][@WAREHOUSE]",
    multiple=True,
    required=True,
    help="Grades of one SKU (sellable, defective, scrap); @WAREHOUSE for sellable units.",
)
@click.option("--note", default="", help="A remark kept with the inspection.")
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
def inspect(
    after_sale_id: str, url: str, by: str, lines: Sequence[str], note: str, as_json: bool
) -> None:
    """Grade a return's units and restock them (once; the same grades again change nothing)."""
    graded = _parse_lines(lines)

    async def work() -> InspectionReport:
        async with OrderCore.open(url) as core:
            return await core.after_sales.inspect(after_sale_id, graded, by, note=note)

    report = _run(url, work)
    if as_json:
        payload: dict[str, Any] = {
            "created": report.created,
            "inspection": report.inspection.model_dump(mode="json"),
        }
        click.echo(json.dumps(payload, ensure_ascii=False))
        return
    sellable, defective, scrap = report.inspection.totals()
    verb = "inspected" if report.created else "already inspected (nothing changed)"
    click.echo(
        f"{after_sale_id}: {verb} by {report.inspection.inspected_by}: sellable {sellable}, "
        f"defective {defective} (to {report.inspection.defective_warehouse}), scrap {scrap}"
    )


def _parse_lines(texts: Sequence[str]) -> list[InspectionLine]:
    lines: list[InspectionLine] = []
    errors: list[FieldError] = []
    for index, text in enumerate(texts):
        sku, _, rest = text.partition(":")
        grades, _, warehouse = rest.partition("@")
        values: dict[str, Any] = {"sku": sku.strip(), "warehouse": warehouse.strip()}
        try:
            for part in filter(None, (piece.strip() for piece in grades.split(","))):
                grade, _, number = part.partition("=")
                if grade not in _GRADES or not number.isdigit():
                    raise ValueError(part)
                values[grade] = int(number)
            lines.append(InspectionLine.model_validate(values))
        except ValueError as exc:
            errors.append(
                FieldError(
                    f"--line[{index}]",
                    f"expected SKU:GRADE=N[,GRADE=N][@WAREHOUSE] with grades {_GRADES} "
                    f"({str(exc).splitlines()[0]})",
                    text,
                )
            )
    if errors:
        raise _BadInput(str(InvalidInput("inspection", errors)))
    return lines


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"
