"""The ticket repository: tickets stored whole as JSON documents, and their durable tasks.

The indexed columns of ``tickets`` are copies of the document's fields for filtering
and workload counts; the document is the record. Each guarantee is decided by the
database, not by a read in Python:

* one active ticket per key: ``open_key`` (the key while active, NULL otherwise) is
  UNIQUE; ``add`` inserts with ON CONFLICT DO NOTHING and, when nothing was inserted,
  reads the active ticket that holds the key, locked (FOR UPDATE) for the merge. On
  PostgreSQL a concurrent insert of the same key waits for the other transaction, then
  conflicts (or inserts if it rolled back).
* ``save``: ``UPDATE ... WHERE id = :id AND version = :v`` (optimistic version check).
* ``claim_tasks``: one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)
  RETURNING``: concurrent runners on PostgreSQL take disjoint tasks without waiting;
  SQLite drops the locking clause (its writers are serialised by BEGIN IMMEDIATE).
* ``finish_task``: ``UPDATE ... WHERE state = 'claimed' AND claim = :claim``: only the
  holder of the claim ends it, even after another runner took an expired lease over.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, RowMapping, and_, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ordercore.domain.tickets import (
    ACTIVE_STATUSES,
    AgentLoad,
    TaskKind,
    TaskState,
    Ticket,
    TicketQuery,
    TicketTask,
)
from ordercore.errors import ConcurrencyConflict, TicketNotFound, TicketStateConflict
from ordercore_adapters.storage.sql.schema import ticket_tasks, tickets

if TYPE_CHECKING:
    from ordercore_adapters.storage.sql.unit_of_work import SqlUnitOfWork

__all__ = ["SqlTicketRepository"]

T = tickets
K = ticket_tasks
_ACTIVE = sorted(status.value for status in ACTIVE_STATUSES)
_FINAL = (TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED)
_TASK_COLUMNS = (
    K.c.id,
    K.c.key,
    K.c.ticket_id,
    K.c.kind,
    K.c.state,
    K.c.due_at,
    K.c.created_at,
    K.c.attempts,
    K.c.claim,
    K.c.lease_until,
    K.c.finished_at,
    K.c.last_error,
    K.c.payload,
)


def _columns(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "open_key": ticket.open_key,
        "order_id": ticket.order_id,
        "ticket_type": ticket.ticket_type,
        "channel": ticket.channel,
        "severity": ticket.severity.value,
        "status": ticket.status.value,
        "team": ticket.team,
        "assignee": ticket.assignee,
        "assigned_at": ticket.assigned_at,
        "deadline": ticket.deadline,
        "opened_at": ticket.opened_at,
        "updated_at": ticket.updated_at,
        "resolved_at": ticket.resolved_at,
        "outcome": ticket.outcome,
        "version": ticket.version,
        "document": ticket.model_dump_json(),
    }


def _task_of(row: RowMapping) -> TicketTask:
    return TicketTask.model_validate(dict(row))


class SqlTicketRepository:
    """Tickets in SQL; each method is one worker-thread hop in the unit's transaction."""

    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    def _insert(self, table: Any) -> Any:
        dialect = postgresql if self._uow.dialect == "postgresql" else sqlite
        return dialect.insert(table)

    async def add(self, ticket: Ticket) -> tuple[Ticket, bool]:
        """Store a new ticket, or return the active one with the same key."""
        statement = (
            self._insert(T).values(_columns(ticket)).on_conflict_do_nothing().returning(T.c.id)
        )

        def work(conn: Connection) -> tuple[Ticket, bool]:
            if conn.execute(statement).first() is not None:
                return ticket, True
            key = ticket.open_key
            document = None
            if key is not None:
                # Locked, so concurrent findings for one ticket merge one after another
                # instead of failing each other's version checks (SQLite ignores it).
                locked = select(T.c.document).where(T.c.open_key == key).with_for_update()
                document = conn.execute(locked).scalar()
            if document is None:
                raise ConcurrencyConflict(f"ticket {ticket.id!r} (already stored)", ticket.version)
            return Ticket.model_validate_json(document), False

        return await self._uow.run(work, atomic=True)

    async def get(self, ticket_id: str) -> Ticket | None:
        """The ticket with this id."""
        query = select(T.c.document).where(T.c.id == ticket_id)
        document = await self._uow.run(lambda conn: conn.execute(query).scalar())
        return None if document is None else Ticket.model_validate_json(document)

    async def save(self, ticket: Ticket) -> Ticket:
        """Store a changed ticket if its version is still the stored one; return it bumped."""
        saved = ticket.model_copy(update={"version": ticket.version + 1})
        statement = (
            update(T)
            .where(T.c.id == ticket.id, T.c.version == ticket.version)
            .values(_columns(saved))
        )

        def work(conn: Connection) -> Ticket:
            try:
                hit = conn.execute(statement).rowcount
            except IntegrityError as exc:
                raise TicketStateConflict(
                    ticket.id,
                    ticket.status.value,
                    f"become active: another active ticket has key {saved.open_key!r}",
                    (),
                ) from exc
            if hit:
                return saved
            if conn.execute(select(T.c.id).where(T.c.id == ticket.id)).first() is None:
                raise TicketNotFound(ticket.id)
            raise ConcurrencyConflict(f"ticket {ticket.id!r}", ticket.version)

        return await self._uow.run(work, atomic=True)

    async def find(self, query: TicketQuery) -> builtins.list[Ticket]:
        """Tickets matching ``query``, newest opened first."""
        conditions: list[ColumnElement[bool]] = []
        if query.statuses:
            conditions.append(T.c.status.in_([status.value for status in query.statuses]))
        for column, value in (
            (T.c.ticket_type, query.ticket_type),
            (T.c.assignee, query.assignee),
            (T.c.team, query.team),
            (T.c.channel, query.channel),
            (T.c.order_id, query.order_id),
        ):
            if value is not None:
                conditions.append(column == value)
        if query.overdue_at is not None:
            conditions.extend((T.c.status.in_(_ACTIVE), T.c.deadline <= query.overdue_at))
        if query.opened_from is not None:
            conditions.append(T.c.opened_at >= query.opened_from)
        if query.opened_before is not None:
            conditions.append(T.c.opened_at < query.opened_before)
        statement = (
            select(T.c.document).where(*conditions).order_by(T.c.opened_at.desc(), T.c.id.desc())
        )
        if query.limit is not None:
            statement = statement.limit(query.limit)
        documents = await self._uow.run(lambda conn: conn.execute(statement).scalars().all())
        return [Ticket.model_validate_json(document) for document in documents]

    async def workload(self, agents: Sequence[str]) -> dict[str, AgentLoad]:
        """Active ticket count and last assignment of each agent: one grouped read."""
        if not agents:
            return {}
        active = func.sum(case((T.c.status.in_(_ACTIVE), 1), else_=0))
        statement = (
            select(T.c.assignee, active, func.max(T.c.assigned_at))
            .where(T.c.assignee.in_(list(agents)))
            .group_by(T.c.assignee)
        )
        rows = await self._uow.run(lambda conn: conn.execute(statement).all())
        loads = {agent: AgentLoad() for agent in agents}
        for agent, count, last in rows:
            loads[agent] = AgentLoad(active=int(count or 0), last_assigned_at=last)
        return loads

    async def schedule(self, tasks: Sequence[TicketTask]) -> int:
        """Store new tasks, skipping keys already stored."""
        if not tasks:
            return 0
        statements = [
            self._insert(K)
            .values(
                {
                    **task.model_dump(exclude={"kind", "state"}),
                    "kind": task.kind.value,
                    "state": task.state.value,
                }
            )
            .on_conflict_do_nothing()
            .returning(K.c.id)
            for task in tasks
        ]

        def work(conn: Connection) -> int:
            return sum(conn.execute(statement).first() is not None for statement in statements)

        return await self._uow.run(work, atomic=True)

    async def cancel_tasks(self, ticket_id: str, kinds: Sequence[TaskKind], now: datetime) -> int:
        """Cancel the pending tasks of these kinds of a ticket."""
        if not kinds:
            return 0
        statement = (
            update(K)
            .where(
                K.c.ticket_id == ticket_id,
                K.c.kind.in_([TaskKind(kind).value for kind in kinds]),
                K.c.state == TaskState.PENDING.value,
            )
            .values(state=TaskState.CANCELLED.value, finished_at=now)
        )
        return await self._uow.run(lambda conn: conn.execute(statement).rowcount)

    async def claim_tasks(
        self, now: datetime, *, claim: str, lease_until: datetime, limit: int
    ) -> builtins.list[TicketTask]:
        """Claim up to ``limit`` due (or abandoned) tasks, earliest due first."""
        if limit <= 0:
            return []
        claimable = or_(
            and_(K.c.state == TaskState.PENDING.value, K.c.due_at <= now),
            and_(K.c.state == TaskState.CLAIMED.value, K.c.lease_until <= now),
        )
        due = K.alias("due")
        picked = (
            select(due.c.id)
            .where(
                or_(
                    and_(due.c.state == TaskState.PENDING.value, due.c.due_at <= now),
                    and_(due.c.state == TaskState.CLAIMED.value, due.c.lease_until <= now),
                )
            )
            .order_by(due.c.due_at, due.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        statement = (
            update(K)
            .where(K.c.id.in_(picked.scalar_subquery()), claimable)
            .values(
                state=TaskState.CLAIMED.value,
                claim=claim,
                lease_until=lease_until,
                attempts=K.c.attempts + 1,
            )
            .returning(*_TASK_COLUMNS)
        )
        rows = await self._uow.run(lambda conn: conn.execute(statement).all())
        return sorted((_task_of(row._mapping) for row in rows), key=lambda t: (t.due_at, t.id))

    async def finish_task(
        self,
        task_id: str,
        claim: str,
        state: TaskState,
        now: datetime,
        *,
        retry_at: datetime | None = None,
        error: str | None = None,
    ) -> bool:
        """End a claim, only while ``claim`` still holds the task."""
        values: dict[str, Any] = {
            "state": TaskState(state).value,
            "claim": None,
            "lease_until": None,
        }
        if error is not None:
            values["last_error"] = error
        if state is TaskState.PENDING:
            values["due_at"] = retry_at or now
        elif state in _FINAL:
            values["finished_at"] = now
        statement = (
            update(K)
            .where(K.c.id == task_id, K.c.state == TaskState.CLAIMED.value, K.c.claim == claim)
            .values(values)
        )
        hit = await self._uow.run(lambda conn: conn.execute(statement).rowcount)
        return bool(hit)

    async def tasks(
        self, ticket_id: str | None = None, *, states: Sequence[TaskState] = ()
    ) -> builtins.list[TicketTask]:
        """Tasks, optionally of one ticket and some states, by due time then id."""
        statement = select(*_TASK_COLUMNS).order_by(K.c.due_at, K.c.id)
        if ticket_id is not None:
            statement = statement.where(K.c.ticket_id == ticket_id)
        if states:
            statement = statement.where(K.c.state.in_([TaskState(s).value for s in states]))
        rows = await self._uow.run(lambda conn: conn.execute(statement).all())
        return [_task_of(row._mapping) for row in rows]
