"""Webhook signature verification for the push-capable channels.

Pure and synchronous: each verifier takes the raw request (headers, any case; the
body bytes; ``now`` in UTC) and returns a :class:`VerifiedWebhook`, or raises
:class:`ordercore.errors.SignatureInvalid` naming what failed, never the secret, the
expected signature or the body. Signatures are compared in constant time.
"""

from __future__ import annotations

from .douyin import DouyinPushVerifier, sign_douyin_push
from .helpers import VerifiedWebhook
from .replay import ReplayCheck, ReplayGuard
from .shopify import ShopifyVerifier, sign_shopify
from .standard_webhooks import StandardWebhooksVerifier, sign_standard_webhook

__all__ = [
    "DouyinPushVerifier",
    "ReplayCheck",
    "ReplayGuard",
    "ShopifyVerifier",
    "StandardWebhooksVerifier",
    "VerifiedWebhook",
    "sign_douyin_push",
    "sign_shopify",
    "sign_standard_webhook",
]
