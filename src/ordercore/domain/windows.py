"""The window planner: which time windows an incremental sync asks a platform for.

Rules, each one a known way other tools lose or duplicate orders:

* Windows are half-open (``start <= t < end``) and contiguous: one window's end is the
  next one's start, so nothing falls into a one-second gap between them and nothing on a
  boundary is fetched twice *as a new change* (overlap is deliberate only below).
* Boundaries are whole seconds: platforms filter on second precision.
* The newest window ends ``lag`` behind the platform's clock (changes still settling).
* Each run starts ``lookback`` before the cursor, so a change the platform indexed late
  is seen on the next run; the sync dedups the overlap on (order id, modified time).
* No window is longer than the platform allows; nothing older than its history depth is
  asked for, and a range that fell out of that depth is reported as a gap, never skipped
  silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ordercore.domain.channels import ChannelLimits, TimeWindow

__all__ = ["WindowPlan", "plan_windows"]

_SECOND = timedelta(seconds=1)


def _floor_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _ceil_second(moment: datetime) -> datetime:
    floored = _floor_second(moment)
    return floored if floored == moment else floored + _SECOND


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """The windows to fetch, oldest first; ``horizon`` is where the cursor goes once all do."""

    windows: tuple[TimeWindow, ...]
    horizon: datetime
    gap: TimeWindow | None = None
    """A range older than the platform's history depth: it cannot be fetched any more."""


def plan_windows(
    *,
    cursor: datetime | None,
    platform_now: datetime,
    limits: ChannelLimits,
    first_sync_from: datetime | None = None,
) -> WindowPlan:
    """Plan the windows of one sync run.

    ``cursor`` is the horizon of the last complete run (None before the first run, which
    then starts at ``first_sync_from``, or one ``max_window`` back). ``platform_now`` is the
    platform's clock in UTC.
    """
    horizon = _floor_second(platform_now - limits.lag)
    if cursor is not None:
        start = cursor - limits.lookback
    elif first_sync_from is not None:
        start = first_sync_from
    else:
        start = horizon - limits.max_window
    start = _floor_second(start)
    gap: TimeWindow | None = None
    earliest = _ceil_second(platform_now - limits.history_depth)
    if start < earliest:
        gap = TimeWindow(start=start, end=earliest)
        start = earliest
    windows: list[TimeWindow] = []
    step = max(timedelta(seconds=int(limits.max_window.total_seconds())), _SECOND)
    while start < horizon:
        end = min(start + step, horizon)
        windows.append(TimeWindow(start=start, end=end))
        start = end
    return WindowPlan(tuple(windows), max(horizon, cursor or horizon), gap)
