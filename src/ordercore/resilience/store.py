"""Where a breaker keeps its state, so processes that share a store share one circuit.

:class:`StateStore` is the storage surface of pybreaker (``CircuitBreakerStorage``), so
any implementation can be handed to ``pybreaker.CircuitBreaker(state_storage=...)``,
and pybreaker's own ``CircuitRedisStorage`` already satisfies it. A store shared by
several processes (Redis, or a database row) makes them open and close together.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = ["MemoryStateStore", "StateStore"]


@runtime_checkable
class StateStore(Protocol):
    """State, failure and success counters and the time the circuit last opened."""

    @property
    def name(self) -> str: ...

    @property
    def state(self) -> str: ...

    @state.setter
    def state(self, state: str) -> None: ...

    @property
    def counter(self) -> int: ...

    @property
    def success_counter(self) -> int: ...

    @property
    def opened_at(self) -> datetime | None: ...

    @opened_at.setter
    def opened_at(self, at: datetime) -> None: ...

    def increment_counter(self) -> None: ...

    def reset_counter(self) -> None: ...

    def increment_success_counter(self) -> None: ...

    def reset_success_counter(self) -> None: ...


class MemoryStateStore:
    """A store in this process's memory: shared by the breakers (and threads) holding it."""

    def __init__(self, name: str = "memory", state: str = "closed") -> None:
        self._name = name
        self._state = state
        self._counter = 0
        self._success_counter = 0
        self._opened_at: datetime | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """A label for logs."""
        return self._name

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open``."""
        return self._state

    @state.setter
    def state(self, state: str) -> None:
        self._state = state

    @property
    def counter(self) -> int:
        """Consecutive failures."""
        return self._counter

    @property
    def success_counter(self) -> int:
        """Consecutive successful trial calls while half-open."""
        return self._success_counter

    @property
    def opened_at(self) -> datetime | None:
        """When the circuit last opened."""
        return self._opened_at

    @opened_at.setter
    def opened_at(self, at: datetime) -> None:
        self._opened_at = at

    def increment_counter(self) -> None:
        """Count one more failure."""
        with self._lock:
            self._counter += 1

    def reset_counter(self) -> None:
        """Forget the failures."""
        with self._lock:
            self._counter = 0

    def increment_success_counter(self) -> None:
        """Count one more successful trial."""
        with self._lock:
            self._success_counter += 1

    def reset_success_counter(self) -> None:
        """Forget the successful trials."""
        with self._lock:
            self._success_counter = 0
