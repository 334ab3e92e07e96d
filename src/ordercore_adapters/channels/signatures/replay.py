"""Replay protection by message id: a bounded, in-memory set of recently seen ids.

A verifier consults the guard only after the signature held, so forged deliveries
cannot fill it. The guard lives in one process: several worker processes each keep
their own, so a replay sent to another process passes it; a shared store (SQL, Redis)
can stand in by implementing :class:`ReplayCheck`. Either way the core's ingest dedup
on (channel, external order id) is what makes a replay harmless in the end; the guard
rejects it early and names it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from ordercore.errors import SignatureInvalid
from ordercore.ports.clock import Clock, SystemClock

from .helpers import shown

__all__ = ["ReplayCheck", "ReplayGuard"]


@runtime_checkable
class ReplayCheck(Protocol):
    """What a verifier needs from a replay guard."""

    def check(self, *message_ids: str) -> None:
        """Remember the ids; SignatureInvalid if every one of them was seen recently."""
        ...

    def forget(self, *message_ids: str) -> None:
        """Drop the ids, so the platform's retry of a delivery we failed to handle passes."""
        ...


class ReplayGuard:
    """Message ids seen within ``horizon``, at most ``capacity`` of them (oldest go first).

    ``check`` rejects a delivery only when *every* id it carries was seen within the
    horizon: a batch that mixes new messages with already-seen ones is the platform
    re-sending, and its new messages must get through. Past the horizon an id is
    accepted again. When more than ``capacity`` ids arrive within one horizon the
    oldest are forgotten early; size it above the peak delivery rate times the horizon.
    Thread-safe; the clock is injected so tests control it.
    """

    def __init__(
        self,
        horizon: timedelta = timedelta(hours=24),
        capacity: int = 100_000,
        clock: Clock | None = None,
    ) -> None:
        if horizon <= timedelta(0):
            raise ValueError(f"horizon must be positive, got {horizon}")
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.horizon = horizon
        self.capacity = capacity
        self._clock: Clock = clock or SystemClock()
        self._seen: OrderedDict[str, datetime] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ReplayGuard(horizon={self.horizon}, capacity={self.capacity}, seen={len(self)})"

    def __len__(self) -> int:
        """How many ids are remembered right now (expired ones may linger until a check)."""
        return len(self._seen)

    def __contains__(self, message_id: object) -> bool:
        """Whether ``message_id`` was seen within the horizon (remembers nothing)."""
        with self._lock:
            self._expire(self._clock.now())
            return message_id in self._seen

    def check(self, *message_ids: str) -> None:
        """Remember the ids; SignatureInvalid if every one was seen within the horizon."""
        if not message_ids:
            raise ValueError("check needs at least one message id")
        with self._lock:
            now = self._clock.now()
            self._expire(now)
            if all(message_id in self._seen for message_id in message_ids):
                first = self._seen[message_ids[0]]
                raise SignatureInvalid(
                    f"replayed message {shown(message_ids[0])}"
                    + (f" (and {len(message_ids) - 1} more)" if len(message_ids) > 1 else "")
                    + f": first seen {first.isoformat()}, within the {self.horizon} horizon"
                )
            for message_id in message_ids:
                self._seen.setdefault(message_id, now)
            while len(self._seen) > self.capacity:
                self._seen.popitem(last=False)

    def forget(self, *message_ids: str) -> None:
        """Drop the ids (call it when handling a verified delivery failed)."""
        with self._lock:
            for message_id in message_ids:
                self._seen.pop(message_id, None)

    def _expire(self, now: datetime) -> None:
        # Insertion order is arrival order, so expired ids are all at the front.
        while self._seen:
            oldest, seen_at = next(iter(self._seen.items()))
            if now - seen_at < self.horizon:
                break
            del self._seen[oldest]
