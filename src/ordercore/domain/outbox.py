"""Durable tasks of the outbox: work that must happen after a state change, but not inline.

A task is written in the same unit of work as the change that calls for it (a waybill
to print once an order is allocated, an event to publish once stock is reserved), so
either both are kept or neither is. Workers run tasks later, at least once::

    pending --claim--> running --complete--> done
       ^                  |
       |    retry_at      |--fail(retry_at)--> pending (due at retry_at)
       +------------------+--fail(dead)------> dead --redrive--> pending

* ``key`` is the task's idempotency key, unique in the storage: enqueueing the same key
  twice stores one task. Handlers pass it on (an Idempotency-Key header, a message id)
  so that a task run twice has its effect once.
* ``ordering_key`` (an order id, say) orders dependent steps: a task is not claimable
  while an earlier task (lower ``seq``) with the same ordering key is pending or running.
* A claim is a lease: ``lease_owner`` holds the task until ``lease_until``. A worker that
  crashed stops renewing; when the lease runs out another worker claims the task again.
  Only the current ``lease_owner`` may complete or fail it.
* ``available_at`` is when the task may next be claimed: its due time while pending,
  its lease expiry while running. One index over it finds every claimable task.

Payloads are plain JSON and never hold personal data: a task names the order, and its
handler reads what it needs from the order store. Outbox rows are listed by operators
and relayed to other systems, where names, phones and addresses must not appear.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, ValidationError

from ordercore.domain.privacy import is_personal_field, mask_text
from ordercore.errors import FieldError, InvalidOutboxTask

__all__ = [
    "KIND_PATTERN",
    "MAX_ERROR_LENGTH",
    "OPEN_STATES",
    "OutboxState",
    "OutboxTask",
    "find_personal_fields",
    "scrub_error",
]

KIND_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
"""Task kinds are dotted lower-case names: ``waybill.print``, ``ordercore.event``."""

MAX_ERROR_LENGTH = 2000
"""``last_error`` keeps at most this many characters (the head of the message)."""

_SECRET_PAIR = re.compile(
    r"(?i)\b(password|passwd|secret|token|api[_-]?key|app[_-]?secret|authorization|sign)"
    r"(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s&,;]+)"
)
_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]+:)[^@\s]+@")


class OutboxState(StrEnum):
    """Where a task is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


OPEN_STATES = (OutboxState.PENDING, OutboxState.RUNNING)


def find_personal_fields(value: Any, path: str = "") -> list[str]:
    """The paths of every key in a JSON value whose name says it holds personal data."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if is_personal_field(str(key)):
                found.append(where)
            found.extend(find_personal_fields(item, where))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found.extend(find_personal_fields(item, f"{path}[{index}]"))
    return found


def scrub_error(error: str) -> str:
    """An error message fit to store and show: personal data masked, secrets removed, cut short."""
    text = _URL_PASSWORD.sub(r"\1***@", error)
    text = _SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    text = mask_text(text)
    if len(text) > MAX_ERROR_LENGTH:
        text = text[: MAX_ERROR_LENGTH - 1] + "…"
    return text


class OutboxTask(BaseModel):
    """One durable task. Build new ones with :meth:`new`; storages set ``seq``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[str, Field(min_length=1, max_length=64)]
    kind: Annotated[str, Field(pattern=KIND_PATTERN, max_length=100)]
    key: Annotated[str, Field(min_length=1, max_length=200)]
    """Idempotency key, unique in the storage."""
    ordering_key: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    payload: dict[str, JsonValue] = Field(default_factory=dict)
    state: OutboxState = OutboxState.PENDING
    attempts: Annotated[int, Field(ge=0)] = 0
    """Claims so far (each claim is one attempt, also one cut short by a crash)."""
    created_at: AwareDatetime
    updated_at: AwareDatetime
    available_at: AwareDatetime
    lease_owner: str | None = None
    lease_until: AwareDatetime | None = None
    last_error: str | None = None
    finished_at: AwareDatetime | None = None
    seq: Annotated[int, Field(ge=0)] = 0
    """Insertion order, assigned by the storage (0 until stored)."""

    @classmethod
    def new(
        cls,
        *,
        id: str,
        kind: str,
        key: str,
        payload: dict[str, Any],
        now: datetime,
        ordering_key: str | None = None,
        available_at: datetime | None = None,
    ) -> Self:
        """A pending task due at ``available_at`` (default: now).

        Raises InvalidOutboxTask when a field breaks its rule: a kind that is not a
        dotted lower-case name, an empty key, a payload that is not JSON or carries a
        personal field (name, phone, address...).
        """
        errors: list[FieldError] = []
        try:
            text = json.dumps(payload, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            errors.append(FieldError("payload", f"must be plain JSON ({exc})", type(payload)))
            text = "{}"
        errors.extend(
            FieldError(
                f"payload.{path}",
                "personal data may not travel in a task; pass the order id and let the "
                "handler read the order",
                "***",
            )
            for path in find_personal_fields(payload)
        )
        if errors:
            raise InvalidOutboxTask(errors)
        try:
            return cls(
                id=id,
                kind=kind,
                key=key,
                ordering_key=ordering_key,
                payload=json.loads(text),
                created_at=now,
                updated_at=now,
                available_at=available_at or now,
            )
        except ValidationError as exc:
            raise InvalidOutboxTask(
                FieldError(
                    ".".join(str(part) for part in error["loc"]),
                    error["msg"],
                    error.get("input"),
                )
                for error in exc.errors()
            ) from None

    @property
    def is_open(self) -> bool:
        """Pending or running: not yet done or dead."""
        return self.state in OPEN_STATES
