"""Ticket timers with a controllable clock, within one process and across a restart.

The must-show: an unreachable phone opens a ticket, an SMS asks for a new contact, two
hours pass without a reply and the ticket moves to the outbound-call team; the same when
the process is closed in between and a new one opens the same database. Escalation of
an overdue ticket survives a restart the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ordercore import OrderCore
from ordercore.config import Settings
from ordercore.domain.severity import Severity
from ordercore.domain.tickets import (
    FollowUpState,
    TaskState,
    Team,
    TicketAction,
    TicketPolicy,
    TicketStatus,
)
from ordercore.ports.clock import ManualClock
from ordercore.ports.notifiers import RecordingNotifier
from ordercore.testing import RecordingMessenger
from support.postgres import fresh_postgres_database

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 11, 11, 9, 0, tzinfo=UTC)
SETTINGS = Settings(
    tickets=TicketPolicy(
        teams=(
            Team(name="ops", supervisor="ops-lead", agents=("li", "zhao")),
            Team(name="outbound_call", supervisor="outbound-lead", agents=("qian", "sun")),
            Team(name="risk", supervisor="risk-lead"),
        )
    )
)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """Which storage the test runs on."""
    return str(request.param)


def _database(backend: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'tickets.db'}"
    elif backend == "postgresql":
        with fresh_postgres_database() as fresh:
            yield fresh
    else:
        yield "memory://"


@pytest.fixture
def url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh database of ``backend``."""
    yield from _database(backend, tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def durable_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database that outlives the process using it (SQLite file, PostgreSQL)."""
    yield from _database(str(request.param), tmp_path)


async def open_unreachable_phone(core: OrderCore) -> str:
    """The rules engine's finding for order o-1: its phone cannot be reached."""
    ticket = await core.tickets.open(
        "invalid_contact",
        Severity.WARNING,
        order_id="o-1",
        channel="taobao",
        reasons=["phone 13800138000 unreachable (3 calls)"],
        rule_ids=["contact.unreachable"],
    )
    return ticket.id


async def test_no_reply_in_two_hours_moves_the_ticket_to_outbound_calls(url: str) -> None:
    """SMS sent at once; 1:59 later nothing moves; at 2:00 the outbound-call team has it."""
    clock, messenger = ManualClock(T0), RecordingMessenger()
    async with OrderCore.open(url, settings=SETTINGS, clock=clock, messenger=messenger) as core:
        ticket_id = await open_unreachable_phone(core)
        report = await core.tickets.run_due()
        assert report.sms_sent == 1
        assert [(m.order_id, m.template) for m in messenger.sent] == [("o-1", "contact_update")]
        waiting = await core.tickets.get(ticket_id)
        assert waiting.status is TicketStatus.WAITING_CUSTOMER
        assert waiting.follow_up is not None
        assert waiting.follow_up.sms_sent_at == T0

        clock.advance(timedelta(hours=1, minutes=59))
        assert (await core.tickets.run_due()).moved == 0
        clock.advance(timedelta(minutes=1))
        assert (await core.tickets.run_due()).moved == 1

        moved = await core.tickets.get(ticket_id)
    assert (moved.status, moved.team, moved.assignee) == (
        TicketStatus.OPEN,
        "outbound_call",
        "qian",
    )
    assert moved.follow_up is not None
    assert moved.follow_up.state is FollowUpState.EXPIRED
    assert moved.events[-1].action is TicketAction.FOLLOW_UP_EXPIRED
    assert len(messenger.sent) == 1


async def test_follow_up_continues_after_a_restart(durable_url: str) -> None:
    """Close the core after the SMS; a new core on the same database moves the ticket at 2 h."""
    clock = ManualClock(T0)
    async with OrderCore.open(
        durable_url, settings=SETTINGS, clock=clock, messenger=RecordingMessenger()
    ) as first:
        ticket_id = await open_unreachable_phone(first)
        assert (await first.tickets.run_due()).sms_sent == 1

    clock.advance(timedelta(hours=2))
    again = RecordingMessenger()
    async with OrderCore.open(
        durable_url, settings=SETTINGS, clock=clock, messenger=again
    ) as second:
        report = await second.tickets.run_due()
        moved = await second.tickets.get(ticket_id)
        follow_up_tasks = await second.tickets.tasks(ticket_id)
    assert report.moved == 1
    assert (moved.team, moved.assignee, moved.status) == (
        "outbound_call",
        "qian",
        TicketStatus.OPEN,
    )
    assert again.sent == []  # the SMS went out once, before the restart
    assert all(
        task.state is not TaskState.PENDING for task in follow_up_tasks if task.kind != "escalate"
    )


async def test_sms_not_yet_sent_goes_out_after_a_restart(durable_url: str) -> None:
    """A ticket opened just before the process stopped still gets its SMS from the next one."""
    clock = ManualClock(T0)
    async with OrderCore.open(
        durable_url, settings=SETTINGS, clock=clock, messenger=RecordingMessenger()
    ) as first:
        await open_unreachable_phone(first)
    messenger = RecordingMessenger()
    async with OrderCore.open(
        durable_url, settings=SETTINGS, clock=clock, messenger=messenger
    ) as second:
        assert (await second.tickets.run_due()).sms_sent == 1
    assert [m.order_id for m in messenger.sent] == ["o-1"]


async def test_a_reply_stops_the_timer(url: str) -> None:
    """The customer answers within the wait: nothing moves at 2 h, the ticket is in progress."""
    clock, messenger = ManualClock(T0), RecordingMessenger()
    async with OrderCore.open(url, settings=SETTINGS, clock=clock, messenger=messenger) as core:
        ticket_id = await open_unreachable_phone(core)
        await core.tickets.run_due()
        clock.advance(timedelta(minutes=30))
        await core.tickets.record_reply(ticket_id, note="new number 13900139000")
        clock.advance(timedelta(hours=2))
        report = await core.tickets.run_due()
        ticket = await core.tickets.get(ticket_id)
    assert report.moved == 0
    assert (ticket.status, ticket.team) == (TicketStatus.IN_PROGRESS, "ops")
    assert ticket.follow_up is not None
    assert ticket.follow_up.state is FollowUpState.REPLIED
    assert ticket.events[-1].note == "new number 139****9000"


async def test_overdue_ticket_escalates_once_after_a_restart(durable_url: str) -> None:
    """A critical ticket past its 1 h SLA is reassigned and its supervisor alerted, once."""
    clock = ManualClock(T0)
    async with OrderCore.open(durable_url, settings=SETTINGS, clock=clock) as first:
        ticket = await first.tickets.open(
            "vague_address", Severity.CRITICAL, order_id="o-2", channel="jd", reasons=["附近"]
        )
    assert ticket.assignee == "li"
    clock.advance(timedelta(hours=1))
    notifier = RecordingNotifier()
    async with OrderCore.open(
        durable_url, settings=SETTINGS, clock=clock, notifier=notifier
    ) as second:
        first_run = await second.tickets.run_due()
        clock.advance(timedelta(hours=1))
        second_run = await second.tickets.run_due()
        escalated = await second.tickets.get(ticket.id)
    assert (first_run.escalated, first_run.alerts_sent, second_run.escalated) == (1, 1, 0)
    assert (escalated.assignee, escalated.escalation_level) == ("zhao", 1)
    (alert,) = notifier.alerts
    assert (alert.topic, alert.level, alert.channel) == (
        "tickets.escalated",
        Severity.CRITICAL,
        "jd",
    )
    assert "ops-lead" in alert.message
    assert ticket.id in alert.message


async def test_a_runner_that_died_mid_send_is_taken_over(durable_url: str) -> None:
    """A process that claimed the SMS and died: after the lease the next process sends it."""
    clock = ManualClock(T0)
    async with OrderCore.open(
        durable_url, settings=SETTINGS, clock=clock, messenger=RecordingMessenger()
    ) as first:
        await open_unreachable_phone(first)
        async with first.storage.unit_of_work() as uow:
            claimed = await uow.tickets.claim_tasks(
                T0, claim="dead-runner", lease_until=T0 + timedelta(minutes=5), limit=10
            )
            await uow.commit()
        assert [task.kind for task in claimed] == ["send_sms"]
    messenger = RecordingMessenger()
    async with OrderCore.open(
        durable_url, settings=SETTINGS, clock=clock, messenger=messenger
    ) as second:
        assert (await second.tickets.run_due()).sms_sent == 0
        clock.advance(timedelta(minutes=5))
        assert (await second.tickets.run_due()).sms_sent == 1
    assert [m.order_id for m in messenger.sent] == ["o-1"]


async def test_a_late_reply_reaches_the_outbound_team(url: str) -> None:
    """A reply after the ticket moved is kept in its history; it stays with outbound calls."""
    clock = ManualClock(T0)
    async with OrderCore.open(
        url, settings=SETTINGS, clock=clock, messenger=RecordingMessenger()
    ) as core:
        ticket_id = await open_unreachable_phone(core)
        clock.advance(timedelta(hours=2))
        await core.tickets.run_due()
        late = await core.tickets.record_reply(ticket_id, note="call me after 6pm")
    assert (late.team, late.status) == ("outbound_call", TicketStatus.OPEN)
    assert (late.events[-1].action, late.events[-1].note) == (
        TicketAction.CUSTOMER_REPLIED,
        "call me after 6pm",
    )
