"""Douyin shop (抖店): signed pull API, verified pushes taken as hints for the poll.

Registered under the ``ordercore.channels`` entry point as ``douyin``; see
:mod:`.adapter` (what is public, what is assumed, and the push decision), :mod:`.signing`
(the canonical string) and :mod:`.mapping`.
"""

from __future__ import annotations

from .adapter import DouyinApiError, DouyinChannel, PushHint, douyin_bounds
from .mapping import DOUYIN_MAPPING, DOUYIN_STATUSES, map_shop_order
from .signing import canonical_string, format_douyin_time, param_json, sign_douyin

__all__ = [
    "DOUYIN_MAPPING",
    "DOUYIN_STATUSES",
    "DouyinApiError",
    "DouyinChannel",
    "PushHint",
    "canonical_string",
    "douyin_bounds",
    "format_douyin_time",
    "map_shop_order",
    "param_json",
    "sign_douyin",
]
