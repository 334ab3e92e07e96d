"""Shopify-style webhooks: base64 HMAC-SHA256 of the raw body in a header.

Headers: ``X-Shopify-Hmac-Sha256`` (the signature), ``X-Shopify-Webhook-Id`` (unique per
delivery, kept across the platform's retries: the dedup key), ``X-Shopify-Topic`` and,
when present, ``X-Shopify-Triggered-At`` (ISO 8601 UTC).

Only the body is signed: the id, topic and time headers are not covered by the HMAC.
A replay guard on the webhook id therefore catches the platform's repeats and naive
replays, while an attacker who re-sends a captured body under a fresh id gets past it;
such a replay carries an order version we already had, which the ingest dedup absorbs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

from ordercore.domain.channels import WebhookDelivery
from ordercore.errors import SignatureInvalid

from .helpers import (
    Secrets,
    VerifiedWebhook,
    b64decode,
    find_header,
    matches_any,
    parse_json_body,
    require_header,
    require_utc,
    secret_list,
    shown,
)
from .replay import ReplayCheck

__all__ = ["ShopifyVerifier", "sign_shopify"]

SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"
ID_HEADER = "X-Shopify-Webhook-Id"
TOPIC_HEADER = "X-Shopify-Topic"
TIME_HEADER = "X-Shopify-Triggered-At"


def _digest(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, body, hashlib.sha256).digest()


def sign_shopify(secret: str | bytes, body: bytes) -> str:
    """The ``X-Shopify-Hmac-Sha256`` value for ``body`` (for fake platforms and tests)."""
    (key,) = secret_list(secret, "shopify")
    return base64.b64encode(_digest(key, body)).decode("ascii")


class ShopifyVerifier:
    """Verify Shopify-style deliveries signed with any of ``secrets`` (rotation)."""

    def __init__(self, secrets: Secrets, *, replay_guard: ReplayCheck | None = None) -> None:
        self._secrets = secret_list(secrets, "shopify")
        self.replay_guard = replay_guard

    def __repr__(self) -> str:
        return (
            f"ShopifyVerifier(<{len(self._secrets)} secret(s)>, replay_guard={self.replay_guard!r})"
        )

    def verify(self, headers: Mapping[str, str], body: bytes, now: datetime) -> VerifiedWebhook:
        """The delivery and its JSON body; SignatureInvalid naming what failed.

        ``now`` is checked to be aware and otherwise unused: the scheme has no signed
        time (it keeps the shape of ``ChannelPort.verify_webhook``).
        """
        require_utc(now)
        received = b64decode(require_header(headers, SIGNATURE_HEADER), SIGNATURE_HEADER)
        message_id = require_header(headers, ID_HEADER)
        sent_at = _triggered_at(headers)
        expected = (_digest(secret, body) for secret in self._secrets)
        if not matches_any([received], expected):
            raise SignatureInvalid(
                f"{SIGNATURE_HEADER} mismatch for webhook {shown(message_id)}: "
                f"no configured secret signed this body"
            )
        payload = parse_json_body(body)
        if self.replay_guard is not None:
            self.replay_guard.check(message_id)
        topic = (find_header(headers, TOPIC_HEADER) or "").strip()
        delivery = WebhookDelivery(message_id=message_id, sent_at=sent_at, topic=topic)
        return VerifiedWebhook(delivery=delivery, payload=payload)


def _triggered_at(headers: Mapping[str, str]) -> datetime | None:
    raw = find_header(headers, TIME_HEADER)
    if raw is None or not raw.strip():
        return None
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise SignatureInvalid(f"{TIME_HEADER} {shown(raw)} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise SignatureInvalid(f"{TIME_HEADER} {shown(raw)} has no UTC offset")
    return moment.astimezone(UTC)
