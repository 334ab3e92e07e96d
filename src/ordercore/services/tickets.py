"""Exception tickets: open, assign, work, resolve, escalate, follow up. Reached as ``core.tickets``.

Every change is one unit of work: the ticket is saved with an optimistic version check
(a concurrent change makes the service re-read and re-apply, at most a few times), and
the durable tasks the change implies are scheduled or cancelled in the same transaction:

* an active ticket has one ESCALATE task due at its deadline (a new deadline replaces
  it, resolving cancels it), so an overdue ticket escalates once per deadline;
* a follow-up has a SEND_SMS task (due at once) and a FOLLOW_UP_EXPIRED task due when
  the wait is over; a reply, or any hand-made status change, cancels them;
* alerts for supervisors are NOTIFY tasks, written with the change that causes them.

:meth:`TicketService.run_due` claims due tasks (exactly once, see the storage port) and
runs them: effects on tickets commit together with the task's completion; messages
go out after the claim and are retried with backoff when the notifier or SMS gateway
fails. Since tasks live in the storage, a restarted process (or any other process on
the same database) picks them up where the last one stopped.
"""

from __future__ import annotations

import builtins
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict

from ordercore.domain.privacy import mask_text
from ordercore.domain.severity import Severity
from ordercore.domain.ticket_assignment import BUILTIN_POLICIES, AssignmentPolicy
from ordercore.domain.tickets import (
    SYSTEM,
    FollowUpState,
    IllegalTicketChange,
    TaskKind,
    TaskState,
    Team,
    Ticket,
    TicketAction,
    TicketDistribution,
    TicketEvent,
    TicketPolicy,
    TicketQuery,
    TicketStatus,
    TicketTask,
    distribution,
)
from ordercore.errors import (
    ConcurrencyConflict,
    FieldError,
    InvalidInput,
    TicketNotFound,
    TicketStateConflict,
)
from ordercore.ports.clock import Clock
from ordercore.ports.messaging import CustomerMessagePort
from ordercore.ports.notifiers import Alert, NotifierPort, RecordingNotifier
from ordercore.ports.storage import Storage, UnitOfWork

__all__ = ["DueReport", "TicketService"]

_RETRIES = 5
"""Re-reads of a ticket another writer changed first, before ConcurrencyConflict escapes."""
_MAX_ROUNDS = 20
"""Claim rounds of one run_due (tasks written by a round, like alerts, run in the next)."""
_MAX_BACKOFF = timedelta(hours=1)
_TYPE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class DueReport(BaseModel):
    """What one :meth:`TicketService.run_due` did."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    escalated: int = 0
    moved: int = 0
    """Tickets whose follow-up expired and that went to the follow-up team."""
    sms_sent: int = 0
    alerts_sent: int = 0
    skipped: int = 0
    """Timers that found nothing to do (the ticket was resolved or its deadline moved)."""
    retried: int = 0
    failed: int = 0


def _task(
    ticket: Ticket,
    kind: TaskKind,
    key: str,
    due_at: datetime,
    now: datetime,
    payload: Mapping[str, object] | None = None,
) -> TicketTask:
    return TicketTask(
        id=uuid.uuid4().hex,
        key=f"{ticket.id}:{kind.value}:{key}",
        ticket_id=ticket.id,
        kind=kind,
        due_at=due_at,
        created_at=now,
        payload=dict(payload or {}),
    )


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _bad(subject: str, field: str, message: str, value: object) -> InvalidInput:
    return InvalidInput(subject, [FieldError(field, message, value)])


class TicketService:
    """Exception tickets over one storage; see the module docs and docs/tickets.md.

    ``notifier`` gets supervisor alerts (default: a RecordingNotifier, kept in
    ``notifier.alerts``); ``messenger`` sends customer SMS (without one, no automatic
    follow-up starts). ``policies`` adds assignment policies teams can name.
    """

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        policy: TicketPolicy | None = None,
        *,
        notifier: NotifierPort | None = None,
        messenger: CustomerMessagePort | None = None,
        policies: Mapping[str, AssignmentPolicy] | None = None,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self.policy = policy or TicketPolicy()
        self.notifier: NotifierPort = notifier or RecordingNotifier()
        self.messenger = messenger
        self._policies = {**BUILTIN_POLICIES, **(policies or {})}
        for team in self.policy.teams:
            if team.assignment not in self._policies:
                raise _bad(
                    "ticket policy",
                    f"teams[{team.name!r}].assignment",
                    f"unknown assignment policy; known: {', '.join(sorted(self._policies))}",
                    team.assignment,
                )

    # -- opening ------------------------------------------------------------------------------

    async def open(
        self,
        ticket_type: str,
        severity: Severity,
        *,
        order_id: str | None,
        channel: str,
        reasons: Sequence[str],
        rule_ids: Sequence[str] = (),
        dedup_key: str | None = None,
        by: str = SYSTEM,
    ) -> Ticket:
        """Open a ticket, or add the finding to the active ticket of the same order and type.

        The ticket gets the SOP of its type, a team by the policy's routes, an assignee
        by the team's assignment policy and a deadline from the SLA of its type and
        severity. A second finding for an active ticket (same ``dedup_key``, or same
        order and type) adds its reasons and rules, raises the severity and tightens the
        deadline instead of opening a duplicate. Types in ``policy.follow_up_types``
        start the SMS follow-up at once when the order is known and a messenger is set.
        """
        self._check_open(ticket_type, severity, channel, reasons, by)
        severity = Severity(severity)
        # Reasons are masked once here, so no phone or e-mail reaches history, alerts or CLI.
        reasons, rule_ids = tuple(mask_text(reason) for reason in reasons), tuple(rule_ids)
        for attempt in range(_RETRIES):
            try:
                return await self._open_once(
                    ticket_type, severity, order_id, channel, reasons, rule_ids, dedup_key, by
                )
            except ConcurrencyConflict:
                # Another writer changed (or resolved) the active ticket of this key between
                # our read and write: read it again and re-apply the finding.
                if attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _open_once(
        self,
        ticket_type: str,
        severity: Severity,
        order_id: str | None,
        channel: str,
        reasons: tuple[str, ...],
        rule_ids: tuple[str, ...],
        dedup_key: str | None,
        by: str,
    ) -> Ticket:
        now = self._clock.now()
        async with self._storage.unit_of_work() as uow:
            draft = await self._draft(
                uow, ticket_type, severity, order_id, channel, reasons, rule_ids, dedup_key, by, now
            )
            stored, created = await uow.tickets.add(draft)
            if created:
                await self._reconcile(uow, None, stored, now)
                await uow.commit()
                return stored
            deadline = stored.opened_at + self.policy.sla_for(
                ticket_type, max(stored.severity, severity)
            )
            merged = stored.add_finding(reasons, rule_ids, severity, deadline, now, by)
            if (merged.reasons, merged.rule_ids, merged.severity, merged.deadline) == (
                stored.reasons,
                stored.rule_ids,
                stored.severity,
                stored.deadline,
            ):
                return stored
            saved = await uow.tickets.save(merged)
            await self._reconcile(uow, stored, saved, now)
            await uow.commit()
            return saved

    async def _draft(
        self,
        uow: UnitOfWork,
        ticket_type: str,
        severity: Severity,
        order_id: str | None,
        channel: str,
        reasons: tuple[str, ...],
        rule_ids: tuple[str, ...],
        dedup_key: str | None,
        by: str,
        now: datetime,
    ) -> Ticket:
        team = self.policy.team_for(ticket_type)
        ticket = Ticket(
            id=f"T{now:%Y%m%d}-{uuid.uuid4().hex[:16]}",
            ticket_type=ticket_type,
            severity=severity,
            channel=channel,
            order_id=order_id,
            reasons=tuple(dict.fromkeys(reasons)),
            rule_ids=tuple(dict.fromkeys(rule_ids)),
            dedup_key=dedup_key,
            team=team.name,
            sop=self.policy.sop_for(ticket_type),
            opened_at=now,
            deadline=now + self.policy.sla_for(ticket_type, severity),
            updated_at=now,
            events=(
                TicketEvent(
                    at=now,
                    by=by,
                    action=TicketAction.OPENED,
                    to_status=TicketStatus.OPEN,
                    note="; ".join(reasons),
                    team=team.name,
                ),
            ),
        )
        assignee = await self._choose(uow, team, ticket)
        if assignee is not None:
            ticket = ticket.assign(team.name, assignee, now, by, f"by {team.assignment}")
        if (
            ticket_type in self.policy.follow_up_types
            and order_id is not None
            and self.messenger is not None
        ):
            ticket = ticket.start_follow_up(
                self.policy.follow_up_template, now, now + self.policy.follow_up_wait, SYSTEM
            )
        return ticket

    def _check_open(
        self,
        ticket_type: str,
        severity: Severity,
        channel: str,
        reasons: Sequence[str],
        by: str,
    ) -> None:
        errors = []
        if not isinstance(ticket_type, str) or not _TYPE.match(ticket_type):
            errors.append(
                FieldError(
                    "ticket_type", "must be lowercase letters, digits, _ . - (1-64)", ticket_type
                )
            )
        if severity not in set(Severity):
            errors.append(FieldError("severity", f"must be one of {', '.join(Severity)}", severity))
        if not channel:
            errors.append(FieldError("channel", "must not be empty", channel))
        if isinstance(reasons, str):
            errors.append(
                FieldError("reasons", "must be a sequence of strings, not one string", reasons)
            )
        if not by:
            errors.append(FieldError("by", "must name who acts", by))
        if errors:
            raise InvalidInput("ticket", errors)

    # -- workflow ---------------------------------------------------------------------------

    async def get(self, ticket_id: str) -> Ticket:
        """The ticket with this id; TicketNotFound when there is none."""
        async with self._storage.unit_of_work() as uow:
            ticket = await uow.tickets.get(ticket_id)
        if ticket is None:
            raise TicketNotFound(ticket_id)
        return ticket

    async def list(
        self,
        *,
        status: TicketStatus | str | None = None,
        ticket_type: str | None = None,
        assignee: str | None = None,
        team: str | None = None,
        channel: str | None = None,
        order_id: str | None = None,
        overdue: bool = False,
        limit: int | None = 100,
    ) -> builtins.list[Ticket]:
        """Tickets, newest opened first, filtered; ``overdue``: active and past the deadline."""
        statuses: tuple[TicketStatus, ...] = ()
        if status is not None:
            try:
                statuses = (TicketStatus(status),)
            except ValueError:
                raise _bad(
                    "ticket query", "status", f"must be one of {', '.join(TicketStatus)}", status
                ) from None
        if limit is not None and limit < 1:
            raise _bad("ticket query", "limit", "must be >= 1", limit)
        query = TicketQuery(
            statuses=statuses,
            ticket_type=ticket_type,
            assignee=assignee,
            team=team,
            channel=channel,
            order_id=order_id,
            overdue_at=self._clock.now() if overdue else None,
            limit=limit,
        )
        async with self._storage.unit_of_work() as uow:
            return await uow.tickets.find(query)

    async def assign(
        self, ticket_id: str, assignee: str | None, *, team: str | None = None, by: str
    ) -> Ticket:
        """Give the ticket to an agent (None: the team queue), optionally of another team."""
        if team is not None:
            try:
                self.policy.team(team)
            except KeyError:
                known = ", ".join(t.name for t in self.policy.teams)
                raise _bad("assignment", "team", f"unknown team; known: {known}", team) from None
        return await self._change(
            ticket_id,
            "assign",
            lambda t, now: t.assign(team or t.team, assignee, now, by),
            by,
        )

    async def start(self, ticket_id: str, *, by: str, note: str = "") -> Ticket:
        """Work on the ticket (in_progress); stops an automated follow-up."""
        return await self._move(ticket_id, TicketStatus.IN_PROGRESS, by, note)

    async def wait_for_customer(self, ticket_id: str, *, by: str, note: str = "") -> Ticket:
        """Park the ticket until the customer answers (waiting_customer)."""
        return await self._move(ticket_id, TicketStatus.WAITING_CUSTOMER, by, note)

    async def resolve(self, ticket_id: str, outcome: str, *, by: str, note: str = "") -> Ticket:
        """Resolve with an outcome code from ``policy.outcomes``; cancels its timers."""
        if outcome not in self.policy.outcomes:
            raise _bad(
                "resolution",
                "outcome",
                f"must be one of {', '.join(self.policy.outcomes)}",
                outcome,
            )
        masked = mask_text(note)
        return await self._change(
            ticket_id, "resolve", lambda t, now: t.resolve(outcome, now, by, masked), by
        )

    async def close(self, ticket_id: str, *, by: str, note: str = "") -> Ticket:
        """Close a resolved ticket."""
        return await self._move(ticket_id, TicketStatus.CLOSED, by, note)

    async def reopen(self, ticket_id: str, *, by: str, reason: str) -> Ticket:
        """Reopen a resolved or closed ticket; it gets a new deadline from its SLA."""

        def reopen(ticket: Ticket, now: datetime) -> Ticket:
            moved = ticket.move(TicketStatus.REOPENED, now, by, mask_text(reason))
            deadline = now + self.policy.sla_for(ticket.ticket_type, ticket.severity)
            return moved.model_copy(update={"deadline": deadline})

        return await self._change(ticket_id, "reopen", reopen, by)

    async def comment(self, ticket_id: str, note: str, *, by: str) -> Ticket:
        """Add a note to the ticket's history."""
        if not note:
            raise _bad("comment", "note", "must not be empty", note)
        masked = mask_text(note)
        return await self._change(
            ticket_id, "comment", lambda t, now: t.comment(now, by, masked), by
        )

    async def follow_up(self, ticket_id: str, *, by: str, template: str | None = None) -> Ticket:
        """Send the customer an SMS (``template``) and wait ``policy.follow_up_wait`` for a reply.

        Without a reply in time the ticket moves to ``policy.follow_up_team``.
        """
        if self.messenger is None:
            raise _bad("follow-up", "messenger", "no CustomerMessagePort is configured", None)
        chosen = template or self.policy.follow_up_template
        wait = self.policy.follow_up_wait

        def start(ticket: Ticket, now: datetime) -> Ticket:
            if ticket.order_id is None:
                raise IllegalTicketChange(
                    ticket.id, ticket.status, "follow up without an order", ()
                )
            return ticket.start_follow_up(chosen, now, now + wait, by)

        return await self._change(ticket_id, "follow up", start, by)

    async def record_reply(self, ticket_id: str, *, note: str = "", by: str = "customer") -> Ticket:
        """The customer answered the follow-up: its timer stops, the ticket is in progress again."""
        masked = mask_text(note)
        return await self._change(
            ticket_id, "record a reply", lambda t, now: t.customer_replied(now, by, masked), by
        )

    async def tasks(self, ticket_id: str | None = None) -> builtins.list[TicketTask]:
        """The durable tasks (timers, messages) of one ticket or all, by due time."""
        async with self._storage.unit_of_work() as uow:
            return await uow.tickets.tasks(ticket_id)

    async def _move(self, ticket_id: str, target: TicketStatus, by: str, note: str) -> Ticket:
        masked = mask_text(note)
        return await self._change(
            ticket_id, f"move to {target.value}", lambda t, now: t.move(target, now, by, masked), by
        )

    async def _change(
        self,
        ticket_id: str,
        wanted: str,
        change: Callable[[Ticket, datetime], Ticket],
        by: str,
    ) -> Ticket:
        if not by:
            raise _bad("ticket change", "by", "must name who acts", by)
        for attempt in range(_RETRIES):
            now = self._clock.now()
            async with self._storage.unit_of_work() as uow:
                ticket = await uow.tickets.get(ticket_id)
                if ticket is None:
                    raise TicketNotFound(ticket_id)
                try:
                    changed = change(ticket, now)
                except IllegalTicketChange as exc:
                    raise TicketStateConflict(
                        ticket_id, ticket.status.value, wanted, exc.allowed
                    ) from None
                try:
                    saved = await uow.tickets.save(changed)
                except ConcurrencyConflict:
                    if attempt == _RETRIES - 1:
                        raise
                    continue
                await self._reconcile(uow, ticket, saved, now)
                await uow.commit()
                return saved
        raise AssertionError("unreachable")  # pragma: no cover

    # -- tasks implied by a change ------------------------------------------------------------

    async def _reconcile(
        self, uow: UnitOfWork, before: Ticket | None, after: Ticket, now: datetime
    ) -> None:
        """Schedule and cancel the durable tasks that ``before -> after`` implies."""
        repo = uow.tickets
        new: list[TicketTask] = []
        was_active = before is not None and before.active
        if not after.active:
            await repo.cancel_tasks(after.id, [TaskKind.ESCALATE, TaskKind.FOLLOW_UP_EXPIRED], now)
        elif not was_active or (before is not None and before.deadline != after.deadline):
            if before is not None:  # a new ticket has no tasks yet: spare the round trip
                await repo.cancel_tasks(after.id, [TaskKind.ESCALATE], now)
            deadline = after.deadline.isoformat()
            new.append(
                _task(
                    after,
                    TaskKind.ESCALATE,
                    deadline,
                    after.deadline,
                    now,
                    {"deadline": deadline},
                )
            )
        old_follow = before.follow_up if before is not None else None
        follow = after.follow_up
        if (
            follow is not None
            and follow.state is FollowUpState.PENDING
            and (old_follow is None or old_follow.started_at != follow.started_at)
            and after.order_id is not None
        ):
            started = follow.started_at.isoformat()
            new.append(
                _task(
                    after,
                    TaskKind.SEND_SMS,
                    started,
                    now,
                    now,
                    {
                        "order_id": after.order_id,
                        "template": follow.template,
                        "params": {"ticket_id": after.id, "reply_by": follow.due_at.isoformat()},
                    },
                )
            )
            new.append(
                _task(
                    after,
                    TaskKind.FOLLOW_UP_EXPIRED,
                    started,
                    follow.due_at,
                    now,
                    {"started_at": started},
                )
            )
        elif (
            old_follow is not None
            and old_follow.state is FollowUpState.PENDING
            and (follow is None or follow.state is not FollowUpState.PENDING)
        ):
            kinds = [TaskKind.FOLLOW_UP_EXPIRED]
            if follow is not None and follow.state is FollowUpState.CANCELLED:
                kinds.append(TaskKind.SEND_SMS)
            await repo.cancel_tasks(after.id, kinds, now)
        if new:
            await repo.schedule(new)

    async def _choose(
        self,
        uow: UnitOfWork,
        team: Team,
        ticket: Ticket,
        exclude: frozenset[str] = frozenset(),
    ) -> str | None:
        if not team.agents:
            return None
        loads = await uow.tickets.workload(team.agents)
        return self._policies[team.assignment].choose(team, ticket, loads, exclude)

    def _team(self, ticket: Ticket) -> Team:
        try:
            return self.policy.team(ticket.team)
        except KeyError:  # the team left the configuration since
            return self.policy.team_for(ticket.ticket_type)

    # -- timers --------------------------------------------------------------------------------

    async def run_due(self, now: datetime | None = None, *, limit: int = 100) -> DueReport:
        """Run every task due at ``now`` (default: the clock's now): escalations, follow-up
        expiries, SMS and alerts. Safe to call from several processes at once; call it
        periodically (a scheduler job, a cron, a worker loop)."""
        if limit < 1:
            raise _bad("run_due", "limit", "must be >= 1", limit)
        counts: Counter[str] = Counter()
        for _ in range(_MAX_ROUNDS):
            moment = now or self._clock.now()
            claim = uuid.uuid4().hex
            async with self._storage.unit_of_work() as uow:
                claimed = await uow.tickets.claim_tasks(
                    moment, claim=claim, lease_until=moment + self.policy.task_lease, limit=limit
                )
                await uow.commit()
            if not claimed:
                break
            for task in claimed:
                counts[await self._run_task(task, claim, moment)] += 1
        return DueReport(**{k: v for k, v in counts.items() if k in DueReport.model_fields})

    async def _run_task(self, task: TicketTask, claim: str, now: datetime) -> str:
        try:
            if task.kind is TaskKind.NOTIFY:
                await self.notifier.send(Alert.model_validate(task.payload))
                await self._finish(task, claim, now)
                return "alerts_sent"
            if task.kind is TaskKind.SEND_SMS:
                return await self._send_sms(task, claim, now)
            effect = self._escalate if task.kind is TaskKind.ESCALATE else self._expire_follow_up
            return await self._apply(task, claim, now, effect)
        except Exception as exc:  # any failure of a task is retried later, with backoff
            return await self._retry(task, claim, now, exc)

    async def _finish(self, task: TicketTask, claim: str, now: datetime) -> None:
        async with self._storage.unit_of_work() as uow:
            await uow.tickets.finish_task(task.id, claim, TaskState.DONE, now)
            await uow.commit()

    async def _retry(self, task: TicketTask, claim: str, now: datetime, exc: Exception) -> str:
        error = mask_text(f"{type(exc).__name__}: {exc}")[:500]
        final = task.attempts >= self.policy.task_max_attempts
        backoff = min(self.policy.task_retry_base * 2 ** (task.attempts - 1), _MAX_BACKOFF)
        async with self._storage.unit_of_work() as uow:
            await uow.tickets.finish_task(
                task.id,
                claim,
                TaskState.FAILED if final else TaskState.PENDING,
                now,
                retry_at=None if final else now + backoff,
                error=error,
            )
            await uow.commit()
        return "failed" if final else "retried"

    async def _send_sms(self, task: TicketTask, claim: str, now: datetime) -> str:
        if self.messenger is None:
            raise RuntimeError("no CustomerMessagePort is configured")
        payload = task.payload
        params = {str(k): str(v) for k, v in dict(payload.get("params", {})).items()}
        await self.messenger.send_sms(str(payload["order_id"]), str(payload["template"]), params)
        for attempt in range(_RETRIES):
            async with self._storage.unit_of_work() as uow:
                ticket = await uow.tickets.get(task.ticket_id)
                if ticket is not None:
                    try:
                        await uow.tickets.save(ticket.sms_sent(now))
                    except ConcurrencyConflict:
                        if attempt == _RETRIES - 1:
                            raise
                        continue
                await uow.tickets.finish_task(task.id, claim, TaskState.DONE, now)
                await uow.commit()
                return "sms_sent"
        raise AssertionError("unreachable")  # pragma: no cover

    async def _apply(
        self,
        task: TicketTask,
        claim: str,
        now: datetime,
        effect: Callable[
            [UnitOfWork, Ticket, TicketTask, datetime], Awaitable[tuple[Ticket, Alert] | None]
        ],
    ) -> str:
        for attempt in range(_RETRIES):
            async with self._storage.unit_of_work() as uow:
                ticket = await uow.tickets.get(task.ticket_id)
                outcome = None if ticket is None else await effect(uow, ticket, task, now)
                if ticket is not None and outcome is not None:
                    changed, alert = outcome
                    try:
                        saved = await uow.tickets.save(changed)
                    except ConcurrencyConflict:
                        if attempt == _RETRIES - 1:
                            raise
                        continue
                    await self._reconcile(uow, ticket, saved, now)
                    await uow.tickets.schedule(
                        [
                            _task(
                                saved,
                                TaskKind.NOTIFY,
                                alert.key,
                                now,
                                now,
                                alert.model_dump(mode="json"),
                            )
                        ]
                    )
                if not await uow.tickets.finish_task(task.id, claim, TaskState.DONE, now):
                    return "skipped"  # another runner took the task over; this unit rolls back
                await uow.commit()
            if outcome is None:
                return "skipped"
            return "escalated" if task.kind is TaskKind.ESCALATE else "moved"
        raise AssertionError("unreachable")  # pragma: no cover

    async def _escalate(
        self, uow: UnitOfWork, ticket: Ticket, task: TicketTask, now: datetime
    ) -> tuple[Ticket, Alert] | None:
        # Once per deadline: a timer of an earlier deadline (since moved) does nothing.
        if not ticket.active or ticket.deadline.isoformat() != task.payload.get("deadline"):
            return None
        team = self._team(ticket)
        target = self.policy.team(team.escalate_to) if team.escalate_to else team
        exclude = frozenset({ticket.assignee}) if ticket.assignee else frozenset()
        assignee = await self._choose(uow, target, ticket, exclude) or target.supervisor
        note = (
            f"overdue since {_stamp(ticket.deadline)}: {team.name}/{ticket.assignee or 'queue'}"
            f" -> {target.name}/{assignee}; supervisor {team.supervisor} notified"
        )
        supervisors = dict.fromkeys((team.supervisor, target.supervisor))
        alert = Alert(
            level=max(ticket.severity, Severity.HIGH),
            topic="tickets.escalated",
            message=mask_text(
                f"to {', '.join(supervisors)}: ticket {ticket.id} ({ticket.ticket_type}, "
                f"{ticket.severity}) of order {ticket.order_id or '-'} is {note}"
            ),
            key=f"ticket-escalated:{ticket.id}:{ticket.deadline.isoformat()}",
            at=now,
            channel=ticket.channel,
        )
        return ticket.escalate(target.name, assignee, now, note), alert

    async def _expire_follow_up(
        self, uow: UnitOfWork, ticket: Ticket, task: TicketTask, now: datetime
    ) -> tuple[Ticket, Alert] | None:
        follow = ticket.follow_up
        if (
            not ticket.active
            or follow is None
            or follow.state is not FollowUpState.PENDING
            or follow.started_at.isoformat() != task.payload.get("started_at")
        ):
            return None
        team = self.policy.team(self.policy.follow_up_team)
        assignee = await self._choose(uow, team, ticket)
        note = (
            f"no reply to SMS {follow.template} since {_stamp(follow.started_at)}; "
            f"moved to {team.name}/{assignee or 'queue'}"
        )
        alert = Alert(
            level=Severity.WARNING,
            topic="tickets.follow_up_expired",
            message=mask_text(
                f"to {team.supervisor}: ticket {ticket.id} ({ticket.ticket_type}) of order "
                f"{ticket.order_id or '-'}: {note}"
            ),
            key=f"ticket-follow-up-expired:{ticket.id}:{follow.started_at.isoformat()}",
            at=now,
            channel=ticket.channel,
        )
        return ticket.follow_up_expired(team.name, assignee, now, note), alert

    # -- analysis -----------------------------------------------------------------------------

    async def distribution(
        self,
        period_start: datetime,
        period_end: datetime,
        channel: str | None = None,
        *,
        top: int = 10,
    ) -> TicketDistribution:
        """Exceptions opened in [period_start, period_end), per channel and overall.

        Counts per type, reason and outcome code, the ``top`` reasons and the mean time
        to resolve, so the front end can be fixed where the exceptions come from.
        """
        if period_end <= period_start:
            raise _bad("distribution", "period_end", "must be after period_start", period_end)
        if top < 1:
            raise _bad("distribution", "top", "must be >= 1", top)
        query = TicketQuery(
            channel=channel, opened_from=period_start, opened_before=period_end, limit=None
        )
        async with self._storage.unit_of_work() as uow:
            tickets = await uow.tickets.find(query)
        return distribution(tickets, period_start, period_end, top=top)
