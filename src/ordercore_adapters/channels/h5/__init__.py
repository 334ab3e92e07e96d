"""The seller's own H5 store: Standard Webhooks pushes and a paged REST safety poll.

Registered under the ``ordercore.channels`` entry point as ``h5``; see :mod:`.adapter`
for the API (ours, versioned) and :mod:`.mapping` for the order JSON.
"""

from __future__ import annotations

from ordercore_adapters.channels._platform.json_http import ApiError, RateLimited

from .adapter import H5_TOPICS, H5Channel, h5_time
from .mapping import H5_SCHEMA, H5_STATUSES, map_h5_order

__all__ = [
    "H5_SCHEMA",
    "H5_STATUSES",
    "H5_TOPICS",
    "ApiError",
    "H5Channel",
    "RateLimited",
    "h5_time",
    "map_h5_order",
]
