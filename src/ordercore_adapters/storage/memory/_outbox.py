"""The outbox repository of the memory storage.

Changes apply in place under the storage's lock and are logged, so they are kept or
undone with the rest of their unit of work. The lock makes a claim atomic: a task is
handed to one owner at a time. A claim scans the open tasks (fine for the sizes the
memory storage is for: tests, demos, tiny shops).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from ordercore.domain.outbox import OPEN_STATES, OutboxState, OutboxTask

from ._state import MemoryRepository, UndoLog

__all__ = ["MemoryOutbox"]

V = TypeVar("V")


def _by_seq(task: OutboxTask) -> int:
    return task.seq


def _due_first(task: OutboxTask) -> tuple[datetime, int]:
    return (task.available_at, task.seq)


class MemoryOutbox(MemoryRepository):
    """Outbox of a memory unit of work; implements ``ordercore.ports.storage.OutboxRepository``."""

    __slots__ = ()

    def _put(self, table: dict[str, V], key: str, value: V | None, log: UndoLog) -> None:
        previous = table.get(key)
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
        log.append((_restore, table, key, previous))

    def _replace(self, task: OutboxTask, log: UndoLog, **changes: object) -> OutboxTask:
        changed = task.model_copy(update=changes)
        self._put(self._state.outbox, task.id, changed, log)
        return changed

    async def enqueue(self, tasks: Sequence[OutboxTask]) -> builtins.list[str]:
        """Store new tasks, skipping keys already stored; return the stored keys."""
        log = self._log()
        state = self._state
        stored: builtins.list[str] = []
        for task in tasks:
            if task.key in state.outbox_keys or task.id in state.outbox:
                continue
            state.outbox_seq[0] += 1
            fresh = task.model_copy(update={"seq": state.outbox_seq[0]})
            self._put(state.outbox, task.id, fresh, log)
            self._put(state.outbox_keys, task.key, task.id, log)
            stored.append(task.key)
        return stored

    async def claim(
        self,
        owner: str,
        *,
        limit: int,
        lease_until: datetime,
        now: datetime,
        kinds: Sequence[str] | None = None,
    ) -> builtins.list[OutboxTask]:
        """Claim up to ``limit`` due tasks whose earlier same-key tasks are finished."""
        log = self._log()
        if limit <= 0:
            return []
        open_tasks = sorted(
            (task for task in self._state.outbox.values() if task.state in OPEN_STATES),
            key=_by_seq,
        )
        blocked: set[str] = set()
        due: builtins.list[OutboxTask] = []
        for task in open_tasks:
            key = task.ordering_key
            if key is not None:
                if key in blocked:
                    continue
                blocked.add(key)
            if task.available_at <= now and (kinds is None or task.kind in kinds):
                due.append(task)
        due.sort(key=_due_first)
        return [
            self._replace(
                task,
                log,
                state=OutboxState.RUNNING,
                lease_owner=owner,
                lease_until=lease_until,
                available_at=lease_until,
                attempts=task.attempts + 1,
                updated_at=now,
            )
            for task in due[:limit]
        ]

    def _held(self, task_id: str, owner: str) -> OutboxTask | None:
        task = self._state.outbox.get(task_id)
        if task is None or task.state is not OutboxState.RUNNING or task.lease_owner != owner:
            return None
        return task

    async def renew(
        self, ids: Sequence[str], owner: str, *, lease_until: datetime, now: datetime
    ) -> set[str]:
        """Extend the leases ``owner`` still holds; return those ids."""
        log = self._log()
        held: set[str] = set()
        for task_id in ids:
            task = self._held(task_id, owner)
            if task is not None:
                self._replace(
                    task, log, lease_until=lease_until, available_at=lease_until, updated_at=now
                )
                held.add(task_id)
        return held

    async def complete(self, task_id: str, owner: str, now: datetime) -> bool:
        """Mark a held task done."""
        log = self._log()
        task = self._held(task_id, owner)
        if task is None:
            return False
        self._replace(
            task,
            log,
            state=OutboxState.DONE,
            lease_owner=None,
            lease_until=None,
            finished_at=now,
            updated_at=now,
        )
        return True

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
        log = self._log()
        task = self._held(task_id, owner)
        if task is None:
            return False
        if retry_at is None:
            self._replace(
                task,
                log,
                state=OutboxState.DEAD,
                lease_owner=None,
                lease_until=None,
                last_error=error,
                finished_at=now,
                updated_at=now,
            )
        else:
            self._replace(
                task,
                log,
                state=OutboxState.PENDING,
                lease_owner=None,
                lease_until=None,
                available_at=retry_at,
                last_error=error,
                updated_at=now,
            )
        return True

    async def get(self, task_id: str) -> OutboxTask | None:
        """The task with this id."""
        self._log()
        return self._state.outbox.get(task_id)

    async def list(
        self,
        *,
        states: Sequence[OutboxState] = (),
        kind: str | None = None,
        ordering_key: str | None = None,
        limit: int = 100,
    ) -> builtins.list[OutboxTask]:
        """Tasks in seq order, filtered."""
        self._log()
        wanted = set(states)
        found = sorted(
            (
                task
                for task in self._state.outbox.values()
                if (not wanted or task.state in wanted)
                and (kind is None or task.kind == kind)
                and (ordering_key is None or task.ordering_key == ordering_key)
            ),
            key=_by_seq,
        )
        return found[:limit]

    async def counts(self) -> dict[OutboxState, int]:
        """Tasks per state."""
        self._log()
        counts = dict.fromkeys(OutboxState, 0)
        for task in self._state.outbox.values():
            counts[task.state] += 1
        return counts

    async def redrive(self, ids: Sequence[str] | None, now: datetime) -> builtins.list[str]:
        """Make dead tasks pending again, due now, attempts reset."""
        log = self._log()
        outbox = self._state.outbox
        candidates = (
            sorted(outbox.values(), key=_by_seq)
            if ids is None
            else [outbox[task_id] for task_id in dict.fromkeys(ids) if task_id in outbox]
        )
        redriven: builtins.list[str] = []
        for task in candidates:
            if task.state is not OutboxState.DEAD:
                continue
            self._replace(
                task,
                log,
                state=OutboxState.PENDING,
                attempts=0,
                available_at=now,
                finished_at=None,
                updated_at=now,
            )
            redriven.append(task.id)
        return sorted(redriven)

    async def purge(self, finished_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` done tasks finished before then."""
        log = self._log()
        state = self._state
        old = [
            task
            for task in sorted(state.outbox.values(), key=_by_seq)
            if task.state is OutboxState.DONE
            and task.finished_at is not None
            and task.finished_at < finished_before
        ][:limit]
        for task in old:
            self._put(state.outbox, task.id, None, log)
            self._put(state.outbox_keys, task.key, None, log)
        return len(old)


def _restore(table: dict[str, object], key: str, previous: object | None) -> None:
    if previous is None:
        table.pop(key, None)
    else:
        table[key] = previous
