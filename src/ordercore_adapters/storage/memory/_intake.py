"""The intake repository of the memory storage: cursors, ledger, rejects, deliveries, reviews.

Like the other repositories, every change is applied in place under the storage's lock
and logged, so it is kept or undone together with the rest of its unit of work (a
cursor never survives the rollback of the orders it covers).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ordercore.domain.channels import ChannelTokens
from ordercore.domain.health import ReviewEntry
from ordercore.domain.intake import Cursor, Feed, RejectedRecord, SyncRun

from ._state import MemoryRepository

__all__ = ["MemoryIntake"]


def _newest_first(run: SyncRun) -> tuple[datetime, str]:
    return (run.started_at, run.id)


def _oldest_first(record: RejectedRecord) -> tuple[datetime, str]:
    return (record.rejected_at, record.id)


def _lowest_first(entry: ReviewEntry) -> tuple[int, datetime, str]:
    return (entry.score, entry.entered_at, entry.order_id)


class MemoryIntake(MemoryRepository):
    """Channel intake bookkeeping of a memory unit of work.

    Implements :class:`ordercore.ports.storage.IntakeRepository`.
    """

    __slots__ = ()

    async def cursor(self, channel: str, feed: Feed) -> Cursor | None:
        """Where the channel's feed is complete up to, if it ever completed a window."""
        self._log()
        return self._state.cursors.get((channel, Feed(feed)))

    async def advance_cursor(self, cursor: Cursor) -> bool:
        """Move the feed's cursor to ``cursor.position`` if that is later; False otherwise."""
        log = self._log()
        cursors = self._state.cursors
        key = (cursor.channel, cursor.feed)
        current = cursors.get(key)
        if current is not None and current.position >= cursor.position:
            return False
        cursors[key] = cursor
        log.append((self._restore, cursors, key, current))
        return True

    async def save_run(self, run: SyncRun) -> None:
        """Insert or replace a ledger entry (keyed by run id)."""
        log = self._log()
        runs = self._state.runs
        previous = runs.get(run.id)
        runs[run.id] = run
        log.append((self._restore, runs, run.id, previous))

    async def runs(self, channel: str | None = None, *, limit: int = 50) -> list[SyncRun]:
        """Ledger entries, newest first (by started_at, then id), optionally of one channel."""
        self._log()
        if limit <= 0:
            return []
        runs = self._state.runs.values()
        chosen = runs if channel is None else [run for run in runs if run.channel == channel]
        return sorted(chosen, key=_newest_first, reverse=True)[:limit]

    async def add_rejects(self, records: Sequence[RejectedRecord]) -> None:
        """Keep raw payloads for replay; a record whose id is already kept is skipped."""
        log = self._log()
        rejects = self._state.rejects
        for record in records:
            if record.id not in rejects:
                rejects[record.id] = record
                log.append((self._restore, rejects, record.id, None))

    async def rejects(
        self, channel: str | None = None, *, unresolved_only: bool = True, limit: int = 100
    ) -> list[RejectedRecord]:
        """Kept rejects, oldest first, optionally of one channel and only unresolved ones."""
        self._log()
        if limit <= 0:
            return []
        chosen = [
            record
            for record in self._state.rejects.values()
            if (channel is None or record.channel == channel)
            and not (unresolved_only and record.resolved_at is not None)
        ]
        return sorted(chosen, key=_oldest_first)[:limit]

    async def resolve_reject(self, reject_id: str, at: datetime) -> bool:
        """Mark a reject replayed successfully; False when unknown or already resolved."""
        log = self._log()
        rejects = self._state.rejects
        record = rejects.get(reject_id)
        if record is None or record.resolved_at is not None:
            return False
        rejects[reject_id] = record.model_copy(update={"resolved_at": at})
        log.append((self._restore, rejects, reject_id, record))
        return True

    async def enqueue_reviews(self, entries: Sequence[ReviewEntry]) -> None:
        """Put orders in the review queue, or refresh their score and reasons if queued."""
        log = self._log()
        reviews = self._state.reviews
        for entry in entries:
            current = reviews.get(entry.order_id)
            entered_at = entry.entered_at
            if current is not None and current.resolved_at is None:
                entered_at = current.entered_at
            if entered_at != entry.entered_at or entry.resolved_at is not None:
                entry = entry.model_copy(update={"entered_at": entered_at, "resolved_at": None})
            reviews[entry.order_id] = entry
            log.append((self._restore, reviews, entry.order_id, current))

    async def review_queue(
        self, channel: str | None = None, *, limit: int = 100
    ) -> list[ReviewEntry]:
        """Unresolved entries, lowest score first (then oldest), optionally of one channel."""
        self._log()
        if limit <= 0:
            return []
        chosen = [
            entry
            for entry in self._state.reviews.values()
            if entry.resolved_at is None and (channel is None or entry.channel == channel)
        ]
        return sorted(chosen, key=_lowest_first)[:limit]

    async def resolve_review(self, order_id: str, at: datetime) -> bool:
        """Take an order off the queue; False when it is not queued (or already resolved)."""
        log = self._log()
        reviews = self._state.reviews
        entry = reviews.get(order_id)
        if entry is None or entry.resolved_at is not None:
            return False
        reviews[order_id] = entry.model_copy(update={"resolved_at": at})
        log.append((self._restore, reviews, order_id, entry))
        return True

    async def remember_deliveries(
        self, channel: str, message_ids: Sequence[str], at: datetime
    ) -> set[str]:
        """Record webhook message ids; return those not seen before (the rest are replays)."""
        log = self._log()
        deliveries = self._state.deliveries
        fresh: set[str] = set()
        for message_id in message_ids:
            key = (channel, message_id)
            if key not in deliveries:
                deliveries[key] = at
                fresh.add(message_id)
                log.append((self._restore, deliveries, key, None))
        return fresh

    # -- channel tokens (refreshed credentials) ------------------------------------------

    async def save_channel_tokens(self, tokens: ChannelTokens) -> bool:
        """Keep refreshed tokens unless newer ones of the same origin are stored."""
        log = self._log()
        saved = self._state.channel_tokens
        current = saved.get(tokens.channel)
        if (
            current is not None
            and current.origin == tokens.origin
            and current.refreshed_at >= tokens.refreshed_at
        ):
            return False
        saved[tokens.channel] = tokens
        log.append((self._restore, saved, tokens.channel, current))
        return True

    async def load_channel_tokens(self, channel: str) -> ChannelTokens | None:
        """The channel's saved tokens, if any."""
        self._log()
        return self._state.channel_tokens.get(channel)

    @staticmethod
    def _restore(table: dict[object, object], key: object, previous: object | None) -> None:
        if previous is None:
            del table[key]
        else:
            table[key] = previous
