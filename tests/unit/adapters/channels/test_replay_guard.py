"""The replay guard: a bounded, clock-driven memory of recently seen message ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ordercore.errors import SignatureInvalid
from ordercore.testing import ManualClock
from ordercore_adapters.channels.signatures import ReplayCheck, ReplayGuard

T0 = datetime(2026, 11, 11, tzinfo=UTC)
HORIZON = timedelta(minutes=10)


@pytest.fixture
def clock() -> ManualClock:
    """A clock at T0 that moves only when a test advances it."""
    return ManualClock(T0)


@pytest.fixture
def guard(clock: ManualClock) -> ReplayGuard:
    """A guard with a ten-minute horizon on the test clock."""
    return ReplayGuard(horizon=HORIZON, capacity=100, clock=clock)


def test_repeat_within_horizon_is_a_replay(guard: ReplayGuard, clock: ManualClock) -> None:
    """An id checked twice within the horizon raises, naming the id and when it was seen."""
    guard.check("m-1")
    clock.advance(HORIZON - timedelta(microseconds=1))
    with pytest.raises(SignatureInvalid, match=r"replayed message 'm-1': first seen 2026-11-11"):
        guard.check("m-1")


def test_repeat_after_horizon_passes(guard: ReplayGuard, clock: ManualClock) -> None:
    """Once the horizon has passed, the id is accepted again (and remembered anew)."""
    guard.check("m-1")
    clock.advance(HORIZON)
    guard.check("m-1")
    assert "m-1" in guard


def test_batch_is_a_replay_only_when_every_id_was_seen(guard: ReplayGuard) -> None:
    """A batch with one new id passes and remembers it; the same batch again raises."""
    guard.check("a")
    guard.check("a", "b")
    assert "b" in guard
    with pytest.raises(SignatureInvalid, match=r"replayed message 'a' \(and 1 more\)"):
        guard.check("a", "b")


def test_membership_test_remembers_nothing(guard: ReplayGuard) -> None:
    """Asking ``in`` does not record the id."""
    assert "m-1" not in guard
    guard.check("m-1")


def test_forget_lets_an_id_through_again(guard: ReplayGuard) -> None:
    """A forgotten id passes its next check."""
    guard.check("m-1")
    guard.forget("m-1", "never-seen")
    guard.check("m-1")
    assert len(guard) == 1


def test_capacity_forgets_the_oldest_first(clock: ManualClock) -> None:
    """Beyond its capacity the guard drops the oldest ids, keeping the newest."""
    guard = ReplayGuard(horizon=HORIZON, capacity=2, clock=clock)
    for message_id in ("a", "b", "c"):
        guard.check(message_id)
        clock.advance(timedelta(seconds=1))
    assert len(guard) == 2
    assert "a" not in guard
    assert "b" in guard
    assert "c" in guard


def test_expired_ids_are_dropped(guard: ReplayGuard, clock: ManualClock) -> None:
    """Ids older than the horizon leave memory at the next check."""
    guard.check("old")
    clock.advance(HORIZON)
    guard.check("new")
    assert len(guard) == 1


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"horizon": timedelta(0)}, "horizon must be positive"),
        ({"capacity": 0}, "capacity must be at least 1"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], reason: str) -> None:
    """A non-positive horizon or capacity is refused at construction."""
    with pytest.raises(ValueError, match=reason):
        ReplayGuard(**kwargs)  # type: ignore[arg-type]


def test_check_without_ids_is_refused(guard: ReplayGuard) -> None:
    """Checking no id at all is a programming error, not a pass."""
    with pytest.raises(ValueError, match="at least one message id"):
        guard.check()


def test_guard_satisfies_the_replay_check_protocol(guard: ReplayGuard) -> None:
    """ReplayGuard is a ReplayCheck, so a shared store can stand in for it."""
    assert isinstance(guard, ReplayCheck)
