"""``ordercore tickets``: list, show, resolve exception tickets, and their statistics.

::

    ordercore tickets list --db sqlite:///shop.db --status open --overdue --json
    ordercore tickets show T20261111-0123abcd --db sqlite:///shop.db
    ordercore tickets resolve T20261111-0123abcd --db sqlite:///shop.db \\
        --outcome address_corrected --by li --note "3 号楼 confirmed"
    ordercore tickets stats --db sqlite:///shop.db --from 2026-11-01 --to 2026-12-01 --json

``--config`` reads the ``[tickets]`` table of a TOML file (custom outcome codes, teams).
Exit codes: 0 success, 1 a storage failure, 2 bad input (unknown ticket, a change the
workflow forbids, an invalid outcome or filter, an unknown storage scheme). Errors are
one line on stderr; a storage URL is never printed whole.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio
import click
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from ordercore.config import Settings
from ordercore.core import OrderCore
from ordercore.domain.tickets import Ticket, TicketDistribution, TicketPolicy, TicketStatus
from ordercore.errors import (
    InvalidInput,
    OrderCoreError,
    TicketNotFound,
    TicketStateConflict,
    UnknownAdapter,
)
from ordercore.loadtest import redact

__all__ = ["tickets"]

T = TypeVar("T")

_DB_HELP = "Storage URL: memory://, sqlite:///path.db or postgresql+psycopg://host/db."
_CONFIG_HELP = "TOML file whose [tickets] table configures teams, SLAs and outcome codes."
_JSON_HELP = "Print one JSON object and nothing else."


class _Failed(click.ClickException):
    exit_code = 1


class _BadInput(click.ClickException):
    exit_code = 2


def _settings(config: str | None) -> Settings:
    if config is None:
        return Settings()
    try:
        return Settings(tickets=TicketPolicy.from_toml(config))
    except (OSError, ValueError, ValidationError) as exc:
        raise _BadInput(f"cannot read the [tickets] table of {config}: {exc}") from exc


def _run(url: str, config: str | None, work: Callable[[OrderCore], Awaitable[T]]) -> T:
    """Open a core on ``url``, run ``work``; errors become one clean line and an exit code."""
    settings = _settings(config)

    async def main() -> T:
        async with OrderCore.open(url, settings=settings) as core:
            return await work(core)

    try:
        return anyio.run(main)
    except OrderCoreError as exc:
        bad = (InvalidInput, UnknownAdapter, TicketNotFound, TicketStateConflict)
        failure = _BadInput if isinstance(exc, bad) else _Failed
        raise failure(redact(str(exc), url)) from exc


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else "-"


def _echo_json(payload: dict[str, Any]) -> None:
    click.echo(json.dumps(payload, ensure_ascii=False))


@click.group()
def tickets() -> None:
    """Exception tickets: list, show, resolve, statistics."""


@tickets.command(name="list")
@click.option("--db", "url", metavar="URL", required=True, help=_DB_HELP)
@click.option(
    "--status", type=click.Choice([s.value for s in TicketStatus]), help="Only this status."
)
@click.option("--type", "ticket_type", metavar="TYPE", help="Only this ticket type.")
@click.option("--assignee", metavar="NAME", help="Only tickets assigned to NAME.")
@click.option("--team", metavar="NAME", help="Only tickets of this team.")
@click.option("--channel", metavar="NAME", help="Only tickets of this channel.")
@click.option("--overdue", is_flag=True, help="Only active tickets past their deadline.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
def list_(
    url: str,
    status: str | None,
    ticket_type: str | None,
    assignee: str | None,
    team: str | None,
    channel: str | None,
    overdue: bool,
    limit: int,
    as_json: bool,
) -> None:
    """List tickets, newest first."""

    async def work(core: OrderCore) -> tuple[list[Ticket], datetime]:
        found = await core.tickets.list(
            status=status,
            ticket_type=ticket_type,
            assignee=assignee,
            team=team,
            channel=channel,
            overdue=overdue,
            limit=limit,
        )
        return found, core.clock.now()

    found, now = _run(url, None, work)
    if as_json:
        _echo_json({"tickets": [ticket.model_dump(mode="json") for ticket in found]})
        return
    table = Table(title=f"{len(found)} ticket(s)")
    for column in ("id", "type", "severity", "status", "order", "channel", "team", "assignee"):
        table.add_column(column)
    table.add_column("deadline (UTC)")
    for ticket in found:
        deadline = _when(ticket.deadline) + (" OVERDUE" if ticket.is_overdue(now) else "")
        table.add_row(
            ticket.id,
            ticket.ticket_type,
            str(ticket.severity),
            str(ticket.status),
            ticket.order_id or "-",
            ticket.channel,
            ticket.team,
            ticket.assignee or "-",
            deadline,
        )
    Console(width=170).print(table)


@tickets.command()
@click.argument("ticket_id")
@click.option("--db", "url", metavar="URL", required=True, help=_DB_HELP)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
def show(ticket_id: str, url: str, as_json: bool) -> None:
    """Show one ticket: reasons, SOP, deadline and its full history."""

    async def work(core: OrderCore) -> Ticket:
        return await core.tickets.get(ticket_id)

    ticket = _run(url, None, work)
    if as_json:
        _echo_json(ticket.model_dump(mode="json"))
        return
    _print_ticket(ticket)


@tickets.command()
@click.argument("ticket_id")
@click.option("--db", "url", metavar="URL", required=True, help=_DB_HELP)
@click.option("--outcome", required=True, metavar="CODE", help="Resolution outcome code.")
@click.option("--by", "actor", required=True, metavar="NAME", help="Who resolves it.")
@click.option("--note", default="", help="What was done.")
@click.option("--close", "close_too", is_flag=True, help="Close the ticket right after.")
@click.option("--config", metavar="PATH", help=_CONFIG_HELP)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
def resolve(
    ticket_id: str,
    url: str,
    outcome: str,
    actor: str,
    note: str,
    close_too: bool,
    config: str | None,
    as_json: bool,
) -> None:
    """Resolve a ticket with an outcome code (and optionally close it)."""

    async def work(core: OrderCore) -> Ticket:
        ticket = await core.tickets.resolve(ticket_id, outcome, by=actor, note=note)
        if close_too:
            ticket = await core.tickets.close(ticket_id, by=actor)
        return ticket

    ticket = _run(url, config, work)
    if as_json:
        _echo_json(ticket.model_dump(mode="json"))
        return
    click.echo(f"ticket {ticket.id}: {ticket.status} ({ticket.outcome}) by {actor}")


@tickets.command()
@click.option("--db", "url", metavar="URL", required=True, help=_DB_HELP)
@click.option(
    "--from",
    "start",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M"]),
    help="Period start (UTC unless an offset is given).",
)
@click.option(
    "--to",
    "end",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M"]),
    help="Period end, exclusive.",
)
@click.option("--channel", metavar="NAME", help="Only this channel.")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
def stats(
    url: str, start: datetime, end: datetime, channel: str | None, top: int, as_json: bool
) -> None:
    """Exception distribution of a period: per channel, top reasons, time to resolve."""
    start, end = _utc(start), _utc(end)

    async def work(core: OrderCore) -> TicketDistribution:
        return await core.tickets.distribution(start, end, channel, top=top)

    report = _run(url, None, work)
    if as_json:
        _echo_json(report.model_dump(mode="json"))
        return
    for summary in (report.overall, *report.channels.values()):
        mttr = summary.mean_time_to_resolve
        click.echo(
            f"{summary.channel}: {summary.tickets} ticket(s), {summary.resolved} resolved, "
            f"mean time to resolve {mttr if mttr is not None else '-'}"
        )
        for rank, reason in enumerate(summary.top_reasons, start=1):
            click.echo(f"  {rank:2}. {reason.count:5}  {reason.reason}")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _print_ticket(ticket: Ticket) -> None:
    follow = ticket.follow_up
    lines = [
        f"ticket {ticket.id}  {ticket.ticket_type}  {ticket.severity}  {ticket.status}",
        f"  order {ticket.order_id or '-'} on {ticket.channel}; team {ticket.team}, "
        f"assignee {ticket.assignee or '-'}, escalations {ticket.escalation_level}",
        f"  opened {_when(ticket.opened_at)}, deadline {_when(ticket.deadline)}, "
        f"resolved {_when(ticket.resolved_at)} ({ticket.outcome or '-'})",
        "  reasons:",
        *(f"    - {reason}" for reason in ticket.reasons),
    ]
    if follow is not None:
        lines.append(
            f"  follow-up {follow.template}: {follow.state}, SMS {_when(follow.sms_sent_at)}, "
            f"reply due {_when(follow.due_at)}"
        )
    lines.append(f"  SOP {ticket.sop.title}: {ticket.sop.summary}")
    lines.extend(f"    {step}" for step in ticket.sop.steps)
    lines.append("  history (UTC):")
    for event in ticket.events:
        moved = f"{event.from_status or '-'} -> {event.to_status}"
        lines.append(
            f"    {_when(event.at)}  {event.by:<10} {event.action:<18} {moved:<30} {event.note}"
        )
    click.echo("\n".join(line.rstrip() for line in lines))
