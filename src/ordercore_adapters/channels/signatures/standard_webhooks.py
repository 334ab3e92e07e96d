"""Standard Webhooks (standardwebhooks.com), the shape our own H5 store sends.

Headers: ``webhook-id`` (unique per message), ``webhook-timestamp`` (integer unix
seconds) and ``webhook-signature``: space-separated ``<version>,<base64>`` entries. A
``v1`` entry is base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")); entries of other
versions (``v1a`` asymmetric signatures, future ones) are ignored, and any valid ``v1``
entry passes, so a sender may sign with an old and a new key during a rotation. Keys
are given as ``whsec_<base64>`` (the prefix is optional) or as raw bytes. The id and
the timestamp are signed, so a timestamp tolerance plus a replay guard on the id
(optional here) shut replays out completely.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ordercore.domain.channels import WebhookDelivery
from ordercore.errors import SignatureInvalid

from .helpers import (
    VerifiedWebhook,
    b64decode,
    matches_any,
    parse_json_body,
    require_header,
    require_utc,
    shown,
)
from .replay import ReplayCheck

__all__ = ["StandardWebhooksVerifier", "decode_secret", "sign_standard_webhook"]

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 (the spec's key prefix, not a secret)
DEFAULT_TOLERANCE = timedelta(minutes=5)
_MAX_TIMESTAMP_DIGITS = 12


def decode_secret(secret: str | bytes) -> bytes:
    """The HMAC key: bytes as given, or a string's base64 after an optional ``whsec_``.

    Raises ValueError (never quoting the secret) when the string is not base64 or empty.
    """
    if isinstance(secret, bytes):
        key = secret
    else:
        encoded = secret.removeprefix(SECRET_PREFIX)
        try:
            key = b64decode(encoded, "secret")
        except SignatureInvalid:
            raise ValueError(
                f"a standard webhooks secret must be base64 after {SECRET_PREFIX!r}"
            ) from None
    if not key:
        raise ValueError("a standard webhooks secret must not be empty")
    return key


def _digest(key: bytes, message_id: str, timestamp: str, body: bytes) -> bytes:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign_standard_webhook(secret: str | bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` entry of the ``webhook-signature`` header (fakes and tests)."""
    digest = _digest(decode_secret(secret), message_id, str(timestamp), body)
    return "v1," + base64.b64encode(digest).decode("ascii")


class StandardWebhooksVerifier:
    """Verify Standard Webhooks deliveries against any of ``secrets``, within a tolerance."""

    def __init__(
        self,
        secrets: str | bytes | Sequence[str | bytes],
        *,
        tolerance: timedelta = DEFAULT_TOLERANCE,
        replay_guard: ReplayCheck | None = None,
    ) -> None:
        items = [secrets] if isinstance(secrets, str | bytes) else list(secrets)
        if not items:
            raise ValueError("standard webhooks: at least one secret is needed")
        if tolerance < timedelta(0):
            raise ValueError(f"tolerance must not be negative, got {tolerance}")
        self._keys = tuple(decode_secret(item) for item in items)
        self.tolerance = tolerance
        self.replay_guard = replay_guard

    def __repr__(self) -> str:
        return (
            f"StandardWebhooksVerifier(<{len(self._keys)} secret(s)>, "
            f"tolerance={self.tolerance}, replay_guard={self.replay_guard!r})"
        )

    def verify(self, headers: Mapping[str, str], body: bytes, now: datetime) -> VerifiedWebhook:
        """The delivery (topic from the body's ``type``) and its JSON body.

        SignatureInvalid names the missing or garbled header, the timestamp outside
        the tolerance, the signature mismatch, a body that is not JSON or a replay.
        """
        now = require_utc(now)
        message_id = require_header(headers, ID_HEADER)
        raw_timestamp = require_header(headers, TIMESTAMP_HEADER)
        entries = _v1_signatures(require_header(headers, SIGNATURE_HEADER))
        sent_at = self._fresh(raw_timestamp, now)
        expected = (_digest(key, message_id, raw_timestamp, body) for key in self._keys)
        if not matches_any(entries, expected):
            raise SignatureInvalid(
                f"{SIGNATURE_HEADER} mismatch for message {shown(message_id)}: none of "
                f"{len(entries)} v1 signature(s) was made with a configured secret"
            )
        payload = parse_json_body(body)
        if self.replay_guard is not None:
            self.replay_guard.check(message_id)
        delivery = WebhookDelivery(message_id=message_id, sent_at=sent_at, topic=_topic(payload))
        return VerifiedWebhook(delivery=delivery, payload=payload)

    def _fresh(self, raw: str, now: datetime) -> datetime:
        if not (raw.isascii() and raw.isdigit() and len(raw) <= _MAX_TIMESTAMP_DIGITS):
            raise SignatureInvalid(f"{TIMESTAMP_HEADER} {shown(raw)} is not integer unix seconds")
        skew = int(raw) - now.timestamp()
        limit = self.tolerance.total_seconds()
        if abs(skew) > limit:
            where = "in the future" if skew > 0 else "old"
            raise SignatureInvalid(
                f"{TIMESTAMP_HEADER} {raw} is {abs(skew):.0f}s {where}, outside the "
                f"tolerance of {limit:.0f}s"
            )
        return datetime.fromtimestamp(int(raw), UTC)


def _v1_signatures(header: str) -> list[bytes]:
    """The decoded ``v1`` entries; other versions are skipped, garbled entries rejected."""
    found: list[bytes] = []
    for index, entry in enumerate(header.split()):
        version, comma, value = entry.partition(",")
        if not comma or not version or not value:
            raise SignatureInvalid(
                f"{SIGNATURE_HEADER} entry {index} is not '<version>,<signature>'"
            )
        if version == "v1":
            found.append(b64decode(value, f"{SIGNATURE_HEADER} entry {index}"))
    if not found:
        raise SignatureInvalid(f"{SIGNATURE_HEADER} carries no v1 signature")
    return found


def _topic(payload: Any) -> str:
    """The spec's event ``type`` field, when the body is an object that has one."""
    if isinstance(payload, dict):
        kind = payload.get("type")
        if isinstance(kind, str):
            return kind
    return ""
