"""Fixtures of the resilience tests: manual time and pybreaker machines on it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pybreaker
import pytest
from _resilience_helpers import Service

from ordercore.resilience import Breaker, ManualTime, MemoryStateStore

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def time() -> ManualTime:
    return ManualTime(START)


@pytest.fixture
def make_breaker(time: ManualTime) -> Callable[..., Breaker]:
    """Build a Breaker on a fresh pybreaker machine; keyword options go to either."""

    def build(
        name: str = "courier.sf",
        *,
        fail_max: int = 3,
        reset_timeout: float = 30,
        success_threshold: int = 1,
        store: MemoryStateStore | None = None,
        listeners: list[Any] | None = None,
        **options: Any,
    ) -> Breaker:
        machine = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            success_threshold=success_threshold,
            state_storage=store or MemoryStateStore(name),
            listeners=listeners,
            name=name,
        )
        return Breaker(machine, time=time, **options)

    return build


@pytest.fixture
def service(time: ManualTime) -> Service:
    return Service(time)
