"""Exception tickets: the workflow, SOPs, SLAs, durable tasks and the analysis of causes.

A rule that finds something wrong with an order opens a :class:`Ticket`: its type
(``vague_address``, ``invalid_contact``, ``payment``, ``stock``, ``fraud``,
``remark_risk``, or any type of the shop's own), severity, order, reasons, the SOP of its
type, a team and assignee, and a deadline from the SLA of its type and severity.

The workflow (every change is a :class:`TicketEvent` with who, when, from and to)::

    open ──> in_progress ──> resolved ──> closed
      │  └─> waiting_customer ─┘  ▲          │
      │        │    ▲             │          │
      └────────┴────┴─────────────┘          │
    resolved / closed ──> reopened ──> (as open)

* ``resolve`` needs an outcome code (fed into the statistics); ``close`` only follows
  ``resolve``, so every closed ticket has one.
* ``waiting_customer`` goes back to ``in_progress`` when the customer replies, or to
  ``open`` when the ticket is handed to another team (the follow-up flow).

Timers and notifications are :class:`TicketTask` rows in the storage, so a restart of
the process (or another process on the same database) carries them on. Everything in
this module is pure: time and ids are passed in.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ordercore.domain.severity import Severity

__all__ = [
    "ACTIVE_STATUSES",
    "BUILTIN_SOPS",
    "DEFAULT_OUTCOMES",
    "SYSTEM",
    "TRANSITIONS",
    "AgentLoad",
    "ChannelDistribution",
    "FollowUp",
    "FollowUpState",
    "ReasonCount",
    "SlaRule",
    "Sop",
    "TaskKind",
    "TaskState",
    "Team",
    "Ticket",
    "TicketAction",
    "TicketDistribution",
    "TicketEvent",
    "TicketPolicy",
    "TicketQuery",
    "TicketStatus",
    "TicketTask",
    "distribution",
]

SYSTEM = "system"
"""The actor recorded for changes ordercore makes on its own (timers, rules)."""


class TicketStatus(StrEnum):
    """Where a ticket is in its workflow."""

    OPEN = "open"
    IN_PROGRESS = "in_progress"
    WAITING_CUSTOMER = "waiting_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REOPENED = "reopened"


ACTIVE_STATUSES = frozenset(
    {
        TicketStatus.OPEN,
        TicketStatus.IN_PROGRESS,
        TicketStatus.WAITING_CUSTOMER,
        TicketStatus.REOPENED,
    }
)
"""Statuses in which a ticket still needs work (and its SLA runs)."""

TRANSITIONS: Mapping[TicketStatus, frozenset[TicketStatus]] = {
    TicketStatus.OPEN: frozenset(
        {TicketStatus.IN_PROGRESS, TicketStatus.WAITING_CUSTOMER, TicketStatus.RESOLVED}
    ),
    TicketStatus.IN_PROGRESS: frozenset({TicketStatus.WAITING_CUSTOMER, TicketStatus.RESOLVED}),
    TicketStatus.WAITING_CUSTOMER: frozenset(
        {TicketStatus.IN_PROGRESS, TicketStatus.OPEN, TicketStatus.RESOLVED}
    ),
    TicketStatus.RESOLVED: frozenset({TicketStatus.CLOSED, TicketStatus.REOPENED}),
    TicketStatus.CLOSED: frozenset({TicketStatus.REOPENED}),
    TicketStatus.REOPENED: frozenset(
        {TicketStatus.IN_PROGRESS, TicketStatus.WAITING_CUSTOMER, TicketStatus.RESOLVED}
    ),
}
"""Allowed status changes: current -> targets."""


class TicketAction(StrEnum):
    """What a history entry records."""

    OPENED = "opened"
    STATUS = "status"
    ASSIGNED = "assigned"
    COMMENTED = "commented"
    FINDING_ADDED = "finding_added"
    ESCALATED = "escalated"
    FOLLOW_UP_STARTED = "follow_up_started"
    SMS_SENT = "sms_sent"
    CUSTOMER_REPLIED = "customer_replied"
    FOLLOW_UP_EXPIRED = "follow_up_expired"


class TicketEvent(BaseModel):
    """One entry of a ticket's history: who did what, when, and the status before and after."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime
    by: str
    action: TicketAction
    from_status: TicketStatus | None = None
    to_status: TicketStatus
    note: str = ""
    assignee: str | None = None
    team: str | None = None


class Sop(BaseModel):
    """The standard procedure of a ticket type: steps in Chinese, an English summary."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    steps: tuple[str, ...]
    summary: str


BUILTIN_SOPS: Mapping[str, Sop] = {
    "vague_address": Sop(
        title="地址模糊核实",
        steps=(
            "1. 对照地图核实省/市/区与详细地址，补全门牌号",
            "2. 无法确认时电话联系收件人，记录确认结果",
            "3. 更新订单地址后解除拦截并重新路由",
        ),
        summary="Check the address against a map, call the receiver if unsure, fix and release.",
    ),
    "invalid_contact": Sop(
        title="联系方式无效处理",
        steps=(
            "1. 系统自动发送短信请客户更新联系方式",
            "2. 等待客户回复（默认2小时）",
            "3. 超时未回复转外呼组电话联系；仍无法联系则与客户协商取消",
        ),
        summary="SMS asking for a new contact; no reply within 2 h moves it to outbound calls.",
    ),
    "payment": Sop(
        title="支付异常处理",
        steps=(
            "1. 在支付渠道核对交易流水与金额",
            "2. 金额不符或未到账时暂停发货并联系财务",
            "3. 确认到账后解除拦截；确认失败则取消订单并释放库存",
        ),
        summary="Reconcile with the payment provider; hold shipping until the money is confirmed.",
    ),
    "stock": Sop(
        title="库存异常处理",
        steps=(
            "1. 核对各仓实际库存与系统库存",
            "2. 可调拨则发起调拨或拆单发货；可替换则征得客户同意后换货",
            "3. 无法满足时联系客户协商退款并记录原因",
        ),
        summary="Recount, transfer or split, offer a substitute, or refund with consent.",
    ),
    "fraud": Sop(
        title="风险订单审核",
        steps=(
            "1. 暂停发货，核查买家历史、收货地址与支付信息",
            "2. 必要时电话核实身份",
            "3. 确认欺诈则取消并加入风控名单；误报则放行并反馈规则",
        ),
        summary="Hold shipping, review buyer and payment; cancel and blacklist, or release.",
    ),
    "remark_risk": Sop(
        title="备注风险处理",
        steps=(
            "1. 阅读买家/卖家备注，判断是否影响发货（改地址、改规格、开票等）",
            "2. 按备注要求修改订单或联系客户确认",
            "3. 处理完毕后在工单中记录处理结果",
        ),
        summary="Read the remark, apply or confirm what it asks, record what was done.",
    ),
    "default": Sop(
        title="通用异常处理",
        steps=(
            "1. 阅读异常原因与订单详情",
            "2. 按原因联系相关方处理",
            "3. 记录处理结果并选择结果代码",
        ),
        summary="Read the reasons, act on them, record the outcome.",
    ),
}
"""Built-in SOPs by ticket type; ``default`` serves any other type. Override per policy."""

DEFAULT_OUTCOMES = (
    "address_corrected",
    "contact_updated",
    "customer_confirmed",
    "payment_confirmed",
    "stock_transferred",
    "substituted",
    "split_shipped",
    "order_cancelled",
    "refunded",
    "fraud_confirmed",
    "false_positive",
    "no_action",
    "other",
)
"""Resolution outcome codes a policy accepts unless it names its own."""


class FollowUpState(StrEnum):
    """Where an automated customer follow-up stands."""

    PENDING = "pending"
    REPLIED = "replied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class FollowUp(BaseModel):
    """An SMS asking the customer for something, and how long the ticket waits for a reply."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    template: str
    started_at: datetime
    due_at: datetime
    state: FollowUpState = FollowUpState.PENDING
    sms_sent_at: datetime | None = None


class IllegalTicketChange(ValueError):
    """Raised by Ticket methods; the service turns it into the public error type."""

    def __init__(self, ticket_id: str, current: TicketStatus, target: str, allowed: Iterable[str]):
        self.ticket_id = ticket_id
        self.current = current
        self.target = target
        self.allowed = tuple(sorted(allowed))
        super().__init__(target)


class Ticket(BaseModel):
    """An exception ticket. Methods return a changed copy with the change in ``events``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    ticket_type: str
    severity: Severity
    channel: str
    order_id: str | None = None
    reasons: tuple[str, ...] = ()
    rule_ids: tuple[str, ...] = ()
    dedup_key: str | None = None
    status: TicketStatus = TicketStatus.OPEN
    team: str
    assignee: str | None = None
    assigned_at: datetime | None = None
    sop: Sop
    opened_at: datetime
    deadline: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    outcome: str | None = None
    resolution_note: str = ""
    escalation_level: Annotated[int, Field(ge=0)] = 0
    follow_up: FollowUp | None = None
    events: tuple[TicketEvent, ...] = ()
    version: Annotated[int, Field(ge=0)] = 0

    @property
    def active(self) -> bool:
        """True while the ticket still needs work."""
        return self.status in ACTIVE_STATUSES

    @property
    def key(self) -> str | None:
        """What makes two findings the same ticket: the dedup key, else order and type."""
        if self.dedup_key is not None:
            return self.dedup_key
        if self.order_id is None:
            return None
        return f"{self.order_id}:{self.ticket_type}"

    @property
    def open_key(self) -> str | None:
        """``key`` while the ticket is active (unique among active tickets), else None."""
        return self.key if self.active else None

    def is_overdue(self, now: datetime) -> bool:
        """Active and past its deadline."""
        return self.active and self.deadline <= now

    def time_to_resolve(self) -> timedelta | None:
        """From opening to (the latest) resolution, when resolved."""
        return None if self.resolved_at is None else self.resolved_at - self.opened_at

    def _event(
        self,
        at: datetime,
        by: str,
        action: TicketAction,
        *,
        to: TicketStatus | None = None,
        note: str = "",
        **changes: Any,
    ) -> Ticket:
        target = to or self.status
        event = TicketEvent(
            at=at,
            by=by,
            action=action,
            from_status=self.status,
            to_status=target,
            note=note,
            assignee=changes.get("assignee", self.assignee),
            team=changes.get("team", self.team),
        )
        changes.update(status=target, updated_at=at, events=(*self.events, event))
        return self.model_copy(update=changes)

    def move(self, target: TicketStatus, at: datetime, by: str, note: str = "") -> Ticket:
        """Change status if the workflow allows it; IllegalTicketChange otherwise."""
        allowed = TRANSITIONS[self.status]
        if target not in allowed:
            raise IllegalTicketChange(self.id, self.status, target.value, allowed)
        changes: dict[str, Any] = {}
        if target is TicketStatus.CLOSED:
            changes["closed_at"] = at
        if target is TicketStatus.REOPENED:
            changes.update(closed_at=None, outcome=None, resolution_note="")
        if self.follow_up is not None and self.follow_up.state is FollowUpState.PENDING:
            # Someone acted on the ticket by hand: the automated follow-up stops.
            changes["follow_up"] = self.follow_up.model_copy(
                update={"state": FollowUpState.CANCELLED}
            )
        return self._event(at, by, TicketAction.STATUS, to=target, note=note, **changes)

    def resolve(self, outcome: str, at: datetime, by: str, note: str = "") -> Ticket:
        """Move to resolved with an outcome code."""
        moved = self.move(TicketStatus.RESOLVED, at, by, note or outcome)
        return moved.model_copy(
            update={"outcome": outcome, "resolution_note": note, "resolved_at": at}
        )

    def assign(
        self, team: str, assignee: str | None, at: datetime, by: str, note: str = ""
    ) -> Ticket:
        """Hand the ticket to a team and (optionally) one of its agents."""
        if not self.active:
            raise IllegalTicketChange(self.id, self.status, "assign", ())
        return self._event(
            at, by, TicketAction.ASSIGNED, note=note, team=team, assignee=assignee, assigned_at=at
        )

    def comment(self, at: datetime, by: str, note: str) -> Ticket:
        """Add a note to the history."""
        return self._event(at, by, TicketAction.COMMENTED, note=note)

    def add_finding(
        self,
        reasons: Sequence[str],
        rule_ids: Sequence[str],
        severity: Severity,
        deadline: datetime,
        at: datetime,
        by: str,
    ) -> Ticket:
        """Merge another finding: new reasons and rules, higher severity, earlier deadline."""
        new_reasons = tuple(dict.fromkeys((*self.reasons, *reasons)))
        new_rules = tuple(dict.fromkeys((*self.rule_ids, *rule_ids)))
        added = [reason for reason in new_reasons if reason not in self.reasons]
        return self._event(
            at,
            by,
            TicketAction.FINDING_ADDED,
            note="; ".join(added),
            reasons=new_reasons,
            rule_ids=new_rules,
            severity=max(self.severity, severity),
            deadline=min(self.deadline, deadline),
        )

    def escalate(self, team: str, assignee: str | None, at: datetime, note: str) -> Ticket:
        """Record an escalation: new team and assignee, one level up."""
        return self._event(
            at,
            SYSTEM,
            TicketAction.ESCALATED,
            note=note,
            team=team,
            assignee=assignee,
            assigned_at=at,
            escalation_level=self.escalation_level + 1,
        )

    def start_follow_up(self, template: str, at: datetime, due_at: datetime, by: str) -> Ticket:
        """Wait for the customer's answer to an SMS until ``due_at``."""
        follow_up = FollowUp(template=template, started_at=at, due_at=due_at)
        if self.status is TicketStatus.WAITING_CUSTOMER:
            raise IllegalTicketChange(self.id, self.status, "follow up", ())
        waiting = self.move(TicketStatus.WAITING_CUSTOMER, at, by, f"follow-up {template}")
        return waiting._event(
            at,
            by,
            TicketAction.FOLLOW_UP_STARTED,
            note=f"SMS {template}, reply due {due_at.isoformat()}",
            follow_up=follow_up,
        )

    def sms_sent(self, at: datetime) -> Ticket:
        """Note that the follow-up SMS went out."""
        follow_up = self.follow_up
        if follow_up is not None and follow_up.sms_sent_at is None:
            follow_up = follow_up.model_copy(update={"sms_sent_at": at})
        return self._event(at, SYSTEM, TicketAction.SMS_SENT, follow_up=follow_up)

    def customer_replied(self, at: datetime, by: str, note: str) -> Ticket:
        """The customer answered.

        While the follow-up waits, it ends and the ticket goes back to work (in_progress).
        A late answer (the follow-up expired or was stopped) is recorded on the active
        ticket without changing its status, so whoever has it now sees it.
        """
        follow_up = self.follow_up
        if follow_up is not None and follow_up.state is FollowUpState.PENDING:
            return self._event(
                at,
                by,
                TicketAction.CUSTOMER_REPLIED,
                to=TicketStatus.IN_PROGRESS,
                note=note,
                follow_up=follow_up.model_copy(update={"state": FollowUpState.REPLIED}),
            )
        if follow_up is None or not self.active:
            raise IllegalTicketChange(self.id, self.status, "record a reply", ())
        return self._event(at, by, TicketAction.CUSTOMER_REPLIED, note=note)

    def follow_up_expired(self, team: str, assignee: str | None, at: datetime, note: str) -> Ticket:
        """No reply in time: hand the ticket to ``team`` as a new (open) piece of work."""
        if self.follow_up is None or self.follow_up.state is not FollowUpState.PENDING:
            raise IllegalTicketChange(self.id, self.status, "expire the follow-up", ())
        follow_up = self.follow_up.model_copy(update={"state": FollowUpState.EXPIRED})
        return self._event(
            at,
            SYSTEM,
            TicketAction.FOLLOW_UP_EXPIRED,
            to=TicketStatus.OPEN,
            note=note,
            follow_up=follow_up,
            team=team,
            assignee=assignee,
            assigned_at=at,
        )


# -- configuration --------------------------------------------------------------------------


class Team(BaseModel):
    """A team (queue) of agents with a supervisor and an assignment policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1)]
    supervisor: Annotated[str, Field(min_length=1)]
    agents: tuple[str, ...] = ()
    assignment: str = "least_loaded"
    """``queue`` (tickets wait in the team queue), ``least_loaded``, ``round_robin`` or the
    name of a policy given to the TicketService."""
    escalate_to: str | None = None
    """The team an overdue ticket goes to (None: stays in this team)."""


class SlaRule(BaseModel):
    """Resolve within ``within``; the most specific rule for (type, severity) applies."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ticket_type: str = "*"
    severity: Severity | None = None
    within: timedelta

    def specificity(self) -> int:
        """Higher is more specific: type and severity, type, severity, catch-all."""
        return (2 if self.ticket_type != "*" else 0) + (1 if self.severity is not None else 0)


DEFAULT_SLA = (
    SlaRule(severity=Severity.CRITICAL, within=timedelta(hours=1)),
    SlaRule(severity=Severity.HIGH, within=timedelta(hours=4)),
    SlaRule(severity=Severity.WARNING, within=timedelta(hours=24)),
    SlaRule(within=timedelta(hours=72)),
    SlaRule(ticket_type="fraud", within=timedelta(hours=2)),
    SlaRule(ticket_type="fraud", severity=Severity.CRITICAL, within=timedelta(minutes=30)),
    SlaRule(ticket_type="payment", within=timedelta(hours=4)),
)

DEFAULT_TEAMS = (
    Team(name="ops", supervisor="ops-lead"),
    Team(name="outbound_call", supervisor="outbound-lead"),
    Team(name="risk", supervisor="risk-lead"),
)


class TicketPolicy(BaseModel):
    """Teams, routing, SLAs, SOPs, outcome codes and the follow-up flow, as data.

    Load it from the ``[tickets]`` table of a TOML file with :meth:`from_toml`::

        [tickets]
        follow_up_wait = "PT2H"
        routes = { "*" = "ops", fraud = "risk" }

        [[tickets.teams]]
        name = "ops"
        supervisor = "wang.lead"
        agents = ["li", "zhao"]
        assignment = "round_robin"
        escalate_to = "ops-senior"
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    teams: tuple[Team, ...] = DEFAULT_TEAMS
    routes: dict[str, str] = Field(default_factory=lambda: {"*": "ops", "fraud": "risk"})
    """Ticket type -> team; ``*`` for every other type."""
    sla: tuple[SlaRule, ...] = DEFAULT_SLA
    sops: dict[str, Sop] = Field(default_factory=dict)
    """SOPs by type, over the built-in ones."""
    outcomes: tuple[str, ...] = DEFAULT_OUTCOMES
    follow_up_types: tuple[str, ...] = ("invalid_contact",)
    """Ticket types that start the SMS follow-up on opening (when the order is known)."""
    follow_up_template: str = "contact_update"
    follow_up_wait: timedelta = timedelta(hours=2)
    follow_up_team: str = "outbound_call"
    task_lease: timedelta = timedelta(minutes=5)
    """How long a runner owns a claimed task before another may take it over."""
    task_max_attempts: Annotated[int, Field(ge=1, le=100)] = 8
    task_retry_base: timedelta = timedelta(seconds=30)

    @model_validator(mode="after")
    def _check_references(self) -> Self:
        names = [team.name for team in self.teams]
        if len(set(names)) != len(names):
            raise ValueError(f"tickets.teams: team names must be unique (got {names})")
        known = set(names)
        if "*" not in self.routes:
            raise ValueError("tickets.routes: needs a '*' route for types without their own")
        for ticket_type, route in self.routes.items():
            if route not in known:
                raise ValueError(f"tickets.routes[{ticket_type!r}]: unknown team {route!r}")
        for team in self.teams:
            if team.escalate_to is not None and team.escalate_to not in known:
                raise ValueError(
                    f"tickets.teams[{team.name!r}].escalate_to: unknown team {team.escalate_to!r}"
                )
        if self.follow_up_team not in known:
            raise ValueError(f"tickets.follow_up_team: unknown team {self.follow_up_team!r}")
        if not any(rule.ticket_type == "*" and rule.severity is None for rule in self.sla):
            raise ValueError("tickets.sla: needs a catch-all rule (no type, no severity)")
        if not self.outcomes:
            raise ValueError("tickets.outcomes: needs at least one outcome code")
        return self

    @classmethod
    def from_toml(cls, path: str | Path) -> TicketPolicy:
        """The policy in the ``[tickets]`` table of a TOML file (defaults when absent)."""
        with Path(path).open("rb") as handle:
            data = tomllib.load(handle)
        return cls.model_validate(data.get("tickets", {}))

    def team(self, name: str) -> Team:
        """The team of this name (KeyError when unknown)."""
        for team in self.teams:
            if team.name == name:
                return team
        raise KeyError(name)

    def team_for(self, ticket_type: str) -> Team:
        """The team whose queue a new ticket of this type goes to."""
        return self.team(self.routes.get(ticket_type, self.routes["*"]))

    def sla_for(self, ticket_type: str, severity: Severity) -> timedelta:
        """How long a ticket of this type and severity may stay unresolved."""
        matching = [
            rule
            for rule in self.sla
            if rule.ticket_type in ("*", ticket_type) and rule.severity in (None, severity)
        ]
        return max(matching, key=SlaRule.specificity).within

    def sop_for(self, ticket_type: str) -> Sop:
        """The SOP of a type: the policy's own, the built-in one, or the default."""
        return (
            self.sops.get(ticket_type)
            or BUILTIN_SOPS.get(ticket_type)
            or self.sops.get("default")
            or BUILTIN_SOPS["default"]
        )


class AgentLoad(BaseModel):
    """An agent's workload, for assignment policies."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    active: int = 0
    """Active tickets assigned now."""
    last_assigned_at: datetime | None = None
    """When the agent last got a ticket (None: never)."""


# -- durable tasks ---------------------------------------------------------------------------


class TaskKind(StrEnum):
    """What a durable ticket task does when it comes due."""

    ESCALATE = "escalate"
    FOLLOW_UP_EXPIRED = "follow_up_expired"
    NOTIFY = "notify"
    SEND_SMS = "send_sms"


class TaskState(StrEnum):
    """Lifecycle of a task: pending -> claimed -> done (or back to pending to retry)."""

    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


class TicketTask(BaseModel):
    """A timer or an outgoing message of a ticket, kept in the storage until done.

    ``key`` is unique: scheduling the same thing twice keeps one. A runner claims a due
    task for ``lease`` (state claimed, its own ``claim`` token); only that claim may
    finish it, and a claim whose lease ran out (the runner died) may be taken over.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    key: str
    ticket_id: str
    kind: TaskKind
    due_at: datetime
    created_at: datetime
    state: TaskState = TaskState.PENDING
    attempts: Annotated[int, Field(ge=0)] = 0
    claim: str | None = None
    lease_until: datetime | None = None
    finished_at: datetime | None = None
    last_error: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


# -- queries and analysis ---------------------------------------------------------------------


class TicketQuery(BaseModel):
    """Which tickets to list; every given filter must match. Newest opened first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    statuses: tuple[TicketStatus, ...] = ()
    ticket_type: str | None = None
    assignee: str | None = None
    team: str | None = None
    channel: str | None = None
    order_id: str | None = None
    overdue_at: datetime | None = None
    """Only active tickets whose deadline is at or before this time."""
    opened_from: datetime | None = None
    opened_before: datetime | None = None
    limit: Annotated[int, Field(ge=1)] | None = 100

    def matches(self, ticket: Ticket) -> bool:
        """True when ``ticket`` passes every filter (the memory storage uses this)."""
        return (
            (not self.statuses or ticket.status in self.statuses)
            and (self.ticket_type is None or ticket.ticket_type == self.ticket_type)
            and (self.assignee is None or ticket.assignee == self.assignee)
            and (self.team is None or ticket.team == self.team)
            and (self.channel is None or ticket.channel == self.channel)
            and (self.order_id is None or ticket.order_id == self.order_id)
            and (self.overdue_at is None or ticket.is_overdue(self.overdue_at))
            and (self.opened_from is None or ticket.opened_at >= self.opened_from)
            and (self.opened_before is None or ticket.opened_at < self.opened_before)
        )


class ReasonCount(BaseModel):
    """How often a reason was given."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str
    count: int


class ChannelDistribution(BaseModel):
    """Exceptions of one channel (or ``*``: all) in a period."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: str
    tickets: int
    by_type: dict[str, int]
    by_reason: dict[str, int]
    top_reasons: tuple[ReasonCount, ...]
    by_outcome: dict[str, int]
    resolved: int
    mean_time_to_resolve: timedelta | None


class TicketDistribution(BaseModel):
    """Where exceptions come from, per channel and overall, for tickets opened in a period."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    period_start: datetime
    period_end: datetime
    overall: ChannelDistribution
    channels: dict[str, ChannelDistribution]


def _summarise(channel: str, tickets: Sequence[Ticket], top: int) -> ChannelDistribution:
    reasons: Counter[str] = Counter()
    for ticket in tickets:
        reasons.update(ticket.reasons)
    durations = [d for ticket in tickets if (d := ticket.time_to_resolve()) is not None]
    mean = sum(durations, timedelta(0)) / len(durations) if durations else None
    ranked = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    return ChannelDistribution(
        channel=channel,
        tickets=len(tickets),
        by_type=dict(sorted(Counter(t.ticket_type for t in tickets).items())),
        by_reason=dict(ranked),
        top_reasons=tuple(ReasonCount(reason=r, count=c) for r, c in ranked[:top]),
        by_outcome=dict(sorted(Counter(t.outcome for t in tickets if t.outcome).items())),
        resolved=len(durations),
        mean_time_to_resolve=mean,
    )


def distribution(
    tickets: Iterable[Ticket],
    period_start: datetime,
    period_end: datetime,
    *,
    top: int = 10,
) -> TicketDistribution:
    """Counts per type, reason and outcome, the top reasons and mean time to resolve.

    Counts tickets opened in [period_start, period_end); a ticket reopened and resolved
    again counts its latest resolution.
    """
    chosen = [t for t in tickets if period_start <= t.opened_at < period_end]
    by_channel: dict[str, list[Ticket]] = {}
    for ticket in chosen:
        by_channel.setdefault(ticket.channel, []).append(ticket)
    return TicketDistribution(
        period_start=period_start,
        period_end=period_end,
        overall=_summarise("*", chosen, top),
        channels={name: _summarise(name, by_channel[name], top) for name in sorted(by_channel)},
    )
