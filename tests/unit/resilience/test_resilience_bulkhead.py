"""The bulkhead and the per-call timeout."""

from __future__ import annotations

import anyio
import pytest

from ordercore.errors import BulkheadFull, CallTimedOut
from ordercore.resilience import Bulkhead, ErrorKind, Timeout, default_classifier

pytestmark = pytest.mark.anyio


async def test_calls_beyond_slots_and_queue_are_rejected() -> None:
    """One slot, one queue place: the third concurrent call is refused; the queued one runs."""
    bulkhead = Bulkhead(1, max_waiting=1, service="courier.sf")
    gate = anyio.Event()
    done: list[int] = []

    async def hold(index: int) -> None:
        await gate.wait()
        done.append(index)

    async with anyio.create_task_group() as tg:
        tg.start_soon(bulkhead.call, hold, 1)
        tg.start_soon(bulkhead.call, hold, 2)
        await anyio.wait_all_tasks_blocked()
        assert (bulkhead.in_flight, bulkhead.waiting) == (1, 1)
        with pytest.raises(BulkheadFull, match=r"courier\.sf"):
            await bulkhead.call(hold, 3)
        gate.set()
    assert sorted(done) == [1, 2]
    assert bulkhead.rejected == 1


async def test_a_waiter_gives_up_after_max_wait() -> None:
    """A queued call that gets no slot within max_wait is refused."""
    bulkhead = Bulkhead(1, max_waiting=5, max_wait=0.01)
    async with anyio.create_task_group() as tg:
        tg.start_soon(bulkhead.call, anyio.sleep_forever)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(BulkheadFull):
            await bulkhead.call(anyio.sleep, 0)
        tg.cancel_scope.cancel()
    assert bulkhead.in_flight == 0


async def test_a_failing_call_gives_its_slot_back() -> None:
    """After a call raised, the slot is free again."""
    bulkhead = Bulkhead(1)

    async def boom() -> None:
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError):
        await bulkhead.call(boom)
    assert bulkhead.in_flight == 0


async def test_nested_calls_in_one_task_take_two_slots() -> None:
    """A task may hold two slots of one bulkhead (no 'already holding' error)."""
    bulkhead = Bulkhead(2)
    async with bulkhead.slot(), bulkhead.slot():
        assert bulkhead.in_flight == 2


async def test_a_hung_call_times_out_and_is_transient() -> None:
    """A call that never answers is cancelled and raises CallTimedOut, a transient error."""
    with pytest.raises(CallTimedOut) as caught:
        await Timeout(0.01, service="courier.sf").call(anyio.sleep_forever)
    assert caught.value.service == "courier.sf"
    assert caught.value.operation == "sleep_forever"
    assert default_classifier(caught.value) is ErrorKind.TRANSIENT
