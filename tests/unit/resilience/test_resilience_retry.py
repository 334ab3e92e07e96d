"""Retries: backoff with jitter, transient errors only, retry-after hints, limits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from _resilience_helpers import Service

from ordercore.errors import ChannelUnavailable, InvalidInput, InvalidOrder
from ordercore.resilience import ManualTime, Retry, RetryPolicy

pytestmark = pytest.mark.anyio


class Throttled(ConnectionError):
    """A 429 with a Retry-After header."""

    def __init__(self, retry_after: float | timedelta) -> None:
        super().__init__("429")
        self.retry_after = retry_after


def _retry(time: ManualTime, draw: float = 0.0, **policy: float | int | None) -> Retry:
    return Retry(RetryPolicy(**policy), time=time, rng=lambda: draw)  # type: ignore[arg-type]


async def test_transient_errors_are_retried_with_exponential_backoff(
    service: Service, time: ManualTime
) -> None:
    """Two refused connections, then success: waits 0.1s and 0.2s, three calls."""
    service.fail_next(ConnectionError("refused"), ChannelUnavailable("502"))
    retry = _retry(time, attempts=5, initial=0.1, multiplier=2.0, max_wait=5.0)
    assert await retry.call(service.work) == "svc:ok"
    assert service.calls == 3
    assert time.sleeps == pytest.approx([0.1, 0.2])


async def test_backoff_is_capped_at_max_wait(service: Service, time: ManualTime) -> None:
    """Waits grow 1, 2, 4 then stay at max_wait=5."""
    service.fail_next(*(TimeoutError() for _ in range(5)))
    retry = _retry(time, attempts=6, initial=1.0, max_wait=5.0, deadline=None)
    await retry.call(service.work)
    assert time.sleeps == pytest.approx([1.0, 2.0, 4.0, 5.0, 5.0])


async def test_jitter_takes_a_random_share_off_the_wait(service: Service, time: ManualTime) -> None:
    """With full jitter and a draw of 0.25 the 0.4s wait becomes 0.3s."""
    service.fail_next(TimeoutError())
    retry = _retry(time, draw=0.25, attempts=2, initial=0.4, jitter=1.0)
    await retry.call(service.work)
    assert time.sleeps == pytest.approx([0.3])


async def test_business_errors_are_not_retried(service: Service, time: ManualTime) -> None:
    """An invalid order is raised after one call, without waiting."""
    service.fail_next(InvalidOrder([]))
    with pytest.raises(InvalidOrder):
        await _retry(time, attempts=5).call(service.work)
    assert service.calls == 1
    assert time.sleeps == []


async def test_permanent_errors_are_not_retried(service: Service, time: ManualTime) -> None:
    """An unexpected exception (a bug, a bad response) is not retried."""
    service.fail_next(RuntimeError("unexpected payload"))
    with pytest.raises(RuntimeError):
        await _retry(time, attempts=5).call(service.work)
    assert service.calls == 1


async def test_gives_up_after_max_attempts_with_the_last_error(
    service: Service, time: ManualTime
) -> None:
    """Three attempts, three failures: the third error is raised as it was."""
    service.fail_next(ConnectionError("1"), ConnectionError("2"), ConnectionError("3"))
    with pytest.raises(ConnectionError, match="3"):
        await _retry(time, attempts=3).call(service.work)
    assert service.calls == 3


async def test_a_retry_after_hint_replaces_the_backoff(service: Service, time: ManualTime) -> None:
    """A 429 asking for 7s (as seconds or a timedelta) is waited for exactly."""
    service.fail_next(Throttled(7), Throttled(timedelta(seconds=2)))
    await _retry(time, attempts=3, initial=0.1).call(service.work)
    assert time.sleeps == pytest.approx([7.0, 2.0])


async def test_a_retry_after_hint_over_the_limit_ends_the_retries(
    service: Service, time: ManualTime
) -> None:
    """A hint of 120s with max_retry_after=60s raises at once instead of waiting."""
    service.fail_next(Throttled(120))
    with pytest.raises(Throttled):
        await _retry(time, attempts=3, max_retry_after=60).call(service.work)
    assert service.calls == 1
    assert time.sleeps == []


async def test_the_deadline_bounds_the_whole_call(service: Service, time: ManualTime) -> None:
    """With a 1s deadline, waits of 0.4s then 0.8s: the second would pass it, so stop."""
    service.fail_next(*(TimeoutError() for _ in range(5)))
    with pytest.raises(TimeoutError):
        await _retry(time, attempts=10, initial=0.4, deadline=1.0).call(service.work)
    assert service.calls == 2
    assert time.sleeps == pytest.approx([0.4])


def test_policy_rejects_bad_values() -> None:
    """Zero attempts is refused, naming the field and value."""
    with pytest.raises(InvalidInput, match=r"attempts: must be >= 1 \(got 0\)"):
        RetryPolicy(attempts=0)
