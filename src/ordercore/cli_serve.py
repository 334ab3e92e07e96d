"""``ordercore serve``: the long-running intake worker.

::

    ordercore serve --db postgresql+psycopg://host/shop --config ordercore.toml
    ordercore serve --db sqlite:///shop.db --json-log          # JSON lines on stdout
    ordercore serve --db sqlite:///shop.db --once              # every due job once (cron)

Runs the :class:`~ordercore.services.scheduler.IntakeScheduler` for every channel and
POS folder in the config file (their policies: :mod:`ordercore.channels_config`) until
SIGINT or SIGTERM. On the first signal it starts no new job and lets the jobs in flight
finish for up to ``--grace`` seconds; after that (or on a second signal) it abandons
them: a page being fetched is dropped and a window being stored rolls back, so a cursor
never moves past orders that were not stored. Each job is logged as one masked line
(text, or JSON with ``--json-log``); alerts go to the ``[notifier]`` of the config file
and to the log.

Exit codes: 0 a clean stop (with ``--once``: every job succeeded), 1 a job failed
(``--once``) or the storage failed, 2 bad input (config, channel names, storage URL),
3 a channel paused on expired credentials (``--once``).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import click
from anyio.abc import TaskStatus

from ordercore.channels_config import (
    ChannelConfigError,
    load_channels,
    load_notifier,
    load_serve_config,
)
from ordercore.core import OrderCore
from ordercore.domain.privacy import mask_text
from ordercore.errors import InvalidInput, OrderCoreError, UnknownAdapter
from ordercore.loadtest import redact, url_scheme
from ordercore.ports.channels import ChannelPort
from ordercore.ports.notifiers import Alert, AlertLevel, NotifierPort
from ordercore.services.scheduler import IntakeScheduler, JobOutcome

__all__ = ["serve"]

_log = logging.getLogger("ordercore.serve")
TICKET_TIMERS = timedelta(minutes=1)
"""How often the worker runs due ticket timers (escalations, follow-ups, SMS, alerts)."""

_LEVELS = {
    AlertLevel.INFO: logging.INFO,
    AlertLevel.WARNING: logging.WARNING,
    AlertLevel.HIGH: logging.ERROR,
    AlertLevel.CRITICAL: logging.CRITICAL,
}


class _Failed(click.ClickException):
    exit_code = 1


class _BadInput(click.ClickException):
    exit_code = 2


@dataclass(frozen=True, slots=True)
class _Options:
    url: str
    config: str | None
    names: tuple[str, ...]
    once: bool
    grace: float


@click.command()
@click.option(
    "--db",
    "url",
    metavar="URL",
    required=True,
    help="Storage URL: sqlite:///path.db or postgresql+psycopg://host/db.",
)
@click.option(
    "--config",
    metavar="PATH",
    help="Channel config (TOML).  [default: $ORDERCORE_CONFIG, else ./ordercore.toml]",
)
@click.option(
    "--channel",
    "names",
    metavar="NAME",
    multiple=True,
    help="Only this configured channel (repeatable).  [default: every channel]",
)
@click.option("--json-log", is_flag=True, help="Log JSON lines instead of text lines.")
@click.option("--once", is_flag=True, help="Run every job due now once, then exit (cron).")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds the jobs in flight may take to finish after SIGINT/SIGTERM.",
)
def serve(
    url: str,
    config: str | None,
    names: tuple[str, ...],
    json_log: bool,
    once: bool,
    grace: float,
) -> None:
    """Run the intake worker: polls, safety polls, reconciliation, POS folders.

    Stops cleanly on SIGINT or SIGTERM. See docs/intake.md, "Running the worker".
    """
    options = _Options(url, config, names, once, grace)
    with _logging(json_log, url):
        try:
            code = anyio.run(_serve, options)
        except OrderCoreError as exc:
            bad = isinstance(exc, UnknownAdapter | InvalidInput)
            raise (_BadInput if bad else _Failed)(redact(str(exc), url)) from exc
    raise click.exceptions.Exit(code)


async def _serve(options: _Options) -> int:
    plan = load_serve_config(options.config)
    if not plan.channels and not plan.pos:
        raise ChannelConfigError(
            f"config {plan.source.name if plan.source else ''!r}",
            "channels",
            "configures no [channels.NAME] and no [pos.NAME]: nothing to serve",
        )
    channels = load_channels(options.config, names=options.names or None)
    try:
        notifier = _LoggingNotifier(load_notifier(options.config))
        async with OrderCore.open(options.url, notifier=notifier) as core:
            scheduler = IntakeScheduler.for_core(core, notifier, on_outcome=_log_outcome)
            scheduler.add_periodic("tickets", TICKET_TIMERS, core.tickets.run_due)
            for name, channel in channels.items():
                scheduler.add(channel, plan.channels[name])
            if not options.names:
                for name, folder in plan.pos.items():
                    scheduler.add_pos(name, folder)
            if options.once:
                return _exit_code(await scheduler.tick())
            return await _run_until_signal(scheduler, options, len(channels))
    finally:
        with anyio.CancelScope(shield=True):
            for channel in channels.values():
                await _close(channel)


async def _run_until_signal(scheduler: IntakeScheduler, options: _Options, channels: int) -> int:
    abandoned: list[bool] = []
    async with anyio.create_task_group() as group:
        await group.start(_stop_on_signal, scheduler, group.cancel_scope, options.grace, abandoned)
        _event(
            logging.INFO,
            f"serving {channels} channels and {len(scheduler.pos)} POS folders on "
            f"{url_scheme(options.url)}",
            "serve.started",
            {"channels": sorted(scheduler.schedules), "pos": sorted(scheduler.pos)},
        )
        await scheduler.run()
        group.cancel_scope.cancel()
    if abandoned:
        _event(logging.WARNING, "stopped: abandoned the jobs in flight", "serve.stopped")
    else:
        _event(logging.INFO, "stopped cleanly", "serve.stopped")
    return 0


async def _stop_on_signal(
    scheduler: IntakeScheduler,
    scope: anyio.CancelScope,
    grace: float,
    abandoned: list[bool],
    *,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for received in signals:
            _event(
                logging.INFO,
                f"{signal.Signals(received).name}: stopping after the jobs in flight "
                f"(at most {grace:g} s; a second signal stops now)",
                "serve.stopping",
            )
            break
        scheduler.stop()
        with anyio.move_on_after(grace):
            async for _ in signals:
                break
    abandoned.append(True)
    scope.cancel()


async def _close(channel: ChannelPort) -> None:
    try:
        await channel.aclose()
    except Exception as exc:  # closing must not hide the real outcome
        _event(logging.WARNING, f"closing {channel.name} failed: {exc}", "serve.close_failed")


def _exit_code(outcomes: Sequence[JobOutcome]) -> int:
    if any(outcome.failed for outcome in outcomes):
        return 1
    if any(outcome.status == "paused" for outcome in outcomes):
        return 3
    return 0


# -- logging: one masked line per job, alert or lifecycle event ----------------------------


class _LoggingNotifier:
    """Logs every alert, then hands it to the configured notifier (if any)."""

    def __init__(self, inner: NotifierPort | None) -> None:
        self._inner = inner

    async def send(self, alert: Alert) -> None:
        _event(
            _LEVELS.get(alert.level, logging.WARNING),
            f"alert {alert.level} {alert.topic}: {alert.message}",
            "alert",
            {
                "severity": str(alert.level),
                "topic": alert.topic,
                "channel": alert.channel,
                "key": alert.key,
            },
        )
        if self._inner is not None:
            try:
                await self._inner.send(alert)
            except Exception as exc:  # a broken notifier must not stop intake
                _event(
                    logging.ERROR,
                    f"notifier failed for {alert.topic}: {type(exc).__name__}: {exc}",
                    "alert.failed",
                )


def _log_outcome(outcome: JobOutcome) -> None:
    level = logging.INFO
    if outcome.failed:
        level = logging.WARNING
    elif outcome.status == "paused":
        level = logging.ERROR
    _event(level, outcome.line(), "job", outcome.to_dict())


def _event(level: int, message: str, event: str, fields: Mapping[str, Any] | None = None) -> None:
    _log.log(level, message, extra={"ordercore_event": event, "ordercore_fields": fields or {}})


class _Formatter(logging.Formatter):
    """Text or JSON lines; every line masked (phones, e-mails) and the storage URL redacted."""

    def __init__(self, json_lines: bool, url: str) -> None:
        super().__init__()
        self._json = json_lines
        self._url = url

    def _clean(self, text: str) -> str:
        return redact(mask_text(text), self._url)

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        message = self._clean(record.getMessage())
        if record.exc_info:
            message += " | " + self._clean(self.formatException(record.exc_info)).replace(
                "\n", " | "
            )
        if not self._json:
            return f"{moment} {record.levelname} {message}"
        data: dict[str, Any] = {
            "ts": moment,
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "ordercore_event", "log"),
            "message": message,
        }
        for key, value in getattr(record, "ordercore_fields", {}).items():
            data.setdefault(key, self._clean(value) if isinstance(value, str) else value)
        return json.dumps(data, ensure_ascii=False, default=str)


@contextmanager
def _logging(json_lines: bool, url: str) -> Iterator[None]:
    """Send the ``ordercore`` loggers' records to stdout, one line each, for the command."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_Formatter(json_lines, url))
    root = logging.getLogger("ordercore")
    previous = (root.level, root.propagate)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    try:
        yield
    finally:
        handler.flush()
        root.removeHandler(handler)
        root.setLevel(previous[0])
        root.propagate = previous[1]
