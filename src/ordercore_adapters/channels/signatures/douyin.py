"""Douyin shop (抖店) message push: MD5(app_key + body + app_secret) in ``event-sign``.

What is public (抖店开放平台 消息推送 guide): the platform POSTs to the app's push URL
with headers ``app-id`` (the app's key) and ``event-sign``, the hex MD5 of app key +
raw body + app secret; the body is a JSON array of messages, each with ``tag`` (the
message type, e.g. "100"), ``msg_id`` and ``data`` (the event as a JSON string).

What is not public, and what we assumed:

* pushes carry no timestamp and the scheme signs no nonce, so freshness cannot be
  checked; replay protection rests on ``msg_id`` alone, hence the required guard;
* the guide does not promise ``msg_id`` is unique across retries and batches; we take
  it as the message's identity (one id per message, kept when the platform re-sends);
* the platform may re-send a message inside a new batch, so a batch is a replay only
  when *every* ``msg_id`` in it was seen (see :class:`ReplayGuard`);
* a body holding one message as a bare object (not an array) is accepted as well;
* the case of the hex digest is not specified: either case is accepted;
* the secret is the app secret the API signing uses; a reset is a rotation, so
  several secrets may be configured.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ordercore.domain.channels import WebhookDelivery
from ordercore.errors import SignatureInvalid

from .helpers import (
    Secrets,
    VerifiedWebhook,
    matches_any,
    parse_json_body,
    require_header,
    require_utc,
    secret_list,
    shown,
)
from .replay import ReplayCheck

__all__ = ["DouyinPushVerifier", "sign_douyin_push"]

APP_HEADER = "app-id"
SIGNATURE_HEADER = "event-sign"
_HEX_DIGITS = frozenset("0123456789abcdef")


def _digest(app_key: bytes, body: bytes, secret: bytes) -> bytes:
    # MD5 is what the platform signs with; it is not our choice of hash.
    return hashlib.md5(app_key + body + secret).hexdigest().encode("ascii")  # noqa: S324


def sign_douyin_push(app_key: str, app_secret: str | bytes, body: bytes) -> str:
    """The ``event-sign`` value (lowercase hex) for ``body`` (fake platforms and tests)."""
    (secret,) = secret_list(app_secret, "douyin")
    return _digest(app_key.encode(), body, secret).decode("ascii")


class DouyinPushVerifier:
    """Verify 抖店 pushes to the app ``app_key``, signed with any of ``app_secrets``."""

    def __init__(self, app_key: str, app_secrets: Secrets, replay_guard: ReplayCheck) -> None:
        if not app_key:
            raise ValueError("douyin: app_key must not be empty")
        self.app_key = app_key
        self._secrets = secret_list(app_secrets, "douyin")
        self.replay_guard = replay_guard

    def __repr__(self) -> str:
        return (
            f"DouyinPushVerifier(app_key={self.app_key!r}, <{len(self._secrets)} secret(s)>, "
            f"replay_guard={self.replay_guard!r})"
        )

    def verify(self, headers: Mapping[str, str], body: bytes, now: datetime) -> VerifiedWebhook:
        """The delivery (ids and tags of its messages, comma-joined) and its JSON body.

        ``now`` is checked to be aware and otherwise unused (pushes carry no time).
        """
        require_utc(now)
        app_id = require_header(headers, APP_HEADER)
        received = require_header(headers, SIGNATURE_HEADER).lower()
        if len(received) != 32 or not _HEX_DIGITS.issuperset(received):
            raise SignatureInvalid(f"{SIGNATURE_HEADER} is not a 32-digit hex MD5")
        if app_id != self.app_key:
            raise SignatureInvalid(f"{APP_HEADER} {shown(app_id)} is not this app")
        key = self.app_key.encode()
        expected = (_digest(key, body, secret) for secret in self._secrets)
        if not matches_any([received.encode("ascii")], expected):
            raise SignatureInvalid(
                f"{SIGNATURE_HEADER} mismatch: no configured app secret signed this body"
            )
        payload = parse_json_body(body)
        ids, tags = _messages(payload)
        self.replay_guard.check(*ids)
        delivery = WebhookDelivery(message_id=",".join(ids), topic=",".join(dict.fromkeys(tags)))
        return VerifiedWebhook(delivery=delivery, payload=payload)


def _messages(payload: Any) -> tuple[list[str], list[str]]:
    """The ``msg_id`` and ``tag`` of every message in a push body."""
    messages = [payload] if isinstance(payload, dict) else payload
    if not isinstance(messages, list) or not messages:
        raise SignatureInvalid("push body is signed but holds no message array")
    ids: list[str] = []
    tags: list[str] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise SignatureInvalid(f"push message {index} is not an object")
        msg_id = message.get("msg_id")
        if not isinstance(msg_id, str | int) or isinstance(msg_id, bool) or msg_id == "":
            raise SignatureInvalid(f"push message {index} has no msg_id")
        ids.append(str(msg_id))
        tag = message.get("tag", "")
        tags.append(str(tag) if isinstance(tag, str | int) and not isinstance(tag, bool) else "")
    return ids, tags
