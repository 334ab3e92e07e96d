"""Records of channel intake: cursors, the sync ledger, rejected payloads, upsert outcomes.

The ledger is for operators and auditors: it holds counts, windows, cursors and error
messages, never a secret and never a customer's name, phone or address (messages are
masked with :func:`ordercore.domain.privacy.mask_text` before they are recorded).
Rejected raw payloads are kept whole, in their own table, so they can be replayed.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ordercore.domain.channels import CredentialState, RecordKind
from ordercore.domain.orders import Order, OrderStatus

__all__ = [
    "Cursor",
    "Feed",
    "RejectedRecord",
    "RunStatus",
    "SyncRun",
    "UpsertOutcome",
    "merge_platform_version",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Feed(StrEnum):
    """What an incremental sync follows on a channel."""

    ORDERS = "orders"
    AFTER_SALES = "after_sales"


class Cursor(BaseModel):
    """How far a channel's feed is complete: every change before ``position`` is stored."""

    model_config = _FROZEN

    channel: str
    feed: Feed
    position: datetime
    updated_at: datetime


class RunStatus(StrEnum):
    """How a sync run ended."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    """Some windows completed and the cursor moved up to them; a later window failed."""
    FAILED = "failed"
    """Nothing completed; the cursor did not move."""
    PAUSED = "paused"
    """The channel's credentials expired; it waits for re-authorisation."""


class SyncRun(BaseModel):
    """One sync run of one channel feed, as the ledger keeps it."""

    model_config = _FROZEN

    id: str
    channel: str
    feed: Feed = Feed.ORDERS
    trigger: str = "poll"
    """poll, webhook, import, replay or reconcile."""
    status: RunStatus = RunStatus.RUNNING
    started_at: datetime
    finished_at: datetime | None = None
    windows: Annotated[int, Field(ge=0)] = 0
    pages: Annotated[int, Field(ge=0)] = 0
    fetched: Annotated[int, Field(ge=0)] = 0
    created: Annotated[int, Field(ge=0)] = 0
    updated: Annotated[int, Field(ge=0)] = 0
    unchanged: Annotated[int, Field(ge=0)] = 0
    stale: Annotated[int, Field(ge=0)] = 0
    rejected: Annotated[int, Field(ge=0)] = 0
    cursor_before: datetime | None = None
    cursor_after: datetime | None = None
    credential_state: CredentialState | None = None
    errors: tuple[str, ...] = ()
    """Masked messages: no secrets, no customer names, phones or addresses."""


class RejectedRecord(BaseModel):
    """A raw payload that could not be mapped or stored, kept for replay."""

    model_config = _FROZEN

    id: str
    channel: str
    kind: RecordKind
    external_id: str
    modified_at: datetime
    payload: dict[str, Any]
    reason: str
    run_id: str | None = None
    rejected_at: datetime
    resolved_at: datetime | None = None


class UpsertOutcome(StrEnum):
    """What storing one order version did (dedup key: channel + external id)."""

    CREATED = "created"
    UPDATED = "updated"
    """A newer version (later platform modification time) replaced the stored one."""
    UNCHANGED = "unchanged"
    """The same version again (a poll and a webhook, or a repeated page)."""
    STALE = "stale"
    """An older version than the stored one: ignored."""


def merge_platform_version(stored: Order | None, incoming: Order, at: datetime) -> Order:
    """The order to store when a platform sends ``incoming`` and we hold ``stored``.

    A new order is stored as it came. A newer platform version replaces the platform's
    data (lines, receiver, address, remark, fees) but keeps our identity, version and
    history, and our status where fulfilment is ahead of the platform: a platform "paid"
    moves a pending order to paid; a platform "cancelled" cancels an order that can still
    be cancelled; anything else keeps our status. An older or equal version changes
    nothing (the storage reports it as stale or unchanged).
    """
    if stored is None:
        return incoming
    if not _is_newer(incoming.source_modified_at, stored.source_modified_at):
        return stored
    merged = incoming.model_copy(
        update={
            "id": stored.id,
            "status": stored.status,
            "status_history": stored.status_history,
            "version": stored.version,
            "created_at": stored.created_at,
            "updated_at": max(stored.updated_at, incoming.updated_at),
        }
    )
    target = incoming.status
    if (
        target is not merged.status
        and target in merged.allowed_next()
        and target
        in (
            OrderStatus.PAID,
            OrderStatus.CANCELLED,
        )
    ):
        merged = merged.transition_to(target, at, reason=f"{incoming.channel} says {target}")
    return merged


def _is_newer(candidate: datetime | None, current: datetime | None) -> bool:
    if candidate is None:
        return False
    return current is None or candidate > current
