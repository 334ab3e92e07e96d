"""The ticket service on the memory storage: opening, assignment, workflow, timers, analysis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from ordercore import OrderCore, SyncOrderCore
from ordercore.config import Settings
from ordercore.domain.severity import Severity
from ordercore.domain.tickets import TaskKind, TaskState, Team, TicketPolicy, TicketStatus
from ordercore.errors import InvalidInput, TicketNotFound, TicketStateConflict
from ordercore.ports.clock import ManualClock
from ordercore.ports.notifiers import Alert, RecordingNotifier
from ordercore.testing import RecordingMessenger

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 11, 11, 8, 0, tzinfo=UTC)


def policy(assignment: str = "least_loaded", **changes: object) -> TicketPolicy:
    """Two ops agents (escalating to seniors), an outbound team, a risk queue."""
    teams = (
        Team(
            name="ops",
            supervisor="wang",
            agents=("li", "zhao"),
            assignment=assignment,
            escalate_to="senior",
        ),
        Team(name="senior", supervisor="boss", agents=("chen",)),
        Team(name="outbound_call", supervisor="sun", agents=("qian",)),
        Team(name="risk", supervisor="zhou", assignment="queue"),
    )
    return TicketPolicy.model_validate({"teams": teams, **changes})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def messenger() -> RecordingMessenger:
    return RecordingMessenger()


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
async def core(
    clock: ManualClock, messenger: RecordingMessenger, notifier: RecordingNotifier
) -> AsyncIterator[OrderCore]:
    settings = Settings(tickets=policy())
    async with OrderCore.open(
        "memory://", settings=settings, clock=clock, messenger=messenger, notifier=notifier
    ) as opened:
        yield opened


async def open_address(core: OrderCore, order_id: str = "o1", **kwargs: object) -> str:
    defaults: dict[str, object] = {
        "order_id": order_id,
        "channel": "taobao",
        "reasons": ["address has fuzzy words: 附近"],
    }
    ticket = await core.tickets.open("vague_address", Severity.WARNING, **{**defaults, **kwargs})  # type: ignore[arg-type]
    return ticket.id


async def test_open_fills_sop_team_assignee_and_deadline(core: OrderCore) -> None:
    """A new ticket carries its type's SOP, the routed team, an agent and its SLA deadline."""
    ticket = await core.tickets.get(await open_address(core, rule_ids=["addr.fuzzy"]))
    assert ticket.sop.title == "地址模糊核实"
    assert (ticket.team, ticket.assignee) == ("ops", "li")
    assert ticket.deadline == T0 + timedelta(hours=24)
    assert ticket.rule_ids == ("addr.fuzzy",)
    assert [task.kind for task in await core.tickets.tasks(ticket.id)] == [TaskKind.ESCALATE]


async def test_second_finding_adds_to_the_open_ticket(core: OrderCore) -> None:
    """The same order and type again adds reasons; an identical finding writes nothing."""
    first = await open_address(core)
    again = await core.tickets.open(
        "vague_address", Severity.HIGH, order_id="o1", channel="taobao", reasons=["no number"]
    )
    same = await core.tickets.open(
        "vague_address", Severity.HIGH, order_id="o1", channel="taobao", reasons=["no number"]
    )
    assert again.id == first == same.id
    assert again.reasons == ("address has fuzzy words: 附近", "no number")
    assert (again.severity, again.deadline) == (Severity.HIGH, T0 + timedelta(hours=4))
    assert same.version == again.version
    assert len(await core.tickets.list()) == 1


async def test_dedup_key_overrides_order_and_type(core: OrderCore) -> None:
    """Findings sharing a dedup key land on one ticket even across orders."""
    first = await open_address(core, "o1", dedup_key="buyer-42:fraud-ring")
    second = await open_address(core, "o2", dedup_key="buyer-42:fraud-ring")
    assert first == second


async def test_least_loaded_spreads_tickets(core: OrderCore) -> None:
    """Three tickets to two agents: li, zhao, then li again (fewest active, longest idle)."""
    ids = [await open_address(core, f"o{n}") for n in range(3)]
    assignees = [(await core.tickets.get(i)).assignee for i in ids]
    assert assignees == ["li", "zhao", "li"]


async def test_round_robin_survives_a_resolved_ticket(clock: ManualClock) -> None:
    """Round robin follows the last assignment time, not the current load."""
    async with OrderCore.open(
        "memory://", settings=Settings(tickets=policy("round_robin")), clock=clock
    ) as core:
        first = await open_address(core, "o1")
        await core.tickets.resolve(first, "no_action", by="li")
        clock.advance(timedelta(minutes=1))
        second = await open_address(core, "o2")
        clock.advance(timedelta(minutes=1))
        third = await open_address(core, "o3")
        assignees = [(await core.tickets.get(i)).assignee for i in (first, second, third)]
    assert assignees == ["li", "zhao", "li"]


async def test_queue_policy_leaves_fraud_in_the_risk_queue(core: OrderCore) -> None:
    """A team with the queue policy gets the ticket, nobody in it does."""
    ticket = await core.tickets.open(
        "fraud", Severity.HIGH, order_id="o1", channel="jd", reasons=["blacklisted device"]
    )
    assert (ticket.team, ticket.assignee) == ("risk", None)
    assert await core.tickets.list(team="risk", assignee=None) == [ticket]


async def test_bad_open_input_names_the_fields(core: OrderCore) -> None:
    """An invalid type, empty channel and a bare string as reasons are each named."""
    with pytest.raises(InvalidInput) as caught:
        await core.tickets.open(
            "Vague Address", Severity.WARNING, order_id="o1", channel="", reasons="oops"
        )
    assert [error.field for error in caught.value.errors] == ["ticket_type", "channel", "reasons"]


async def test_resolve_needs_a_known_outcome(core: OrderCore) -> None:
    """An outcome code outside the policy's list is refused, listing the allowed codes."""
    ticket_id = await open_address(core)
    with pytest.raises(InvalidInput, match="outcome: must be one of address_corrected"):
        await core.tickets.resolve(ticket_id, "fixed-it", by="li")


async def test_illegal_change_is_a_typed_error(core: OrderCore) -> None:
    """Closing an unresolved ticket raises TicketStateConflict naming ticket and options."""
    ticket_id = await open_address(core)
    with pytest.raises(
        TicketStateConflict,
        match=rf"ticket '{ticket_id}' is open: cannot move to closed; allowed.*in_progress",
    ):
        await core.tickets.close(ticket_id, by="li")
    with pytest.raises(TicketNotFound, match="'nope'"):
        await core.tickets.start("nope", by="li")


async def test_full_workflow_with_history(core: OrderCore, clock: ManualClock) -> None:
    """Start, wait, comment, resolve, close, reopen: every step in the history in order."""
    ticket_id = await open_address(core)
    await core.tickets.start(ticket_id, by="li")
    await core.tickets.wait_for_customer(ticket_id, by="li", note="asked for the street")
    await core.tickets.comment(ticket_id, "customer says 3 号楼", by="li")
    clock.advance(timedelta(hours=1))
    await core.tickets.resolve(ticket_id, "address_corrected", by="li")
    await core.tickets.close(ticket_id, by="wang")
    reopened = await core.tickets.reopen(ticket_id, by="wang", reason="parcel returned")
    assert [event.to_status for event in reopened.events][-6:] == [
        TicketStatus.IN_PROGRESS,
        TicketStatus.WAITING_CUSTOMER,
        TicketStatus.WAITING_CUSTOMER,
        TicketStatus.RESOLVED,
        TicketStatus.CLOSED,
        TicketStatus.REOPENED,
    ]
    assert reopened.deadline == clock.now() + timedelta(hours=24)


async def test_resolving_cancels_the_escalation(core: OrderCore, clock: ManualClock) -> None:
    """A ticket resolved before its deadline never escalates."""
    ticket_id = await open_address(core)
    await core.tickets.resolve(ticket_id, "address_corrected", by="li")
    clock.advance(timedelta(days=2))
    report = await core.tickets.run_due()
    assert report.escalated == 0
    assert [t.state for t in await core.tickets.tasks(ticket_id)] == [TaskState.CANCELLED]


async def test_escalation_goes_to_the_escalation_team(
    core: OrderCore, clock: ManualClock, notifier: RecordingNotifier
) -> None:
    """Overdue: reassigned to the senior team, supervisors of both teams named in one alert."""
    ticket_id = await open_address(core)
    clock.advance(timedelta(hours=24))
    assert (await core.tickets.run_due()).escalated == 1
    ticket = await core.tickets.get(ticket_id)
    assert (ticket.team, ticket.assignee, ticket.escalation_level) == ("senior", "chen", 1)
    (alert,) = notifier.alerts
    assert alert.message.startswith("to wang, boss: ticket")
    assert await core.tickets.list(overdue=True) == [ticket]


async def test_reopened_ticket_escalates_again_on_its_new_deadline(
    core: OrderCore, clock: ManualClock
) -> None:
    """Escalation is once per deadline: a reopened ticket can escalate once more."""
    ticket_id = await open_address(core)
    clock.advance(timedelta(hours=25))
    await core.tickets.run_due()
    await core.tickets.resolve(ticket_id, "no_action", by="chen")
    await core.tickets.reopen(ticket_id, by="wang", reason="again")
    clock.advance(timedelta(hours=24))
    assert (await core.tickets.run_due()).escalated == 1
    assert (await core.tickets.get(ticket_id)).escalation_level == 2


async def test_failed_sms_is_retried_with_backoff(
    core: OrderCore, clock: ManualClock, messenger: RecordingMessenger
) -> None:
    """The gateway fails twice: retried after 30 s and 60 s, then sent once."""
    messenger.fail_next = 2
    await core.tickets.open(
        "invalid_contact", Severity.WARNING, order_id="o1", channel="taobao", reasons=["dead line"]
    )
    assert (await core.tickets.run_due()).retried == 1
    clock.advance(timedelta(seconds=30))
    assert (await core.tickets.run_due()).retried == 1
    clock.advance(timedelta(seconds=59))
    assert (await core.tickets.run_due()).sms_sent == 0
    clock.advance(timedelta(seconds=1))
    assert (await core.tickets.run_due()).sms_sent == 1
    assert len(messenger.sent) == 1


async def test_a_task_fails_for_good_after_its_attempts(clock: ManualClock) -> None:
    """With max attempts 2 an SMS that keeps failing ends failed, with the error kept."""
    messenger = RecordingMessenger(fail_next=10)
    settings = Settings(tickets=policy(task_max_attempts=2))
    async with OrderCore.open(
        "memory://", settings=settings, clock=clock, messenger=messenger
    ) as core:
        ticket = await core.tickets.open(
            "invalid_contact", Severity.WARNING, order_id="o1", channel="tb", reasons=["x"]
        )
        await core.tickets.run_due()
        clock.advance(timedelta(minutes=1))
        assert (await core.tickets.run_due()).failed == 1
        (sms,) = [t for t in await core.tickets.tasks(ticket.id) if t.kind is TaskKind.SEND_SMS]
    assert (sms.state, sms.attempts) == (TaskState.FAILED, 2)
    assert sms.last_error == "ConnectionError: SMS gateway unavailable (simulated)"


async def test_alert_is_redelivered_when_the_notifier_fails(clock: ManualClock) -> None:
    """A notifier error keeps the alert as a pending task; the next run delivers it."""

    class Flaky(RecordingNotifier):
        failures = 1

        async def send(self, alert: Alert) -> None:
            if self.failures:
                self.failures -= 1
                raise TimeoutError("webhook slow")
            await super().send(alert)

    notifier = Flaky()
    async with OrderCore.open(
        "memory://", settings=Settings(tickets=policy()), clock=clock, notifier=notifier
    ) as core:
        await open_address(core)
        clock.advance(timedelta(hours=24))
        first = await core.tickets.run_due()
        clock.advance(timedelta(minutes=1))
        second = await core.tickets.run_due()
    assert (first.escalated, first.retried, second.alerts_sent) == (1, 1, 1)
    assert len(notifier.alerts) == 1


async def test_no_automatic_follow_up_without_a_messenger(clock: ManualClock) -> None:
    """Without a messenger the ticket stays open and follow_up() says what is missing."""
    async with OrderCore.open("memory://", clock=clock) as core:
        ticket = await core.tickets.open(
            "invalid_contact", Severity.WARNING, order_id="o1", channel="tb", reasons=["x"]
        )
        assert ticket.status is TicketStatus.OPEN
        with pytest.raises(InvalidInput, match="messenger"):
            await core.tickets.follow_up(ticket.id, by="li")


async def test_manual_follow_up_then_start_cancels_its_timers(
    core: OrderCore, messenger: RecordingMessenger
) -> None:
    """An agent starting work on a ticket in follow-up stops the SMS and the expiry timer."""
    ticket_id = await open_address(core)
    await core.tickets.follow_up(ticket_id, by="li", template="address_confirm")
    await core.tickets.start(ticket_id, by="li")
    states = {t.kind: t.state for t in await core.tickets.tasks(ticket_id)}
    assert states[TaskKind.SEND_SMS] is TaskState.CANCELLED
    assert states[TaskKind.FOLLOW_UP_EXPIRED] is TaskState.CANCELLED
    await core.tickets.run_due()
    assert messenger.sent == []


async def test_list_filters_and_validates(core: OrderCore) -> None:
    """Status and type filters narrow the list; an unknown status is a typed error."""
    first = await open_address(core, "o1")
    await open_address(core, "o2")
    await core.tickets.start(first, by="li")
    assert [t.id for t in await core.tickets.list(status="in_progress")] == [first]
    assert len(await core.tickets.list(ticket_type="vague_address", limit=1)) == 1
    with pytest.raises(InvalidInput, match="status"):
        await core.tickets.list(status="pending")


async def test_distribution_reports_reasons_and_outcomes(
    core: OrderCore, clock: ManualClock
) -> None:
    """Reasons and outcomes of the period per channel, and refusal of an empty period."""
    first = await open_address(core, "o1")
    await open_address(core, "o2", channel="jd")
    clock.advance(timedelta(hours=3))
    await core.tickets.resolve(first, "address_corrected", by="li")
    report = await core.tickets.distribution(T0, T0 + timedelta(days=1), "taobao")
    assert report.overall.tickets == 1
    assert report.overall.by_outcome == {"address_corrected": 1}
    assert report.overall.mean_time_to_resolve == timedelta(hours=3)
    with pytest.raises(InvalidInput, match="period_end"):
        await core.tickets.distribution(T0, T0)


def test_sync_facade_opens_and_resolves_tickets() -> None:
    """SyncOrderCore.tickets works without await."""
    with SyncOrderCore.open("memory://") as core:
        ticket = core.tickets.open(
            "stock", Severity.HIGH, order_id="o1", channel="pos", reasons=["short 2 units"]
        )
        core.tickets.resolve(ticket.id, "stock_transferred", by="li")
        assert core.tickets.get(ticket.id).status is TicketStatus.RESOLVED
