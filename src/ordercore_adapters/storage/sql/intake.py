"""The intake repository: sync cursors, the sync ledger, kept rejects, webhook deliveries.

Everything runs in the unit's transaction, so a cursor advanced in the unit that stored
a window's orders is committed or rolled back with them. Each guarantee is one
conditional statement, decided by the database rather than by a read in Python:

* ``advance_cursor``: an upsert whose conflict branch writes only when the new position
  is later; RETURNING yields a row exactly when it inserted or moved.
* ``resolve_reject``: ``UPDATE ... WHERE resolved_at IS NULL``; the row count says
  whether this call resolved it.
* ``remember_deliveries``: ``INSERT ... ON CONFLICT DO NOTHING RETURNING message_id``;
  a message id another transaction recorded first (in any process) is a conflict, so
  each id is reported new exactly once. On PostgreSQL a concurrent insert of the same
  id waits for the other transaction and then conflicts (or inserts, if it rolled back);
  ids go in sorted order so two overlapping batches cannot deadlock.
* ``enqueue_reviews``: one upsert for the batch; its conflict branch re-opens a resolved
  entry (new ``entered_at``) or refreshes an unresolved one (``entered_at`` kept), decided
  on the row as the statement finds it. Rows go in order id order, one per order.
* ``resolve_review``: ``UPDATE ... WHERE resolved_at IS NULL``, like ``resolve_reject``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row

from ordercore.domain.channels import ChannelTokens
from ordercore.domain.health import ReviewEntry
from ordercore.domain.intake import Cursor, Feed, RejectedRecord, SyncRun
from ordercore_adapters.storage.sql.statements import Statements
from ordercore_adapters.storage.sql.tokens import from_row, to_row, token_statements

if TYPE_CHECKING:
    from ordercore_adapters.storage.sql.unit_of_work import SqlUnitOfWork

__all__ = ["SqlIntakeRepository"]


class SqlIntakeRepository:
    """Channel intake bookkeeping in SQL; each method is one worker-thread hop."""

    def __init__(self, uow: SqlUnitOfWork, sql: Statements) -> None:
        self._uow = uow
        self._sql = sql

    async def cursor(self, channel: str, feed: Feed) -> Cursor | None:
        """Where the channel's feed is complete up to, if it ever completed a window."""
        feed = Feed(feed)
        params = {"p_channel": channel, "p_feed": feed.value}
        row = await self._uow.run(lambda conn: conn.execute(self._sql.cursor, params).first())
        if row is None:
            return None
        return Cursor(channel=channel, feed=feed, position=row[0], updated_at=row[1])

    async def advance_cursor(self, cursor: Cursor) -> bool:
        """Move the feed's cursor to ``cursor.position`` if that is later; False otherwise."""
        params = {
            "p_channel": cursor.channel,
            "p_feed": cursor.feed.value,
            "p_position": cursor.position,
            "p_now": cursor.updated_at,
        }
        row = await self._uow.run(
            lambda conn: conn.execute(self._sql.advance_cursor, params).first()
        )
        return row is not None

    async def save_run(self, run: SyncRun) -> None:
        """Insert or replace a ledger entry (keyed by run id)."""
        row = run.model_dump()
        row.update(
            feed=run.feed.value,
            status=run.status.value,
            credential_state=None if run.credential_state is None else run.credential_state.value,
            errors=list(run.errors),
        )
        await self._uow.run(lambda conn: conn.execute(self._sql.save_run, row))

    async def runs(self, channel: str | None = None, *, limit: int = 50) -> list[SyncRun]:
        """Ledger entries, newest first (by started_at, then id), optionally of one channel."""
        if limit <= 0:
            return []
        params: dict[str, Any] = {"p_limit": limit}
        query = self._sql.runs
        if channel is not None:
            query = self._sql.runs_of_channel
            params["p_channel"] = channel
        rows = await self._uow.run(lambda conn: conn.execute(query, params).all())
        return [SyncRun.model_validate(_mapping(row)) for row in rows]

    async def add_rejects(self, records: Sequence[RejectedRecord]) -> None:
        """Keep raw payloads for replay; a record whose id is already kept is skipped."""
        if not records:
            return
        rows = [{**record.model_dump(), "kind": record.kind.value} for record in records]
        await self._uow.run(lambda conn: conn.execute(self._sql.add_rejects, rows))

    async def rejects(
        self, channel: str | None = None, *, unresolved_only: bool = True, limit: int = 100
    ) -> list[RejectedRecord]:
        """Kept rejects, oldest first, optionally of one channel and only unresolved ones."""
        if limit <= 0:
            return []
        query = self._sql.rejects[channel is not None, unresolved_only]
        params: dict[str, Any] = {"p_limit": limit}
        if channel is not None:
            params["p_channel"] = channel
        rows = await self._uow.run(lambda conn: conn.execute(query, params).all())
        return [RejectedRecord.model_validate(_mapping(row)) for row in rows]

    async def resolve_reject(self, reject_id: str, at: datetime) -> bool:
        """Mark a reject replayed successfully; False when unknown or already resolved."""
        params = {"p_id": reject_id, "p_now": at}
        hit = await self._uow.run(
            lambda conn: conn.execute(self._sql.resolve_reject, params).rowcount
        )
        return bool(hit)

    async def enqueue_reviews(self, entries: Sequence[ReviewEntry]) -> None:
        """Put orders in the review queue, or refresh their score and reasons if queued."""
        if not entries:
            return
        # One row per order (PostgreSQL refuses to update a row twice in one statement):
        # the same as applying them in turn, the first entry's time and the last's score.
        rows: dict[str, dict[str, Any]] = {}
        for entry in entries:
            first = rows.get(entry.order_id)
            rows[entry.order_id] = {
                "order_id": entry.order_id,
                "channel": entry.channel,
                "score": entry.score,
                "reasons": list(entry.reasons),
                "entered_at": entry.entered_at if first is None else first["entered_at"],
            }
        batch = [rows[order_id] for order_id in sorted(rows)]
        await self._uow.run(
            lambda conn: conn.execute(self._sql.enqueue_reviews, batch).scalars().all()
        )

    async def review_queue(
        self, channel: str | None = None, *, limit: int = 100
    ) -> list[ReviewEntry]:
        """Unresolved entries, lowest score first (then oldest), optionally of one channel."""
        if limit <= 0:
            return []
        params: dict[str, Any] = {"p_limit": limit}
        query = self._sql.review_queue
        if channel is not None:
            query = self._sql.review_queue_of_channel
            params["p_channel"] = channel
        rows = await self._uow.run(lambda conn: conn.execute(query, params).all())
        return [ReviewEntry.model_validate(_mapping(row)) for row in rows]

    async def resolve_review(self, order_id: str, at: datetime) -> bool:
        """Take an order off the queue; False when it is not queued (or already resolved)."""
        params = {"p_order": order_id, "p_now": at}
        hit = await self._uow.run(
            lambda conn: conn.execute(self._sql.resolve_review, params).rowcount
        )
        return bool(hit)

    async def remember_deliveries(
        self, channel: str, message_ids: Sequence[str], at: datetime
    ) -> set[str]:
        """Record webhook message ids; return those not seen before (the rest are replays)."""
        if not message_ids:
            return set()
        rows = [
            {"channel": channel, "message_id": message_id, "received_at": at}
            for message_id in sorted(set(message_ids))
        ]
        fresh = await self._uow.run(
            lambda conn: conn.execute(self._sql.remember_deliveries, rows).scalars().all()
        )
        return set(fresh)

    # -- channel tokens (refreshed credentials; see sql/tokens.py) -------------------------

    async def save_channel_tokens(self, tokens: ChannelTokens) -> bool:
        """Keep refreshed tokens unless newer ones of the same origin are stored."""
        statement = token_statements(self._uow.dialect).save
        row = to_row(tokens)
        saved = await self._uow.run(lambda conn: conn.execute(statement, row).first())
        return saved is not None

    async def load_channel_tokens(self, channel: str) -> ChannelTokens | None:
        """The channel's saved tokens, if any."""
        statement = token_statements(self._uow.dialect).load
        row = await self._uow.run(
            lambda conn: conn.execute(statement, {"p_channel": channel}).first()
        )
        return None if row is None else from_row(row)


def _mapping(row: Row[Any]) -> dict[str, Any]:
    return dict(row._mapping)
