"""A Shopify-style webhook channel: signed ``orders/*`` webhooks plus a REST safety poll.

Registered under the ``ordercore.channels`` entry point as ``shopify``; see
:mod:`.adapter` for the API details (public and assumed) and :mod:`.mapping`.
"""

from __future__ import annotations

from .adapter import SHOPIFY_TOPICS, ShopifyChannel, shopify_bounds
from .mapping import SHOPIFY_FINANCIAL_STATUSES, map_shopify_order

__all__ = [
    "SHOPIFY_FINANCIAL_STATUSES",
    "SHOPIFY_TOPICS",
    "ShopifyChannel",
    "map_shopify_order",
    "shopify_bounds",
]
