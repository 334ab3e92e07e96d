"""The ticket repository of the memory storage: tickets and their durable tasks.

Like the other repositories, every change is applied in place under the storage's lock
and logged, so it is kept or undone with the rest of its unit of work. The lock makes
``add`` (one active ticket per key) and ``claim_tasks`` (each task claimed once) atomic.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from ordercore.domain.tickets import (
    AgentLoad,
    TaskKind,
    TaskState,
    Ticket,
    TicketQuery,
    TicketTask,
)
from ordercore.errors import ConcurrencyConflict, TicketNotFound

from ._state import MemoryRepository, UndoLog

__all__ = ["MemoryTickets"]

V = TypeVar("V")

_FINAL = (TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED)


def _newest_first(ticket: Ticket) -> tuple[datetime, str]:
    return (ticket.opened_at, ticket.id)


def _due_first(task: TicketTask) -> tuple[datetime, str]:
    return (task.due_at, task.id)


class MemoryTickets(MemoryRepository):
    """Tickets of a memory unit of work; implements ``ordercore.ports.storage.TicketRepository``."""

    __slots__ = ()

    def _put(self, table: dict[str, V], key: str, value: V | None, log: UndoLog) -> None:
        previous = table.get(key)
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
        log.append((self._restore, table, key, previous))

    async def add(self, ticket: Ticket) -> tuple[Ticket, bool]:
        """Store a new ticket, or return the active one with the same key."""
        log = self._log()
        state = self._state
        key = ticket.open_key
        if key is not None and key in state.ticket_keys:
            return state.tickets[state.ticket_keys[key]], False
        if ticket.id in state.tickets:
            raise ConcurrencyConflict(f"ticket {ticket.id!r} (already stored)", ticket.version)
        self._put(state.tickets, ticket.id, ticket, log)
        if key is not None:
            self._put(state.ticket_keys, key, ticket.id, log)
        return ticket, True

    async def get(self, ticket_id: str) -> Ticket | None:
        """The ticket with this id."""
        self._log()
        return self._state.tickets.get(ticket_id)

    async def save(self, ticket: Ticket) -> Ticket:
        """Store a changed ticket if its version is still the stored one; return it bumped."""
        log = self._log()
        state = self._state
        stored = state.tickets.get(ticket.id)
        if stored is None:
            raise TicketNotFound(ticket.id)
        if stored.version != ticket.version:
            raise ConcurrencyConflict(f"ticket {ticket.id!r}", ticket.version)
        saved = ticket.model_copy(update={"version": ticket.version + 1})
        old_key, new_key = stored.open_key, saved.open_key
        if new_key is not None and new_key != old_key and new_key in state.ticket_keys:
            raise ConcurrencyConflict(f"ticket {ticket.id!r} (key {new_key!r} is active)", 0)
        self._put(state.tickets, ticket.id, saved, log)
        if old_key != new_key:
            if old_key is not None:
                self._put(state.ticket_keys, old_key, None, log)
            if new_key is not None:
                self._put(state.ticket_keys, new_key, ticket.id, log)
        return saved

    async def find(self, query: TicketQuery) -> builtins.list[Ticket]:
        """Tickets matching ``query``, newest opened first."""
        self._log()
        found = sorted(
            (t for t in self._state.tickets.values() if query.matches(t)),
            key=_newest_first,
            reverse=True,
        )
        return found if query.limit is None else found[: query.limit]

    async def workload(self, agents: Sequence[str]) -> dict[str, AgentLoad]:
        """Active ticket count and last assignment of each agent."""
        self._log()
        active = dict.fromkeys(agents, 0)
        last: dict[str, datetime | None] = dict.fromkeys(agents, None)
        for ticket in self._state.tickets.values():
            agent = ticket.assignee
            if agent not in active:
                continue
            if ticket.active:
                active[agent] += 1
            seen = last[agent]
            if ticket.assigned_at is not None and (seen is None or ticket.assigned_at > seen):
                last[agent] = ticket.assigned_at
        return {a: AgentLoad(active=active[a], last_assigned_at=last[a]) for a in agents}

    async def schedule(self, tasks: Sequence[TicketTask]) -> int:
        """Store new tasks, skipping keys already stored."""
        log = self._log()
        state = self._state
        stored = 0
        for task in tasks:
            if task.key in state.ticket_task_keys or task.id in state.ticket_tasks:
                continue
            self._put(state.ticket_tasks, task.id, task, log)
            self._put(state.ticket_task_keys, task.key, task.id, log)
            stored += 1
        return stored

    async def cancel_tasks(self, ticket_id: str, kinds: Sequence[TaskKind], now: datetime) -> int:
        """Cancel the pending tasks of these kinds of a ticket."""
        log = self._log()
        tasks = self._state.ticket_tasks
        wanted = set(kinds)
        hits = [
            task
            for task in tasks.values()
            if task.ticket_id == ticket_id
            and task.kind in wanted
            and task.state is TaskState.PENDING
        ]
        for task in hits:
            cancelled = task.model_copy(update={"state": TaskState.CANCELLED, "finished_at": now})
            self._put(tasks, task.id, cancelled, log)
        return len(hits)

    async def claim_tasks(
        self, now: datetime, *, claim: str, lease_until: datetime, limit: int
    ) -> builtins.list[TicketTask]:
        """Claim up to ``limit`` due (or abandoned) tasks, earliest due first."""
        log = self._log()
        if limit <= 0:
            return []
        tasks = self._state.ticket_tasks
        due = sorted(
            (
                task
                for task in tasks.values()
                if (task.state is TaskState.PENDING and task.due_at <= now)
                or (
                    task.state is TaskState.CLAIMED
                    and task.lease_until is not None
                    and task.lease_until <= now
                )
            ),
            key=_due_first,
        )[:limit]
        claimed = []
        for task in due:
            taken = task.model_copy(
                update={
                    "state": TaskState.CLAIMED,
                    "claim": claim,
                    "lease_until": lease_until,
                    "attempts": task.attempts + 1,
                }
            )
            self._put(tasks, task.id, taken, log)
            claimed.append(taken)
        return claimed

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
        log = self._log()
        tasks = self._state.ticket_tasks
        task = tasks.get(task_id)
        if task is None or task.state is not TaskState.CLAIMED or task.claim != claim:
            return False
        update: dict[str, object] = {"state": state, "claim": None, "lease_until": None}
        if error is not None:
            update["last_error"] = error
        if state is TaskState.PENDING:
            update["due_at"] = retry_at or now
        elif state in _FINAL:
            update["finished_at"] = now
        self._put(tasks, task_id, task.model_copy(update=update), log)
        return True

    async def tasks(
        self, ticket_id: str | None = None, *, states: Sequence[TaskState] = ()
    ) -> builtins.list[TicketTask]:
        """Tasks, optionally of one ticket and some states, by due time then id."""
        self._log()
        wanted = set(states)
        return sorted(
            (
                task
                for task in self._state.ticket_tasks.values()
                if (ticket_id is None or task.ticket_id == ticket_id)
                and (not wanted or task.state in wanted)
            ),
            key=_due_first,
        )

    @staticmethod
    def _restore(table: dict[str, object], key: str, previous: object | None) -> None:
        if previous is None:
            table.pop(key, None)
        else:
            table[key] = previous
