"""The incremental-sync window planner."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from ordercore.domain.channels import ChannelLimits, RawRecord, TimeWindow
from ordercore.domain.windows import plan_windows

NOW = datetime(2026, 11, 11, 12, 0, 0, 750_000, tzinfo=UTC)
HALF_HOUR = ChannelLimits(max_window=timedelta(minutes=30), lag=timedelta(seconds=90))


def test_windows_are_contiguous_half_open_and_capped() -> None:
    """Each window starts where the last ended, none exceeds max_window, none is empty."""
    plan = plan_windows(
        cursor=datetime(2026, 11, 11, 9, 0, tzinfo=UTC), platform_now=NOW, limits=HALF_HOUR
    )
    windows = plan.windows
    assert windows[0].start == datetime(2026, 11, 11, 8, 50, tzinfo=UTC)  # 10 min lookback
    for before, after in itertools.pairwise(windows):
        assert before.end == after.start
    assert all(w.length <= timedelta(minutes=30) for w in windows)
    assert windows[-1].end == plan.horizon == datetime(2026, 11, 11, 11, 58, 30, tzinfo=UTC)


def test_boundaries_are_whole_seconds() -> None:
    """Platforms filter on seconds, so no boundary carries a fraction of one."""
    limits = ChannelLimits(max_window=timedelta(seconds=90.5), lag=timedelta(seconds=0.3))
    plan = plan_windows(cursor=NOW - timedelta(minutes=7), platform_now=NOW, limits=limits)
    for window in plan.windows:
        assert window.start.microsecond == 0
        assert window.end.microsecond == 0
        assert window.length <= timedelta(seconds=90)


def test_a_cursor_at_the_horizon_plans_only_the_lookback() -> None:
    """Right after a complete run, the next one re-reads just the lookback overlap."""
    first = plan_windows(cursor=None, platform_now=NOW, limits=HALF_HOUR)
    again = plan_windows(cursor=first.horizon, platform_now=NOW, limits=HALF_HOUR)
    assert [(w.start, w.end) for w in again.windows] == [
        (first.horizon - timedelta(minutes=10), first.horizon)
    ]


def test_history_older_than_the_platform_keeps_is_reported_as_a_gap() -> None:
    """A cursor older than the history depth yields a gap, never a silent skip."""
    limits = ChannelLimits(max_window=timedelta(days=1), history_depth=timedelta(days=3))
    plan = plan_windows(cursor=NOW - timedelta(days=5), platform_now=NOW, limits=limits)
    assert plan.gap is not None
    assert plan.gap.end == plan.windows[0].start
    assert plan.windows[0].start >= NOW - timedelta(days=3)


def test_first_sync_starts_where_asked() -> None:
    """Before any cursor exists, the first run starts at first_sync_from."""
    start = datetime(2026, 11, 10, tzinfo=UTC)
    plan = plan_windows(cursor=None, platform_now=NOW, limits=HALF_HOUR, first_sync_from=start)
    assert plan.windows[0].start == start
    assert len(plan.windows) == 72  # 36 hours in half-hour windows (minus the lag)


def test_local_times_are_refused_and_other_zones_become_utc() -> None:
    """Naive datetimes are an error; a +08:00 time is stored as the same instant in UTC."""
    with pytest.raises(ValidationError, match="timezone-aware"):
        TimeWindow(start=datetime(2026, 1, 1), end=datetime(2026, 1, 2))
    beijing = timezone(timedelta(hours=8))
    record = RawRecord(
        channel="taobao",
        external_id="1",
        modified_at=datetime(2026, 11, 11, 8, 0, tzinfo=beijing),
        payload={},
    )
    assert record.modified_at == datetime(2026, 11, 11, 0, 0, tzinfo=UTC)
    assert record.modified_at.tzinfo == UTC


def test_a_window_must_move_forward() -> None:
    """An empty or reversed window is refused."""
    with pytest.raises(ValidationError, match="end after it starts"):
        TimeWindow(start=NOW, end=NOW)
