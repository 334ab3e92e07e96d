"""The outbox repository in SQL: durable tasks, claimed under a lease.

Every guarantee is one statement, decided by the database:

* ``enqueue``: ``INSERT ... ON CONFLICT DO NOTHING RETURNING key``; a key stored before
  (by any process) is a conflict, so each key is stored once.
* ``claim``: one ``UPDATE ... FROM (candidates) RETURNING``. On PostgreSQL the candidates
  are selected ``FOR UPDATE SKIP LOCKED``: claimers in many processes on many machines
  skip each other's rows instead of waiting or taking them twice. On SQLite the unit
  of work began with ``BEGIN IMMEDIATE``, so a claim is the only writer (one process).
  A candidate is open (pending or running), due (``available_at <= now``; for a running
  task that is its lease expiry, so a crashed worker's task comes back), and has no
  open task with the same ordering key and a lower ``seq`` (``NOT EXISTS``). Under
  PostgreSQL's READ COMMITTED an earlier task that another claimer holds still reads as
  open, so the later one stays blocked: the rule errs on the side of waiting.
* ``complete`` / ``fail`` / ``renew``: ``UPDATE ... WHERE id = :id AND state = 'running'
  AND lease_owner = :owner``, a compare-and-set on the lease: the row count says whether
  this owner still held it.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Row,
    String,
    Update,
    bindparam,
    delete,
    exists,
    func,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from ordercore.domain.outbox import OutboxState, OutboxTask
from ordercore_adapters.storage.sql.schema import outbox_tasks
from ordercore_adapters.storage.sql.types import UtcDateTime

if TYPE_CHECKING:
    from ordercore_adapters.storage.sql.unit_of_work import SqlUnitOfWork

__all__ = ["SqlOutboxRepository"]

T = outbox_tasks
# Inline literals (not bound parameters): the planner matches them to the partial indexes.
_OPEN: tuple[ColumnElement[str], ...] = (
    literal_column("'pending'"),
    literal_column("'running'"),
)
_RUNNING = OutboxState.RUNNING.value

P_ID = bindparam("p_id", type_=String())
P_OWNER = bindparam("p_owner", type_=String())
P_NOW = bindparam("p_now", type_=UtcDateTime())
P_UNTIL = bindparam("p_until", type_=UtcDateTime())
P_LIMIT = bindparam("p_limit", type_=Integer())

_COLUMNS = tuple(T.c)
_ANALYZE_AFTER = 500
"""A PostgreSQL enqueue of this many tasks refreshes the table's planner statistics."""


class _Statements:
    """The outbox's statements for one dialect, built once."""

    def __init__(self, dialect: str) -> None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self.enqueue = insert(T).on_conflict_do_nothing().returning(T.c.key)

        earlier = T.alias("earlier")
        blocked = exists().where(
            earlier.c.ordering_key == T.c.ordering_key,
            earlier.c.seq < T.c.seq,
            earlier.c.state.in_(_OPEN),
        )
        due = (T.c.state.in_(_OPEN), T.c.available_at <= P_NOW, ~blocked)
        self.claim = self._claim(*due)
        self.claim_kinds = self._claim(*due, T.c.kind.in_(bindparam("p_kinds", expanding=True)))
        held = (T.c.id == P_ID, T.c.state == _RUNNING, T.c.lease_owner == P_OWNER)
        self.renew = (
            update(T)
            .where(*held)
            .values(lease_until=P_UNTIL, available_at=P_UNTIL, updated_at=P_NOW)
            .returning(T.c.id)
        )
        self.complete = (
            update(T)
            .where(*held)
            .values(
                state=OutboxState.DONE.value,
                lease_owner=None,
                lease_until=None,
                finished_at=P_NOW,
                updated_at=P_NOW,
            )
        )
        self.retry = (
            update(T)
            .where(*held)
            .values(
                state=OutboxState.PENDING.value,
                lease_owner=None,
                lease_until=None,
                available_at=P_UNTIL,
                last_error=bindparam("p_error", type_=String()),
                updated_at=P_NOW,
            )
        )
        self.bury = (
            update(T)
            .where(*held)
            .values(
                state=OutboxState.DEAD.value,
                lease_owner=None,
                lease_until=None,
                last_error=bindparam("p_error", type_=String()),
                finished_at=P_NOW,
                updated_at=P_NOW,
            )
        )
        self.get = select(*_COLUMNS).where(T.c.id == P_ID)
        self.counts = select(T.c.state, func.count()).group_by(T.c.state)
        self.redrive = (
            update(T)
            .where(T.c.state == OutboxState.DEAD.value)
            .values(
                state=OutboxState.PENDING.value,
                attempts=0,
                available_at=P_NOW,
                finished_at=None,
                updated_at=P_NOW,
            )
            .returning(T.c.id)
        )
        old = (
            select(T.c.seq)
            .where(T.c.state == OutboxState.DONE.value, T.c.finished_at < P_UNTIL)
            .order_by(T.c.seq)
            .limit(P_LIMIT)
            .scalar_subquery()
        )
        self.purge = delete(T).where(T.c.seq.in_(old))

    @staticmethod
    def _claim(*conditions: ColumnElement[bool]) -> Update:
        candidates = (
            select(T.c.seq)
            .where(*conditions)
            .order_by(T.c.available_at, T.c.seq)
            .limit(P_LIMIT)
            .with_for_update(skip_locked=True)
            .cte("candidates")
        )
        return (
            update(T)
            .where(T.c.seq == candidates.c.seq)
            .values(
                state=_RUNNING,
                lease_owner=P_OWNER,
                lease_until=P_UNTIL,
                available_at=P_UNTIL,
                attempts=T.c.attempts + 1,
                updated_at=P_NOW,
            )
            .returning(*_COLUMNS)
        )


@cache
def _statements(dialect: str) -> _Statements:
    return _Statements(dialect)


def _task(row: Row[Any]) -> OutboxTask:
    return OutboxTask.model_construct(
        None,
        id=row.id,
        kind=row.kind,
        key=row.key,
        ordering_key=row.ordering_key,
        payload=row.payload,
        state=OutboxState(row.state),
        attempts=row.attempts,
        created_at=row.created_at,
        updated_at=row.updated_at,
        available_at=row.available_at,
        lease_owner=row.lease_owner,
        lease_until=row.lease_until,
        last_error=row.last_error,
        finished_at=row.finished_at,
        seq=row.seq,
    )


def _row(task: OutboxTask) -> dict[str, Any]:
    return {
        "id": task.id,
        "kind": task.kind,
        "key": task.key,
        "ordering_key": task.ordering_key,
        "payload": task.payload,
        "state": task.state.value,
        "attempts": task.attempts,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "available_at": task.available_at,
        "lease_owner": task.lease_owner,
        "lease_until": task.lease_until,
        "last_error": task.last_error,
        "finished_at": task.finished_at,
    }


class SqlOutboxRepository:
    """Outbox tasks in SQL; each method is one worker-thread hop in the unit's transaction."""

    def __init__(self, uow: SqlUnitOfWork, dialect: str) -> None:
        self._uow = uow
        self._dialect = dialect
        self._sql = _statements(dialect)

    async def enqueue(self, tasks: Sequence[OutboxTask]) -> builtins.list[str]:
        """Store new tasks, skipping keys already stored; return the stored keys in order."""
        unique: dict[str, OutboxTask] = {}
        for task in tasks:
            unique.setdefault(task.key, task)
        if not unique:
            return []
        rows = [_row(task) for task in unique.values()]
        statement = self._sql.enqueue

        analyze = self._dialect == "postgresql" and len(rows) >= _ANALYZE_AFTER

        def work(conn: Connection) -> set[str]:
            if len(rows) == 1:
                return set(conn.execute(statement, rows[0]).scalars())
            stored = set(conn.execute(statement, rows).scalars())
            if analyze:
                # Until autovacuum gets to it, the planner would take a burst of new
                # tasks for a handful and plan claims as "read all, sort": tens of ms each.
                conn.execute(text("ANALYZE outbox_tasks"))
            return stored

        stored = await self._uow.run(work, atomic=True)
        return [key for key in unique if key in stored]

    async def claim(
        self,
        owner: str,
        *,
        limit: int,
        lease_until: datetime,
        now: datetime,
        kinds: Sequence[str] | None = None,
    ) -> builtins.list[OutboxTask]:
        """Claim up to ``limit`` due tasks (see the module docs for the statement)."""
        if limit <= 0:
            return []
        params: dict[str, Any] = {
            "p_owner": owner,
            "p_until": lease_until,
            "p_now": now,
            "p_limit": limit,
        }
        statement = self._sql.claim
        if kinds is not None:
            if not kinds:
                return []
            statement = self._sql.claim_kinds
            params["p_kinds"] = sorted(set(kinds))
        rows = await self._uow.run(lambda conn: conn.execute(statement, params).all(), atomic=True)
        return sorted((_task(row) for row in rows), key=lambda t: (t.available_at, t.seq))

    async def renew(
        self, ids: Sequence[str], owner: str, *, lease_until: datetime, now: datetime
    ) -> set[str]:
        """Extend the leases ``owner`` still holds; return those ids."""
        if not ids:
            return set()
        params = [
            {"p_id": task_id, "p_owner": owner, "p_until": lease_until, "p_now": now}
            for task_id in ids
        ]

        def work(conn: Connection) -> set[str]:
            held: set[str] = set()
            for one in params:
                held.update(conn.execute(self._sql.renew, one).scalars())
            return held

        return await self._uow.run(work, atomic=True)

    async def complete(self, task_id: str, owner: str, now: datetime) -> bool:
        """Mark a held task done (compare-and-set on the lease owner)."""
        params = {"p_id": task_id, "p_owner": owner, "p_now": now}
        count = await self._uow.run(lambda conn: conn.execute(self._sql.complete, params).rowcount)
        return bool(count)

    async def fail(
        self,
        task_id: str,
        owner: str,
        now: datetime,
        *,
        error: str,
        retry_at: datetime | None,
    ) -> bool:
        """End a failed attempt of a held task: pending again at ``retry_at``, or dead."""
        params = {"p_id": task_id, "p_owner": owner, "p_now": now, "p_error": error}
        if retry_at is None:
            statement = self._sql.bury
        else:
            statement = self._sql.retry
            params["p_until"] = retry_at
        count = await self._uow.run(lambda conn: conn.execute(statement, params).rowcount)
        return bool(count)

    async def get(self, task_id: str) -> OutboxTask | None:
        """The task with this id."""
        row = await self._uow.run(
            lambda conn: conn.execute(self._sql.get, {"p_id": task_id}).first()
        )
        return None if row is None else _task(row)

    async def list(
        self,
        *,
        states: Sequence[OutboxState] = (),
        kind: str | None = None,
        ordering_key: str | None = None,
        limit: int = 100,
    ) -> builtins.list[OutboxTask]:
        """Tasks in seq order, filtered."""
        query = select(*_COLUMNS).order_by(T.c.seq).limit(limit)
        if states:
            query = query.where(T.c.state.in_([OutboxState(s).value for s in states]))
        if kind is not None:
            query = query.where(T.c.kind == kind)
        if ordering_key is not None:
            query = query.where(T.c.ordering_key == ordering_key)
        rows = await self._uow.run(lambda conn: conn.execute(query).all())
        return [_task(row) for row in rows]

    async def counts(self) -> dict[OutboxState, int]:
        """Tasks per state, every state present."""
        rows = await self._uow.run(lambda conn: conn.execute(self._sql.counts).all())
        counts = dict.fromkeys(OutboxState, 0)
        for state, count in rows:
            counts[OutboxState(state)] = int(count)
        return counts

    async def redrive(self, ids: Sequence[str] | None, now: datetime) -> builtins.list[str]:
        """Make dead tasks pending again, due now, attempts reset."""
        statement = self._sql.redrive
        if ids is not None:
            if not ids:
                return []
            statement = statement.where(T.c.id.in_(list(ids)))
        found = await self._uow.run(
            lambda conn: list(conn.execute(statement, {"p_now": now}).scalars())
        )
        return sorted(found)

    async def purge(self, finished_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` done tasks finished before then."""
        params = {"p_until": finished_before, "p_limit": limit}
        count = await self._uow.run(lambda conn: conn.execute(self._sql.purge, params).rowcount)
        return int(count)
