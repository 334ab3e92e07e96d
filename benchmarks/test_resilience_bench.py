"""Overhead of the resilience pipeline: a call through every wrapper vs the bare call.

The call itself is an ``await asyncio.sleep(0)`` (one trip through the event loop, the
least a real I/O call costs), so the ratio is an upper bound: against a courier API
answering in milliseconds the overhead is a fraction of a percent. Bare and wrapped
batches are timed in one process, interleaved, best of several rounds; the ratio and
the added microseconds per call are in ``extra_info``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pybreaker
import pytest

from ordercore.resilience import (
    Breaker,
    Bulkhead,
    Pipeline,
    RateLimiter,
    RetryPolicy,
    ServiceGateway,
    SlowCallPolicy,
)

CALLS = 2_000
ROUNDS = 7


async def _dependency() -> int:
    await asyncio.sleep(0)
    return 1


def _pipelines() -> dict[str, Callable[[], Awaitable[int]]]:
    def breaker(name: str) -> Breaker:
        machine = pybreaker.CircuitBreaker(name=name, fail_max=5, reset_timeout=30)
        return Breaker(machine, slow_calls=SlowCallPolicy(threshold=1.0))

    breaker_only = Pipeline(service="breaker-only", breaker=breaker("breaker-only"))
    full = Pipeline(
        service="full",
        timeout=5.0,
        retry=RetryPolicy(attempts=3),
        breaker=breaker("full"),
        rate_limiter=RateLimiter(1e9, burst=1_000_000),
        bulkhead=Bulkhead(64),
        gateway=ServiceGateway(),
    )
    return {
        "bare": _dependency,
        "breaker": lambda: breaker_only.call(_dependency),
        "full": lambda: full.call(_dependency),
    }


def _batch(runner: asyncio.Runner, call: Callable[[], Awaitable[int]]) -> float:
    async def many() -> None:
        for _ in range(CALLS):
            await call()

    began = time.perf_counter()
    runner.run(many())
    return time.perf_counter() - began


def test_pipeline_overhead_vs_bare_call(benchmark: pytest.FixtureRequest) -> None:
    """Full pipeline (timeout, retry, breaker, rate limit, bulkhead, gateway) vs bare call."""
    calls = _pipelines()
    best = dict.fromkeys(calls, float("inf"))
    with asyncio.Runner() as runner:
        for _ in range(ROUNDS):
            for name, call in calls.items():
                best[name] = min(best[name], _batch(runner, call))
        benchmark.pedantic(  # type: ignore[attr-defined]
            _batch, args=(runner, calls["full"]), rounds=3
        )
    per_call_us = {name: seconds / CALLS * 1e6 for name, seconds in best.items()}
    info = benchmark.extra_info  # type: ignore[attr-defined]
    info["bare_us"] = round(per_call_us["bare"], 2)
    info["breaker_us"] = round(per_call_us["breaker"], 2)
    info["full_us"] = round(per_call_us["full"], 2)
    info["full_vs_bare"] = round(best["full"] / best["bare"], 1)
    info["breaker_vs_bare"] = round(best["breaker"] / best["bare"], 1)
    print(
        f"\nper call: bare {per_call_us['bare']:.1f} us, breaker {per_call_us['breaker']:.1f} us "
        f"({info['breaker_vs_bare']}x), full {per_call_us['full']:.1f} us "
        f"({info['full_vs_bare']}x)"
    )
