"""The async token bucket: per-key rates, bursts, refusal past max_wait, pauses."""

from __future__ import annotations

import pytest

from ordercore.errors import InvalidInput, RateLimited
from ordercore.resilience import ManualTime, RateLimiter

pytestmark = pytest.mark.anyio


async def test_calls_for_one_key_are_spaced_by_the_rate(time: ManualTime) -> None:
    """At 2 calls/s, the second and third calls for a shop wait 0.5s each."""
    limiter = RateLimiter(2.0, time=time)
    for _ in range(3):
        await limiter.acquire("shop-1")
    assert time.sleeps == pytest.approx([0.5, 0.5])


async def test_keys_have_separate_buckets(time: ManualTime) -> None:
    """A busy shop does not slow another shop down."""
    limiter = RateLimiter(1.0, time=time)
    await limiter.acquire("shop-1")
    await limiter.acquire("shop-2")
    assert time.sleeps == []


async def test_a_burst_goes_through_at_once_then_the_rate_applies(time: ManualTime) -> None:
    """burst=3 lets three calls through without waiting; the fourth waits 1/rate."""
    limiter = RateLimiter(1.0, burst=3, time=time)
    for _ in range(4):
        await limiter.acquire()
    assert time.sleeps == pytest.approx([1.0])


async def test_tokens_refill_over_time(time: ManualTime) -> None:
    """After a full burst, two seconds at 1/s give back two tokens."""
    limiter = RateLimiter(1.0, burst=3, time=time)
    for _ in range(3):
        await limiter.acquire("k")
    time.advance(2)
    assert limiter.available("k") == pytest.approx(2.0)


async def test_a_wait_longer_than_max_wait_is_refused_and_takes_nothing(
    time: ManualTime,
) -> None:
    """With max_wait=0.1s a call needing 1s raises RateLimited and leaves the bucket as is."""
    limiter = RateLimiter(1.0, max_wait=0.1, service="taobao", time=time)
    await limiter.acquire("shop-1")
    before = limiter.delay("shop-1")
    with pytest.raises(RateLimited) as caught:
        await limiter.acquire("shop-1")
    assert caught.value.key == "shop-1"
    assert caught.value.wait == pytest.approx(1.0)
    assert limiter.delay("shop-1") == before


async def test_pause_holds_a_key_back(time: ManualTime) -> None:
    """A platform ban of 30s makes the next call for that shop wait 30s."""
    limiter = RateLimiter(10.0, burst=5, time=time)
    limiter.for_key("shop-1").pause(30)
    await limiter.for_key("shop-1").acquire()
    assert time.sleeps == pytest.approx([30.0])


def test_rate_must_be_positive() -> None:
    """A zero rate is refused, naming the field."""
    with pytest.raises(InvalidInput, match="rate: must be > 0"):
        RateLimiter(0)
