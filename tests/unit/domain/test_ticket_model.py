"""Ticket workflow, SLA and SOP lookup, policy validation, assignment policies, distribution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from ordercore.domain.severity import Severity
from ordercore.domain.ticket_assignment import LeastLoaded, QueueOnly, RoundRobin
from ordercore.domain.tickets import (
    BUILTIN_SOPS,
    TRANSITIONS,
    AgentLoad,
    FollowUpState,
    IllegalTicketChange,
    SlaRule,
    Sop,
    Team,
    Ticket,
    TicketAction,
    TicketPolicy,
    TicketStatus,
    distribution,
)

T0 = datetime(2026, 11, 11, 8, 0, tzinfo=UTC)
POLICY = TicketPolicy()


def ticket(
    ticket_id: str = "t1",
    *,
    ticket_type: str = "vague_address",
    channel: str = "taobao",
    reasons: tuple[str, ...] = ("fuzzy address",),
    minutes: int = 0,
) -> Ticket:
    opened = T0 + timedelta(minutes=minutes)
    return Ticket(
        id=ticket_id,
        ticket_type=ticket_type,
        severity=Severity.WARNING,
        channel=channel,
        order_id="o1",
        reasons=reasons,
        team="ops",
        sop=POLICY.sop_for(ticket_type),
        opened_at=opened,
        deadline=opened + timedelta(hours=24),
        updated_at=opened,
    )


def test_every_status_has_a_transition_row() -> None:
    """The transition table covers every status, and closing needs a resolution first."""
    assert set(TRANSITIONS) == set(TicketStatus)
    assert TicketStatus.CLOSED not in TRANSITIONS[TicketStatus.OPEN]
    assert TicketStatus.CLOSED in TRANSITIONS[TicketStatus.RESOLVED]


def test_workflow_records_who_when_from_and_to() -> None:
    """Each status change adds an event naming actor, time and both statuses."""
    worked = ticket().move(TicketStatus.IN_PROGRESS, T0, "li", "calling")
    resolved = worked.resolve("address_corrected", T0 + timedelta(hours=1), "li", "fixed")
    closed = resolved.move(TicketStatus.CLOSED, T0 + timedelta(hours=2), "wang")
    assert [(e.by, e.from_status, e.to_status) for e in closed.events] == [
        ("li", TicketStatus.OPEN, TicketStatus.IN_PROGRESS),
        ("li", TicketStatus.IN_PROGRESS, TicketStatus.RESOLVED),
        ("wang", TicketStatus.RESOLVED, TicketStatus.CLOSED),
    ]
    assert (closed.outcome, closed.resolved_at, closed.closed_at) == (
        "address_corrected",
        T0 + timedelta(hours=1),
        T0 + timedelta(hours=2),
    )
    assert closed.time_to_resolve() == timedelta(hours=1)


def test_illegal_change_names_the_allowed_ones() -> None:
    """Closing an open ticket is refused, listing what the open status allows."""
    with pytest.raises(IllegalTicketChange) as caught:
        ticket().move(TicketStatus.CLOSED, T0, "li")
    assert caught.value.allowed == ("in_progress", "resolved", "waiting_customer")


def test_reopen_clears_the_outcome_and_takes_the_key_again() -> None:
    """A reopened ticket is active again, its key back, its outcome cleared."""
    resolved = ticket().resolve("no_action", T0, "li")
    assert resolved.open_key is None
    reopened = resolved.move(TicketStatus.REOPENED, T0, "wang", "customer called again")
    assert (reopened.active, reopened.outcome, reopened.open_key) == (
        True,
        None,
        "o1:vague_address",
    )


def test_a_second_finding_merges_reasons_and_keeps_the_stricter_terms() -> None:
    """New reasons are appended once, severity only rises, the deadline only tightens."""
    first = ticket()
    merged = first.add_finding(
        ["fuzzy address", "no house number"],
        ["r2"],
        Severity.HIGH,
        first.deadline - timedelta(hours=20),
        T0,
        "rules",
    )
    assert merged.reasons == ("fuzzy address", "no house number")
    assert merged.severity is Severity.HIGH
    assert merged.deadline == first.deadline - timedelta(hours=20)
    again = merged.add_finding([], [], Severity.INFO, first.deadline, T0, "rules")
    assert (again.severity, again.deadline) == (Severity.HIGH, merged.deadline)
    assert again.events[-1].action is TicketAction.FINDING_ADDED


def test_hand_made_change_stops_the_follow_up() -> None:
    """Starting work on a ticket waiting for an SMS reply cancels the automated follow-up."""
    waiting = ticket().start_follow_up("contact_update", T0, T0 + timedelta(hours=2), "system")
    assert waiting.status is TicketStatus.WAITING_CUSTOMER
    started = waiting.move(TicketStatus.IN_PROGRESS, T0, "li")
    assert started.follow_up is not None
    assert started.follow_up.state is FollowUpState.CANCELLED


def test_a_reply_needs_a_pending_follow_up() -> None:
    """Recording a reply on a ticket with no follow-up is an illegal change."""
    with pytest.raises(IllegalTicketChange):
        ticket().customer_replied(T0, "customer", "hi")


@pytest.mark.parametrize(
    ("ticket_type", "severity", "within"),
    [
        ("vague_address", Severity.INFO, timedelta(hours=72)),
        ("vague_address", Severity.CRITICAL, timedelta(hours=1)),
        ("fraud", Severity.WARNING, timedelta(hours=2)),
        ("fraud", Severity.CRITICAL, timedelta(minutes=30)),
        ("payment", Severity.HIGH, timedelta(hours=4)),
    ],
)
def test_most_specific_sla_rule_wins(
    ticket_type: str, severity: Severity, within: timedelta
) -> None:
    """Type and severity beat type alone, which beats severity alone, then the catch-all."""
    assert POLICY.sla_for(ticket_type, severity) == within


def test_sop_lookup_prefers_the_policy_then_builtin_then_default() -> None:
    """A configured SOP overrides the built-in one; unknown types get the default SOP."""
    own = Sop(title="自定义", steps=("1. 打电话",), summary="Call.")
    policy = TicketPolicy(sops={"stock": own})
    assert policy.sop_for("stock") == own
    assert policy.sop_for("fraud") == BUILTIN_SOPS["fraud"]
    assert policy.sop_for("something_new") == BUILTIN_SOPS["default"]
    assert all(sop.steps and sop.summary for sop in BUILTIN_SOPS.values())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"routes": {"*": "nobody"}}, "unknown team 'nobody'"),
        ({"routes": {"fraud": "ops"}}, "needs a '\\*' route"),
        ({"follow_up_team": "ghosts"}, "follow_up_team"),
        ({"sla": (SlaRule(ticket_type="fraud", within=timedelta(hours=1)),)}, "catch-all"),
        (
            {"teams": (Team(name="ops", supervisor="a"), Team(name="ops", supervisor="b"))},
            "unique",
        ),
    ],
)
def test_policy_rejects_dangling_references(changes: dict[str, object], message: str) -> None:
    """A policy naming unknown teams or lacking a catch-all is refused, naming the field."""
    with pytest.raises(ValidationError, match=message):
        TicketPolicy.model_validate(changes)


def test_policy_loads_from_a_toml_table(tmp_path: Path) -> None:
    """The [tickets] table of a TOML file configures teams, routes and the wait."""
    path = tmp_path / "ordercore.toml"
    path.write_text(
        """
[tickets]
follow_up_wait = "PT3H"
routes = { "*" = "ops", fraud = "risk", invalid_contact = "ops" }

[[tickets.teams]]
name = "ops"
supervisor = "wang"
agents = ["li", "zhao"]
assignment = "round_robin"

[[tickets.teams]]
name = "risk"
supervisor = "chen"

[[tickets.teams]]
name = "outbound_call"
supervisor = "sun"
""",
        encoding="utf-8",
    )
    policy = TicketPolicy.from_toml(path)
    assert policy.follow_up_wait == timedelta(hours=3)
    assert policy.team_for("fraud").supervisor == "chen"
    assert policy.team_for("vague_address").agents == ("li", "zhao")


TEAM = Team(name="ops", supervisor="wang", agents=("li", "zhao", "qian"))


def test_least_loaded_picks_fewest_active_then_longest_idle() -> None:
    """Fewest active tickets wins; a tie goes to whoever was assigned longest ago."""
    loads = {
        "li": AgentLoad(active=2, last_assigned_at=T0),
        "zhao": AgentLoad(active=1, last_assigned_at=T0 + timedelta(minutes=5)),
        "qian": AgentLoad(active=1, last_assigned_at=T0),
    }
    assert LeastLoaded().choose(TEAM, ticket(), loads) == "qian"
    assert LeastLoaded().choose(TEAM, ticket(), loads, frozenset({"qian"})) == "zhao"


def test_round_robin_takes_turns_from_the_last_assignments() -> None:
    """Never-assigned agents go first in configured order, then the longest waiting."""
    assert RoundRobin().choose(TEAM, ticket(), {}) == "li"
    loads = {
        "li": AgentLoad(active=0, last_assigned_at=T0 + timedelta(minutes=2)),
        "zhao": AgentLoad(active=9, last_assigned_at=T0 + timedelta(minutes=1)),
        "qian": AgentLoad(active=0, last_assigned_at=T0 + timedelta(minutes=3)),
    }
    assert RoundRobin().choose(TEAM, ticket(), loads) == "zhao"


def test_queue_policy_leaves_the_ticket_unassigned() -> None:
    """Per-type queues: nobody is chosen, the ticket waits in its team's queue."""
    assert QueueOnly().choose(TEAM, ticket(), {}) is None


def test_distribution_counts_reasons_types_outcomes_per_channel() -> None:
    """Counts, top reasons (by count, then name) and mean time to resolve per channel."""
    tickets = [
        ticket("a", reasons=("fuzzy", "short")).resolve(
            "address_corrected", T0 + timedelta(hours=1), "li"
        ),
        ticket("b", reasons=("fuzzy",), minutes=10).resolve(
            "no_action", T0 + timedelta(hours=3, minutes=10), "li"
        ),
        ticket("c", reasons=("bad phone",), ticket_type="invalid_contact", channel="jd"),
        ticket("old", minutes=-60 * 24 * 2),
    ]
    result = distribution(tickets, T0, T0 + timedelta(days=1), top=2)
    overall = result.overall
    assert overall.tickets == 3
    assert overall.by_type == {"invalid_contact": 1, "vague_address": 2}
    assert [(r.reason, r.count) for r in overall.top_reasons] == [("fuzzy", 2), ("bad phone", 1)]
    assert overall.by_outcome == {"address_corrected": 1, "no_action": 1}
    assert overall.mean_time_to_resolve == timedelta(hours=2)
    assert sorted(result.channels) == ["jd", "taobao"]
    assert result.channels["jd"].resolved == 0
    assert result.channels["jd"].mean_time_to_resolve is None
