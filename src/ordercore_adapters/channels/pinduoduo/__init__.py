"""Pinduoduo (拼多多开放平台) channel adapter: signed HTTP calls, forward paging, a lag.

Registered under the ``ordercore.channels`` entry point as ``pinduoduo``; build one with
``PinduoduoChannel(name, config)`` (see :mod:`.adapter` for the config keys and limits).
"""

from __future__ import annotations

from .adapter import INCREMENT_API, PddPushNotSupported, PinduoduoChannel, pdd_bounds
from .client import PddApiError, PddClient, PddRateLimited, sign_pdd
from .mapping import PDD_MAPPING, PDD_STATUSES, map_pdd_order

__all__ = [
    "INCREMENT_API",
    "PDD_MAPPING",
    "PDD_STATUSES",
    "PddApiError",
    "PddClient",
    "PddPushNotSupported",
    "PddRateLimited",
    "PinduoduoChannel",
    "map_pdd_order",
    "pdd_bounds",
    "sign_pdd",
]
