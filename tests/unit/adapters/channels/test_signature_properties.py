"""Properties of every signature scheme: sign-then-verify passes, any flipped byte fails."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ordercore.errors import SignatureInvalid
from ordercore_adapters.channels.signatures import (
    DouyinPushVerifier,
    ReplayGuard,
    ShopifyVerifier,
    StandardWebhooksVerifier,
    VerifiedWebhook,
    sign_douyin_push,
    sign_shopify,
    sign_standard_webhook,
)

T0 = datetime(2026, 11, 11, tzinfo=UTC)
TS = int(T0.timestamp())
APP_KEY = "7012345678901234567"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
secrets = st.binary(min_size=1, max_size=64)
text_secrets = st.text(min_size=1, max_size=32)

Verify = Callable[[bytes], VerifiedWebhook]
"""Verify a body (possibly tampered) against the headers signed for the original."""


def _shopify(secret: bytes, body: bytes) -> Verify:
    headers = {"X-Shopify-Hmac-Sha256": sign_shopify(secret, body), "X-Shopify-Webhook-Id": "w"}
    return lambda received: ShopifyVerifier(secret).verify(headers, received, T0)


def _standard(secret: bytes, body: bytes) -> Verify:
    whsec = "whsec_" + base64.b64encode(secret).decode()
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(TS),
        "webhook-signature": sign_standard_webhook(secret, "msg_1", TS, body),
    }
    return lambda received: StandardWebhooksVerifier(whsec).verify(headers, received, T0)


def _douyin(secret: str, body: bytes) -> Verify:
    headers = {"app-id": APP_KEY, "event-sign": sign_douyin_push(APP_KEY, secret, body)}
    return lambda received: DouyinPushVerifier(APP_KEY, secret, ReplayGuard()).verify(
        headers, received, T0
    )


def _encode(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


@st.composite
def cases(draw: st.DrawFn) -> tuple[Verify, bytes]:
    """A scheme, a random secret and a random JSON body fit for it, signed."""
    scheme = draw(st.sampled_from(["shopify", "standard", "douyin"]))
    if scheme == "douyin":
        message = {"tag": draw(st.text()), "msg_id": draw(st.text(min_size=1)), "data": ""}
        message["data"] = json.dumps(draw(json_values))
        body = _encode([message])
        return _douyin(draw(text_secrets), body), body
    body = _encode(draw(json_values))
    signer = _shopify if scheme == "shopify" else _standard
    return signer(draw(secrets), body), body


@given(case=cases())
def test_sign_then_verify_passes(case: tuple[Verify, bytes]) -> None:
    """A body signed with any secret verifies with that secret and round-trips its JSON."""
    verify, body = case
    assert verify(body).payload == json.loads(body)


@given(case=cases(), data=st.data())
def test_flipping_any_body_byte_fails(case: tuple[Verify, bytes], data: st.DataObject) -> None:
    """Changing any one byte of a signed body makes verification fail as a mismatch."""
    verify, body = case
    index = data.draw(st.integers(0, len(body) - 1), label="index")
    mask = data.draw(st.integers(1, 255), label="mask")
    tampered = body[:index] + bytes([body[index] ^ mask]) + body[index + 1 :]
    with pytest.raises(SignatureInvalid, match="mismatch"):
        verify(tampered)
