"""``ordercore tasks`` and ``ordercore worker``: look at the outbox, redrive it, run it.

::

    ordercore tasks list --db postgresql+psycopg://host/shop --state dead
    ordercore tasks show 4f1c... --db sqlite:///shop.db --json
    ordercore tasks redrive 4f1c... 9a2b... --db sqlite:///shop.db
    ordercore tasks redrive --all-dead --db sqlite:///shop.db
    ordercore tasks purge --older-than-days 7 --db sqlite:///shop.db
    ordercore worker --db postgresql+psycopg://host/shop --handlers myshop.tasks:registry \\
        --events nats://127.0.0.1:4222 --processes 4

``--handlers MODULE:ATTRIBUTE`` names a :class:`~ordercore.services.outbox.HandlerRegistry`
(or a function that returns one); ``--events URL`` adds the relay of domain events to
that broker (an ``ordercore.events`` adapter, chosen by the URL's scheme). A worker
stops on SIGTERM or Ctrl-C after its running handlers finish (the drain timeout).
Exit codes as for every ordercore command: 0 success, 1 failure, 2 bad input.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import anyio
import click
from rich.console import Console
from rich.table import Table

from ordercore import registry as adapters
from ordercore.config import Settings
from ordercore.core import OrderCore
from ordercore.domain.outbox import OutboxState, OutboxTask
from ordercore.errors import (
    FieldError,
    InvalidInput,
    OrderCoreError,
    OutboxTaskNotFound,
    UnknownAdapter,
)
from ordercore.loadtest import redact, url_scheme
from ordercore.ports.events import EventPublisherPort
from ordercore.services.outbox import (
    EVENT_KIND,
    HandlerRegistry,
    StopWhen,
    WorkerStats,
    event_relay,
)

__all__ = ["tasks", "worker"]

T = TypeVar("T")

_DB_HELP = "Storage URL: memory://, sqlite:///path.db or postgresql+psycopg://host/db."
_STATES = [state.value for state in OutboxState]
_STOP_WHEN: dict[str, StopWhen] = {"stopped": "never", "idle": "idle", "drained": "drained"}


class _Failed(click.ClickException):
    exit_code = 1


class _BadInput(click.ClickException):
    exit_code = 2


def _guarded(url: str, action: Callable[[], T]) -> T:
    try:
        return action()
    except OrderCoreError as exc:
        bad = UnknownAdapter | InvalidInput | OutboxTaskNotFound
        failure = _BadInput if isinstance(exc, bad) else _Failed
        raise failure(redact(str(exc), url)) from exc


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _task_dict(task: OutboxTask) -> dict[str, Any]:
    return task.model_dump(mode="json")


@click.group()
def tasks() -> None:
    """The outbox: list, show, redrive and purge durable tasks."""


@tasks.command(name="list")
@click.option("--db", "url", metavar="URL", required=True, help=_DB_HELP)
@click.option(
    "--state", "states", type=click.Choice(_STATES), multiple=True, help="Only tasks in this state."
)
@click.option("--kind", metavar="KIND", help="Only tasks of this kind.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object and nothing else.")
def list_tasks(
    url: str, states: tuple[str, ...], kind: str | None, limit: int, as_json: bool
) -> None:
    """List tasks in insertion order, with the count in each state."""

    async def run() -> tuple[list[OutboxTask], dict[OutboxState, int]]:
        async with OrderCore.open(url) as core:
            found = await core.outbox.list(
                states=[OutboxState(s) for s in states], kind=kind, limit=limit
            )
            return found, await core.outbox.counts()

    found, counts = _guarded(url, lambda: anyio.run(run))
    if as_json:
        body = {
            "counts": {state.value: count for state, count in counts.items()},
            "tasks": [_task_dict(task) for task in found],
        }
        click.echo(json.dumps(body, ensure_ascii=False))
        return
    summary = ", ".join(f"{state.value} {count}" for state, count in counts.items())
    table = Table(title=f"outbox on {url_scheme(url)}: {summary}")
    for column in ("id", "kind", "key", "ordering key", "state", "attempts", "due (UTC)", "error"):
        table.add_column(column)
    for task in found:
        error = (task.last_error or "-").splitlines()[0][:60]
        table.add_row(
            task.id,
            task.kind,
            task.key,
            task.ordering_key or "-",
            task.state.value,
            str(task.attempts),
            _when(task.available_at),
            error,
        )
    Console(width=200).print(table)


@tasks.command()
@click.argument("task_id")
@click.option("--db", "url", metavar="URL", required=True, help=_DB_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object and nothing else.")
def show(task_id: str, url: str, as_json: bool) -> None:
    """Show one task whole: payload, lease, attempts, last error."""

    async def run() -> OutboxTask:
        async with OrderCore.open(url) as core:
            return await core.outbox.get(task_id)

    task = _guarded(url, lambda: anyio.run(run))
    if as_json:
        click.echo(json.dumps(_task_dict(task), ensure_ascii=False))
        return
    lines = [
        f"task {task.id} ({task.kind}) on {url_scheme(url)}: {task.state.value}",
        f"  key {task.key}, ordering key {task.ordering_key or '-'}, seq {task.seq}",
        f"  attempts {task.attempts}, due {_when(task.available_at)} (UTC)",
        f"  lease {task.lease_owner or '-'} until {_when(task.lease_until)}",
        f"  created {_when(task.created_at)}, finished {_when(task.finished_at)}",
        f"  payload {json.dumps(task.payload, ensure_ascii=False)}",
        f"  last error: {task.last_error or '-'}",
    ]
    click.echo("\n".join(lines))


@tasks.command()
@click.argument("task_ids", nargs=-1)
@click.option("--db", "url", metavar="URL", required=True, help=_DB_HELP)
@click.option("--all-dead", is_flag=True, help="Redrive every dead task.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object and nothing else.")
def redrive(task_ids: tuple[str, ...], url: str, all_dead: bool, as_json: bool) -> None:
    """Make dead tasks pending again (attempts reset), by id or --all-dead."""
    if bool(task_ids) == all_dead:
        raise click.UsageError("give task ids or --all-dead (not both)")

    async def run() -> list[str]:
        async with OrderCore.open(url) as core:
            return await core.outbox.redrive(None if all_dead else list(task_ids))

    redriven = _guarded(url, lambda: anyio.run(run))
    skipped = sorted(set(task_ids) - set(redriven))
    if as_json:
        click.echo(json.dumps({"redriven": redriven, "not_dead": skipped}))
        return
    click.echo(f"redriven {len(redriven)} task(s)" + "".join(f"\n  {i}" for i in redriven))
    if skipped:
        click.echo(f"not dead (left alone): {', '.join(skipped)}")


@tasks.command()
@click.option("--db", "url", metavar="URL", required=True, help=_DB_HELP)
@click.option(
    "--older-than-days",
    "days",
    type=click.FloatRange(min=0),
    required=True,
    help="Delete done tasks that finished more than this many days ago.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object and nothing else.")
def purge(url: str, days: float, as_json: bool) -> None:
    """Delete old done tasks (their idempotency keys can then be used again)."""

    async def run() -> int:
        async with OrderCore.open(url) as core:
            return await core.outbox.purge(timedelta(days=days))

    deleted = _guarded(url, lambda: anyio.run(run))
    if as_json:
        click.echo(json.dumps({"deleted": deleted}))
    else:
        click.echo(f"deleted {deleted} done task(s) finished more than {days:g} day(s) ago")


def _load_registry(target: str) -> HandlerRegistry:
    """Import ``module:attribute``: a HandlerRegistry, or a callable returning one."""
    module_name, _, attribute = target.partition(":")
    problem = FieldError("--handlers", "must name MODULE:ATTRIBUTE of a HandlerRegistry", target)
    if not module_name or not attribute:
        raise InvalidInput("worker options", [problem])
    try:
        found: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(
            "worker options", [FieldError("--handlers", f"cannot be imported ({exc})", target)]
        ) from exc
    if not isinstance(found, HandlerRegistry) and callable(found):
        found = found()
    if not isinstance(found, HandlerRegistry):
        raise InvalidInput("worker options", [problem])
    return found


def _publisher(events_url: str) -> EventPublisherPort:
    scheme = events_url.partition("://")[0].lower()
    factory = adapters.load("ordercore.events", scheme)
    publisher = factory(events_url)
    if not isinstance(publisher, EventPublisherPort):
        raise UnknownAdapter("events", f"{scheme} (does not implement EventPublisherPort)", [])
    return publisher


@click.command()
@click.option("--db", "url", metavar="URL", required=True, help=_DB_HELP)
@click.option(
    "--handlers",
    "handler_targets",
    metavar="MODULE:ATTR",
    multiple=True,
    help="A HandlerRegistry to run (or a function returning one); repeatable.",
)
@click.option("--events", "events_url", metavar="URL", help="Relay domain events to this broker.")
@click.option(
    "--processes",
    type=click.IntRange(min=1, max=64),
    default=1,
    show_default=True,
    help="Worker processes (PostgreSQL only; SQLite has one writer).",
)
@click.option("--concurrency", type=click.IntRange(min=1, max=1000), help="Handlers per process.")
@click.option("--lease", type=click.FloatRange(min=0.1), help="Lease seconds [default: settings]")
@click.option(
    "--until",
    "stop_when",
    type=click.Choice(["stopped", "idle", "drained"]),
    default="stopped",
    show_default=True,
    help="stopped: run until SIGTERM/Ctrl-C; idle: nothing due and nothing running; "
    "drained: nothing pending or running at all.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the stats as one JSON object.")
def worker(
    url: str,
    handler_targets: tuple[str, ...],
    events_url: str | None,
    processes: int,
    concurrency: int | None,
    lease: float | None,
    stop_when: str,
    as_json: bool,
) -> None:
    """Run outbox tasks: claim under a lease, run handlers, retry, dead-letter."""
    if not handler_targets and events_url is None:
        raise click.UsageError("give --handlers MODULE:ATTR and/or --events URL")
    if processes > 1 and url_scheme(url).split("+")[0] != "postgresql":
        raise _BadInput(
            f"--processes {processes}: only PostgreSQL shares tasks between processes "
            f"(got {url_scheme(url)}); run one worker process"
        )
    options = _WorkerOptions(
        url, handler_targets, events_url, concurrency, lease, stop_when, processes > 1
    )
    if processes == 1:
        stats = [_guarded(url, lambda: _run_worker(options))]
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(processes) as pool:
            stats = pool.map(_run_worker_process, [options] * processes)
    total = WorkerStats()
    for one in stats:
        for name in ("claimed", "done", "retried", "dead", "lost", "released"):
            setattr(total, name, getattr(total, name) + getattr(one, name))
        for kind, count in one.by_kind.items():
            total.by_kind[kind] = total.by_kind.get(kind, 0) + count
    body = {
        "processes": processes,
        "claimed": total.claimed,
        "done": total.done,
        "retried": total.retried,
        "dead": total.dead,
        "lost": total.lost,
        "released": total.released,
        "by_kind": total.by_kind,
    }
    if as_json:
        click.echo(json.dumps(body))
    else:
        click.echo(
            f"worker on {url_scheme(url)} ({processes} process(es)): done {total.done}, "
            f"retried {total.retried}, dead {total.dead}, lost leases {total.lost}, "
            f"handed back {total.released}"
        )


class _WorkerOptions:
    """What a worker process needs (picklable for ``spawn``)."""

    def __init__(
        self,
        url: str,
        handler_targets: tuple[str, ...],
        events_url: str | None,
        concurrency: int | None,
        lease: float | None,
        stop_when: str,
        child: bool,
    ) -> None:
        self.url = url
        self.handler_targets = handler_targets
        self.events_url = events_url
        self.concurrency = concurrency
        self.lease = lease
        self.stop_when = stop_when
        self.child = child


def _run_worker_process(options: _WorkerOptions) -> WorkerStats:
    try:
        return _run_worker(options)
    except OrderCoreError as exc:
        raise _Failed(redact(str(exc), options.url)) from None


def _run_worker(options: _WorkerOptions) -> WorkerStats:
    registry = HandlerRegistry()
    for target in options.handler_targets:
        loaded = _load_registry(target)
        for kind in loaded.kinds:
            spec = loaded.get(kind)
            registry.register(
                kind, spec.handler, max_attempts=spec.max_attempts, timeout=spec.timeout
            )
    return anyio.run(_work, options, registry)


async def _work(options: _WorkerOptions, registry: HandlerRegistry) -> WorkerStats:
    overrides: dict[str, Any] = {}
    if options.lease is not None:
        overrides["outbox_lease"] = timedelta(seconds=options.lease)
    settings = Settings(**overrides)
    publisher = _publisher(options.events_url) if options.events_url else None
    try:
        if publisher is not None:
            await publisher.ping()
            registry.register(EVENT_KIND, event_relay(publisher))
        async with OrderCore.open(options.url, settings=settings) as core:
            runner = core.outbox.worker(registry, concurrency=options.concurrency)
            stop_when = _STOP_WHEN[options.stop_when]
            async with anyio.create_task_group() as group:

                async def on_signal() -> None:
                    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                        async for _ in signals:
                            runner.stop()
                            return

                group.start_soon(on_signal)
                stats = await runner.run(stop_when=stop_when)
                group.cancel_scope.cancel()
            return stats
    finally:
        if publisher is not None:
            await publisher.aclose()
