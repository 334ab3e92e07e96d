"""Taobao/Tmall (TOP) channel adapter: signed HTTP calls, backward paging, trade mapping.

Registered under the ``ordercore.channels`` entry point as ``taobao``; build one with
``TaobaoChannel(name, config)`` (see :mod:`.adapter` for the config keys and limits).
"""

from __future__ import annotations

from .adapter import TaobaoChannel, TmcPushNotSupported, top_bounds
from .client import TopApiError, TopClient, TopRateLimited
from .mapping import TAOBAO_MAPPING, TAOBAO_STATUSES, TRADE_FIELDS, map_trade
from .signing import SIGN_METHODS, format_top_time, parse_top_time, sign_top, signing_string

__all__ = [
    "SIGN_METHODS",
    "TAOBAO_MAPPING",
    "TAOBAO_STATUSES",
    "TRADE_FIELDS",
    "TaobaoChannel",
    "TmcPushNotSupported",
    "TopApiError",
    "TopClient",
    "TopRateLimited",
    "format_top_time",
    "map_trade",
    "parse_top_time",
    "sign_top",
    "signing_string",
    "top_bounds",
]
