"""JD (京东 JOS) channel adapter: signed HTTP calls, forward paging, POP order mapping.

Registered under the ``ordercore.channels`` entry point as ``jd``; build one with
``JdChannel(name, config)`` (see :mod:`.adapter` for the config keys and limits).
"""

from __future__ import annotations

from .adapter import SEARCH_METHOD, JdChannel, JdPushNotSupported
from .client import JdRateLimited, JosApiError, JosClient, param_json
from .mapping import JD_MAPPING, JD_STATUSES, map_jd_order

__all__ = [
    "JD_MAPPING",
    "JD_STATUSES",
    "SEARCH_METHOD",
    "JdChannel",
    "JdPushNotSupported",
    "JdRateLimited",
    "JosApiError",
    "JosClient",
    "map_jd_order",
    "param_json",
]
