"""Asia/Shanghai wall-clock time to the second, as TOP, JOS and Pinduoduo speak it.

``2026-11-11 08:00:00`` is the shape of TOP's ``timestamp`` parameter, its increment
API's bounds and every time in its answers; JOS and Pinduoduo use the same shape.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from ordercore.domain.channels import TimeWindow

__all__ = ["SHANGHAI", "format_top_time", "inclusive_bounds", "parse_top_time"]

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
_TOP_TIME = "%Y-%m-%d %H:%M:%S"
_SECOND: Final = timedelta(seconds=1)


def format_top_time(moment: datetime) -> str:
    """An aware time as TOP's Asia/Shanghai wall clock (sub-second part dropped)."""
    if moment.tzinfo is None:
        raise ValueError(f"taobao: a time must be timezone-aware, got naive {moment}")
    return moment.astimezone(SHANGHAI).strftime(_TOP_TIME)


def parse_top_time(text: str) -> datetime:
    """TOP's ``yyyy-MM-dd HH:mm:ss`` (Asia/Shanghai) as an aware UTC time."""
    try:
        local = datetime.strptime(text.strip(), _TOP_TIME)
    except ValueError:
        raise ValueError(f"taobao: not a TOP time like 2026-11-11 08:00:00: {text!r}") from None
    return local.replace(tzinfo=SHANGHAI).astimezone(UTC)


def inclusive_bounds(window: TimeWindow) -> tuple[datetime, datetime]:
    """The inclusive whole-second bounds (UTC) a platform is asked for, for a half-open window.

    ``start <= t < end`` over whole-second times is ``ceil(start) <= t <= ceil(end) - 1 s``.
    Adjacent windows therefore ask for adjacent, non-overlapping seconds. A window with no
    whole second in it gives ``end < start``.
    """
    return _ceil_second(window.start), _ceil_second(window.end) - _SECOND


def _ceil_second(moment: datetime) -> datetime:
    floored = moment.replace(microsecond=0)
    return floored if floored == moment else floored + _SECOND
