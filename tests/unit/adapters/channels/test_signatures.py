"""Webhook signature verification: Shopify-style, Standard Webhooks and Douyin shop push.

The Standard Webhooks tests cross-check against the official ``standardwebhooks``
package (PyPI) and the spec's published test vector.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from ordercore.errors import SignatureInvalid
from ordercore.testing import ManualClock
from ordercore_adapters.channels.signatures import (
    DouyinPushVerifier,
    ReplayGuard,
    ShopifyVerifier,
    StandardWebhooksVerifier,
    sign_douyin_push,
    sign_shopify,
    sign_standard_webhook,
)

T0 = datetime(2026, 11, 11, 3, 0, tzinfo=UTC)
TS = int(T0.timestamp())
HOUR = timedelta(hours=1)
HOUR_SECONDS = int(HOUR.total_seconds())

SHOP_SECRET = "shpss_old-secret"
SHOP_NEW = "shpss_new-secret"
WH_SECRET = "whsec_" + base64.b64encode(b"own-h5-store-key-0123456789abcd").decode()
WH_NEW = "whsec_" + base64.b64encode(b"own-h5-store-key-rotated-999999").decode()
APP_KEY = "7012345678901234567"
APP_SECRET = "douyin-app-secret-1"

ORDER_BODY = json.dumps({"id": 820982911946154508, "type": "order.updated"}).encode()
PUSH_BODY = json.dumps(
    [{"tag": "100", "msg_id": "7211111111111111111", "data": '{"p_id":6912345678}'}]
).encode()


def _guard(clock: ManualClock, horizon: timedelta = HOUR) -> ReplayGuard:
    return ReplayGuard(horizon=horizon, capacity=1000, clock=clock)


def _shopify_headers(
    body: bytes = ORDER_BODY, secret: str = SHOP_SECRET, webhook_id: str = "b54557e4"
) -> dict[str, str]:
    return {
        "X-Shopify-Hmac-Sha256": sign_shopify(secret, body),
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Topic": "orders/updated",
        "X-Shopify-Triggered-At": "2026-11-11T02:59:58.123456789Z",
        "Content-Type": "application/json",
    }


def _wh_headers(
    body: bytes = ORDER_BODY,
    secret: str | bytes = WH_SECRET,
    msg_id: str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
    timestamp: int = TS,
) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard_webhook(secret, msg_id, timestamp, body),
    }


def _push_headers(
    body: bytes = PUSH_BODY, secret: str = APP_SECRET, app_key: str = APP_KEY
) -> dict[str, str]:
    return {"app-id": APP_KEY, "event-sign": sign_douyin_push(app_key, secret, body)}


def _douyin(clock: ManualClock | None = None) -> DouyinPushVerifier:
    return DouyinPushVerifier(APP_KEY, APP_SECRET, _guard(clock or ManualClock(T0)))


# --- Shopify-style ---------------------------------------------------------------------


def test_shopify_valid_delivery_passes() -> None:
    """A body signed with the shop's secret yields its id, topic, UTC time and JSON."""
    result = ShopifyVerifier(SHOP_SECRET).verify(_shopify_headers(), ORDER_BODY, T0)
    assert result.delivery.message_id == "b54557e4"
    assert result.delivery.topic == "orders/updated"
    assert result.delivery.sent_at == datetime(2026, 11, 11, 2, 59, 58, 123456, tzinfo=UTC)
    assert result.delivery.records == ()
    assert result.payload == {"id": 820982911946154508, "type": "order.updated"}


def test_shopify_header_names_are_case_insensitive() -> None:
    """Headers are found whatever case the web framework hands them in."""
    headers = {key.lower(): value for key, value in _shopify_headers().items()}
    result = ShopifyVerifier(SHOP_SECRET).verify(headers, ORDER_BODY, T0)
    assert result.delivery.message_id == "b54557e4"


def test_shopify_triggered_at_is_optional() -> None:
    """Without X-Shopify-Triggered-At the delivery has no sent time."""
    headers = _shopify_headers()
    del headers["X-Shopify-Triggered-At"]
    assert ShopifyVerifier(SHOP_SECRET).verify(headers, ORDER_BODY, T0).delivery.sent_at is None


def test_shopify_tampered_body_fails() -> None:
    """A body changed after signing is rejected as a mismatch."""
    with pytest.raises(SignatureInvalid, match="X-Shopify-Hmac-Sha256 mismatch"):
        ShopifyVerifier(SHOP_SECRET).verify(_shopify_headers(), ORDER_BODY + b" ", T0)


def test_shopify_wrong_secret_fails() -> None:
    """A body signed with another secret is rejected."""
    headers = _shopify_headers(secret="someone-else")
    with pytest.raises(SignatureInvalid, match="mismatch"):
        ShopifyVerifier(SHOP_SECRET).verify(headers, ORDER_BODY, T0)


@pytest.mark.parametrize("missing", ["X-Shopify-Hmac-Sha256", "X-Shopify-Webhook-Id"])
def test_shopify_missing_header_fails(missing: str) -> None:
    """A delivery without its signature or its webhook id names the missing header."""
    headers = _shopify_headers()
    del headers[missing]
    with pytest.raises(SignatureInvalid, match=f"missing header {missing}"):
        ShopifyVerifier(SHOP_SECRET).verify(headers, ORDER_BODY, T0)


def test_shopify_garbled_signature_fails() -> None:
    """A signature header that is not base64 is rejected as bad encoding."""
    headers = _shopify_headers() | {"X-Shopify-Hmac-Sha256": "not base64!"}
    with pytest.raises(SignatureInvalid, match="not valid base64"):
        ShopifyVerifier(SHOP_SECRET).verify(headers, ORDER_BODY, T0)


@pytest.mark.parametrize(
    ("value", "reason"),
    [("yesterday", "not an ISO 8601 time"), ("2026-11-11T02:59:58", "no UTC offset")],
)
def test_shopify_garbled_triggered_at_fails(value: str, reason: str) -> None:
    """A trigger time that is not an ISO 8601 UTC time is rejected, never guessed."""
    headers = _shopify_headers() | {"X-Shopify-Triggered-At": value}
    with pytest.raises(SignatureInvalid, match=reason):
        ShopifyVerifier(SHOP_SECRET).verify(headers, ORDER_BODY, T0)


def test_shopify_conflicting_header_spellings_fail() -> None:
    """The same header under two spellings with different values is rejected."""
    headers = _shopify_headers() | {"x-shopify-webhook-id": "other"}
    with pytest.raises(SignatureInvalid, match="more than once"):
        ShopifyVerifier(SHOP_SECRET).verify(headers, ORDER_BODY, T0)


def test_shopify_rotation_accepts_old_and_new_secret() -> None:
    """During a rotation a body signed with either configured secret passes."""
    verifier = ShopifyVerifier([SHOP_NEW, SHOP_SECRET])
    for secret in (SHOP_SECRET, SHOP_NEW):
        result = verifier.verify(_shopify_headers(secret=secret), ORDER_BODY, T0)
        assert result.delivery.message_id == "b54557e4"


def test_shopify_removed_secret_fails() -> None:
    """Once the old secret is removed, a body signed only with it is rejected."""
    with pytest.raises(SignatureInvalid, match="mismatch"):
        ShopifyVerifier([SHOP_NEW]).verify(_shopify_headers(), ORDER_BODY, T0)


def test_shopify_replay_within_horizon_fails_and_passes_after() -> None:
    """With a guard, a repeated webhook id is a replay until the horizon has passed."""
    clock = ManualClock(T0)
    verifier = ShopifyVerifier(SHOP_SECRET, replay_guard=_guard(clock))
    verifier.verify(_shopify_headers(), ORDER_BODY, clock.now())
    clock.advance(HOUR - timedelta(seconds=1))
    with pytest.raises(SignatureInvalid, match="replayed message 'b54557e4'"):
        verifier.verify(_shopify_headers(), ORDER_BODY, clock.now())
    clock.advance(timedelta(seconds=1))
    assert verifier.verify(_shopify_headers(), ORDER_BODY, clock.now()).delivery.message_id


def test_shopify_forged_delivery_does_not_poison_the_guard() -> None:
    """A forged delivery is rejected before its id is remembered, so the real one passes."""
    clock = ManualClock(T0)
    verifier = ShopifyVerifier(SHOP_SECRET, replay_guard=_guard(clock))
    with pytest.raises(SignatureInvalid, match="mismatch"):
        verifier.verify(_shopify_headers(secret="forger"), ORDER_BODY, T0)
    assert verifier.verify(_shopify_headers(), ORDER_BODY, T0).delivery.message_id == "b54557e4"


def test_shopify_signed_body_that_is_not_json_fails() -> None:
    """A correctly signed body that is not JSON is rejected without quoting it."""
    body = b"<xml>order</xml>"
    with pytest.raises(SignatureInvalid, match="not JSON") as caught:
        ShopifyVerifier(SHOP_SECRET).verify(_shopify_headers(body=body), body, T0)
    assert "xml" not in str(caught.value)


def test_naive_now_is_refused() -> None:
    """A naive ``now`` is a programming error, never read as local time."""
    with pytest.raises(ValueError, match="timezone-aware"):
        ShopifyVerifier(SHOP_SECRET).verify(_shopify_headers(), ORDER_BODY, datetime(2026, 1, 1))


# --- Standard Webhooks -----------------------------------------------------------------


def test_standard_webhooks_valid_delivery_passes() -> None:
    """A signed delivery yields its id, its timestamp as sent_at and the body's type."""
    result = StandardWebhooksVerifier(WH_SECRET).verify(_wh_headers(), ORDER_BODY, T0)
    assert result.delivery.message_id == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    assert result.delivery.sent_at == T0
    assert result.delivery.topic == "order.updated"
    assert result.payload["id"] == 820982911946154508


@pytest.mark.parametrize(
    "configured",
    [
        pytest.param(WH_SECRET.removeprefix("whsec_"), id="unprefixed"),
        pytest.param(WH_SECRET.rstrip("="), id="unpadded"),
        pytest.param(b"own-h5-store-key-0123456789abcd", id="raw-bytes"),
    ],
)
def test_standard_webhooks_secret_forms_are_equivalent(configured: str | bytes) -> None:
    """The key may be given unprefixed, unpadded or as raw bytes: the same key results."""
    result = StandardWebhooksVerifier(configured).verify(_wh_headers(), ORDER_BODY, T0)
    assert result.delivery.sent_at == T0


def test_standard_webhooks_tampered_body_fails() -> None:
    """A body changed after signing is rejected as a mismatch."""
    with pytest.raises(SignatureInvalid, match="webhook-signature mismatch"):
        StandardWebhooksVerifier(WH_SECRET).verify(_wh_headers(), ORDER_BODY[:-1] + b"]", T0)


@pytest.mark.parametrize(
    ("header", "value"), [("webhook-id", "msg_other"), ("webhook-timestamp", str(TS + 1))]
)
def test_standard_webhooks_tampered_signed_header_fails(header: str, value: str) -> None:
    """The id and the timestamp are signed: changing either breaks the signature."""
    headers = _wh_headers() | {header: value}
    with pytest.raises(SignatureInvalid, match="mismatch"):
        StandardWebhooksVerifier(WH_SECRET).verify(headers, ORDER_BODY, T0)


def test_standard_webhooks_wrong_secret_fails() -> None:
    """A delivery signed with another key is rejected."""
    with pytest.raises(SignatureInvalid, match="mismatch"):
        StandardWebhooksVerifier(WH_NEW).verify(_wh_headers(), ORDER_BODY, T0)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_standard_webhooks_missing_header_fails(missing: str) -> None:
    """Each of the three headers is required and named when missing."""
    headers = _wh_headers()
    del headers[missing]
    with pytest.raises(SignatureInvalid, match=f"missing header {missing}"):
        StandardWebhooksVerifier(WH_SECRET).verify(headers, ORDER_BODY, T0)


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("webhook-timestamp", f"{TS}.5", "not integer unix seconds"),
        ("webhook-timestamp", "2026-11-11T03:00:00Z", "not integer unix seconds"),
        ("webhook-timestamp", "9" * 40, "not integer unix seconds"),
        ("webhook-signature", "v1", "entry 0 is not '<version>,<signature>'"),
        ("webhook-signature", "v1,@@@@", "entry 0 is not valid base64"),
        ("webhook-signature", "v1a,c2lnbmF0dXJl", "carries no v1 signature"),
    ],
)
def test_standard_webhooks_garbled_header_fails(header: str, value: str, reason: str) -> None:
    """A garbled timestamp or signature header is rejected, naming what is wrong."""
    headers = _wh_headers() | {header: value}
    with pytest.raises(SignatureInvalid, match=reason):
        StandardWebhooksVerifier(WH_SECRET).verify(headers, ORDER_BODY, T0)


@pytest.mark.parametrize(("offset", "word"), [(-301, "old"), (301, "in the future")])
def test_standard_webhooks_timestamp_outside_tolerance_fails(offset: int, word: str) -> None:
    """A delivery more than five minutes old or ahead of now is rejected."""
    headers = _wh_headers(timestamp=TS + offset)
    with pytest.raises(SignatureInvalid, match=f"is 301s {word}, outside the tolerance of 300s"):
        StandardWebhooksVerifier(WH_SECRET).verify(headers, ORDER_BODY, T0)


@pytest.mark.parametrize("offset", [-300, 300])
def test_standard_webhooks_timestamp_at_tolerance_passes(offset: int) -> None:
    """A delivery exactly at the tolerance either way still passes."""
    headers = _wh_headers(timestamp=TS + offset)
    result = StandardWebhooksVerifier(WH_SECRET).verify(headers, ORDER_BODY, T0)
    assert result.delivery.sent_at == T0 + timedelta(seconds=offset)


def test_standard_webhooks_tolerance_is_configurable() -> None:
    """A tighter tolerance rejects a delivery the default would take."""
    headers = _wh_headers(timestamp=TS - 60)
    verifier = StandardWebhooksVerifier(WH_SECRET, tolerance=timedelta(seconds=30))
    with pytest.raises(SignatureInvalid, match="outside the tolerance of 30s"):
        verifier.verify(headers, ORDER_BODY, T0)


def test_standard_webhooks_sender_rotation_any_v1_entry_passes() -> None:
    """With several signatures, one valid v1 entry suffices; unknown versions are ignored."""
    good = _wh_headers()["webhook-signature"]
    old = sign_standard_webhook(WH_NEW, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", TS, ORDER_BODY)
    headers = _wh_headers() | {"webhook-signature": f"v1a,c2lnbmF0dXJl {old}  {good}"}
    result = StandardWebhooksVerifier(WH_SECRET).verify(headers, ORDER_BODY, T0)
    assert result.delivery.message_id == "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"


def test_standard_webhooks_rotation_accepts_old_and_new_secret() -> None:
    """With both keys configured, a delivery signed with either passes."""
    verifier = StandardWebhooksVerifier([WH_NEW, WH_SECRET])
    for secret in (WH_SECRET, WH_NEW):
        assert verifier.verify(_wh_headers(secret=secret), ORDER_BODY, T0).delivery.sent_at


def test_standard_webhooks_removed_secret_fails() -> None:
    """Once the old key is removed, a delivery signed only with it is rejected."""
    with pytest.raises(SignatureInvalid, match="mismatch"):
        StandardWebhooksVerifier([WH_NEW]).verify(_wh_headers(), ORDER_BODY, T0)


def test_standard_webhooks_replay_within_horizon_fails_and_passes_after() -> None:
    """With a guard, a repeated webhook-id is a replay until the horizon has passed."""
    clock = ManualClock(T0)
    verifier = StandardWebhooksVerifier(WH_SECRET, replay_guard=_guard(clock))
    verifier.verify(_wh_headers(), ORDER_BODY, T0)
    clock.advance(timedelta(minutes=59))
    again = _wh_headers(timestamp=TS + 59 * 60)
    with pytest.raises(SignatureInvalid, match="replayed message 'msg_2KWPBgLlAfxdpx2AI54"):
        verifier.verify(again, ORDER_BODY, clock.now())
    clock.advance(timedelta(minutes=1))
    later = _wh_headers(timestamp=TS + HOUR_SECONDS)
    assert verifier.verify(later, ORDER_BODY, clock.now()).delivery.sent_at == clock.now()


@pytest.mark.parametrize(
    ("secret", "reason"),
    [("whsec_not*base64", "must be base64"), ("whsec_", "must not be empty"), (b"", "empty")],
)
def test_standard_webhooks_bad_secret_is_refused_at_construction(
    secret: str | bytes, reason: str
) -> None:
    """A key that is not base64 or is empty fails when configured, not per delivery."""
    with pytest.raises(ValueError, match=reason) as caught:
        StandardWebhooksVerifier(secret)
    assert "not*base64" not in str(caught.value)


def test_standard_webhooks_spec_test_vector_verifies() -> None:
    """The spec's published example (secret, id, timestamp, payload) verifies."""
    body = b'{"test": 2432232314}'
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    now = datetime.fromtimestamp(1614265330, UTC)
    result = StandardWebhooksVerifier("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").verify(
        headers, body, now
    )
    assert result.payload == {"test": 2432232314}


@pytest.mark.parametrize(
    "secret",
    [WH_SECRET, b"\x00\xffraw key bytes"],
    ids=["whsec", "raw-bytes"],
)
def test_standard_webhooks_sdk_signature_verifies_with_ours(secret: str | bytes) -> None:
    """A delivery signed by the official standardwebhooks package passes our verifier."""
    body = json.dumps({"type": "order.created", "data": {"id": "订单-1"}}, ensure_ascii=False)
    signature = Webhook(secret).sign("msg_sdk_1", T0, body)
    headers = {
        "Webhook-Id": "msg_sdk_1",
        "Webhook-Timestamp": str(TS),
        "Webhook-Signature": signature,
    }
    result = StandardWebhooksVerifier(secret).verify(headers, body.encode(), T0)
    assert result.delivery.topic == "order.created"
    assert result.payload["data"] == {"id": "订单-1"}


@pytest.mark.parametrize("secret", [WH_SECRET, b"\x00\xffraw key bytes"], ids=["whsec", "raw"])
def test_standard_webhooks_our_signature_verifies_with_the_sdk(secret: str | bytes) -> None:
    """A delivery signed by us passes the official package's verifier (on its real clock)."""
    body = json.dumps({"type": "order.created", "data": {"id": "订单-2"}}, ensure_ascii=False)
    now = int(time.time())
    headers = {
        "webhook-id": "msg_ours_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign_standard_webhook(secret, "msg_ours_1", now, body.encode()),
    }
    assert Webhook(secret).verify(body.encode(), headers) == json.loads(body)


# --- Douyin shop push ------------------------------------------------------------------


def test_douyin_valid_push_passes() -> None:
    """A push signed MD5(app_key + body + secret) yields its msg_id, tag and JSON array."""
    result = _douyin().verify(_push_headers(), PUSH_BODY, T0)
    assert result.delivery.message_id == "7211111111111111111"
    assert result.delivery.topic == "100"
    assert result.delivery.sent_at is None
    assert result.payload[0]["data"] == '{"p_id":6912345678}'


def test_douyin_uppercase_hex_signature_passes() -> None:
    """The hex digest is accepted in either case."""
    headers = _push_headers()
    headers["event-sign"] = headers["event-sign"].upper()
    assert _douyin().verify(headers, PUSH_BODY, T0).delivery.message_id == "7211111111111111111"


def test_douyin_batch_push_names_every_message() -> None:
    """A push of several messages joins their ids and distinct tags."""
    body = json.dumps(
        [
            {"tag": "100", "msg_id": "1", "data": "{}"},
            {"tag": "101", "msg_id": "2", "data": "{}"},
            {"tag": "100", "msg_id": 3, "data": "{}"},
        ]
    ).encode()
    delivery = _douyin().verify(_push_headers(body=body), body, T0).delivery
    assert (delivery.message_id, delivery.topic) == ("1,2,3", "100,101")


def test_douyin_single_object_body_passes() -> None:
    """A body holding one message as a bare object is taken as a batch of one."""
    body = json.dumps({"tag": "200", "msg_id": "9", "data": "{}"}).encode()
    assert _douyin().verify(_push_headers(body=body), body, T0).delivery.topic == "200"


def test_douyin_tampered_body_fails() -> None:
    """A body changed after signing is rejected as a mismatch."""
    body = PUSH_BODY.replace(b"6912345678", b"6912345679")
    with pytest.raises(SignatureInvalid, match="event-sign mismatch"):
        _douyin().verify(_push_headers(), body, T0)


def test_douyin_wrong_secret_fails() -> None:
    """A push signed with another app secret is rejected."""
    with pytest.raises(SignatureInvalid, match="mismatch"):
        _douyin().verify(_push_headers(secret="other-secret"), PUSH_BODY, T0)


def test_douyin_push_for_another_app_fails() -> None:
    """A push whose app-id names another app is rejected."""
    headers = _push_headers() | {"app-id": "7000000000000000000"}
    with pytest.raises(SignatureInvalid, match="app-id '7000000000000000000' is not this app"):
        _douyin().verify(headers, PUSH_BODY, T0)


def test_douyin_signature_made_with_another_app_key_fails() -> None:
    """The app key is part of the signed content: signing with another key fails."""
    headers = _push_headers(app_key="7000000000000000000")
    with pytest.raises(SignatureInvalid, match="mismatch"):
        _douyin().verify(headers, PUSH_BODY, T0)


@pytest.mark.parametrize("missing", ["app-id", "event-sign"])
def test_douyin_missing_header_fails(missing: str) -> None:
    """A push without app-id or event-sign names the missing header."""
    headers = _push_headers()
    del headers[missing]
    with pytest.raises(SignatureInvalid, match=f"missing header {missing}"):
        _douyin().verify(headers, PUSH_BODY, T0)


@pytest.mark.parametrize("value", ["z" * 32, "abc123", "0" * 64])
def test_douyin_garbled_signature_fails(value: str) -> None:
    """An event-sign that is not 32 hex digits is rejected as bad encoding."""
    headers = _push_headers() | {"event-sign": value}
    with pytest.raises(SignatureInvalid, match="not a 32-digit hex MD5"):
        _douyin().verify(headers, PUSH_BODY, T0)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[]", "holds no message array"),
        (b'"text"', "holds no message array"),
        (b"[1]", "message 0 is not an object"),
        (b'[{"tag": "100", "data": "{}"}]', "message 0 has no msg_id"),
        (b'[{"tag": "100", "msg_id": true}]', "message 0 has no msg_id"),
    ],
)
def test_douyin_signed_body_without_messages_fails(body: bytes, reason: str) -> None:
    """A correctly signed body that is not a message array with msg_ids is rejected."""
    with pytest.raises(SignatureInvalid, match=reason):
        _douyin().verify(_push_headers(body=body), body, T0)


def test_douyin_rotation_accepts_old_and_new_secret() -> None:
    """After an app secret reset, pushes signed with either configured secret pass."""
    verifier = DouyinPushVerifier(APP_KEY, ["reset-secret", APP_SECRET], _guard(ManualClock(T0)))
    for index, secret in enumerate((APP_SECRET, "reset-secret")):
        body = json.dumps([{"tag": "100", "msg_id": f"m{index}", "data": "{}"}]).encode()
        assert verifier.verify(_push_headers(body=body, secret=secret), body, T0).delivery


def test_douyin_removed_secret_fails() -> None:
    """Once the old app secret is removed, a push signed only with it is rejected."""
    verifier = DouyinPushVerifier(APP_KEY, ["reset-secret"], _guard(ManualClock(T0)))
    with pytest.raises(SignatureInvalid, match="mismatch"):
        verifier.verify(_push_headers(), PUSH_BODY, T0)


def test_douyin_replay_within_horizon_fails_and_passes_after() -> None:
    """The same push twice within the guard's horizon is a replay; after it, it passes."""
    clock = ManualClock(T0)
    verifier = _douyin(clock)
    verifier.verify(_push_headers(), PUSH_BODY, clock.now())
    clock.advance(timedelta(minutes=30))
    with pytest.raises(SignatureInvalid, match="replayed message '7211111111111111111'"):
        verifier.verify(_push_headers(), PUSH_BODY, clock.now())
    clock.advance(timedelta(minutes=30))
    assert verifier.verify(_push_headers(), PUSH_BODY, clock.now()).delivery.message_id


def test_douyin_batch_with_a_new_message_is_not_a_replay() -> None:
    """A re-sent message batched with a new one passes, so the new one is not lost."""
    verifier = _douyin()
    verifier.verify(_push_headers(), PUSH_BODY, T0)
    messages = [*json.loads(PUSH_BODY), {"tag": "100", "msg_id": "7299", "data": "{}"}]
    body = json.dumps(messages).encode()
    delivery = verifier.verify(_push_headers(body=body), body, T0).delivery
    assert delivery.message_id == "7211111111111111111,7299"


def test_douyin_forgotten_push_is_accepted_again() -> None:
    """After handling failed, ``forget`` lets the platform's retry of the push through."""
    guard = _guard(ManualClock(T0))
    verifier = DouyinPushVerifier(APP_KEY, APP_SECRET, guard)
    delivery = verifier.verify(_push_headers(), PUSH_BODY, T0).delivery
    guard.forget(*delivery.message_id.split(","))
    assert verifier.verify(_push_headers(), PUSH_BODY, T0).delivery == delivery


# --- secrets never leak ----------------------------------------------------------------

LEAKY = "ZEBRA-7f3c-secret"
LEAKY_WH = "whsec_" + base64.b64encode(LEAKY.encode()).decode()
MARKER_BODY = json.dumps([{"tag": "1", "msg_id": "m-1", "data": "BODYMARKER"}]).encode()


Verifier = ShopifyVerifier | StandardWebhooksVerifier | DouyinPushVerifier


def _leak_cases() -> list[tuple[str, Verifier, dict[str, str], bytes, datetime]]:
    """(case, verifier, headers, body, now) for every failure mode, all with LEAKY secrets."""
    body = MARKER_BODY
    shop = ShopifyVerifier([LEAKY, LEAKY + "-2"])
    std = StandardWebhooksVerifier([LEAKY_WH])
    douyin = DouyinPushVerifier(APP_KEY, [LEAKY], _guard(ManualClock(T0)))
    wh = _wh_headers(body=body, secret=LEAKY_WH, msg_id="m1")
    push = _push_headers(body=body, secret=LEAKY)
    shop_ok = _shopify_headers(body=body, secret=LEAKY)
    douyin.verify(push, body, T0)  # remembered: the next one is a replay
    return [
        ("shopify-mismatch", shop, shop_ok, body + b"x", T0),
        ("shopify-missing", shop, {"X-Shopify-Webhook-Id": "1"}, body, T0),
        ("shopify-encoding", shop, shop_ok | {"X-Shopify-Hmac-Sha256": "%%"}, body, T0),
        ("std-mismatch", std, wh, body + b"x", T0),
        ("std-stale", std, wh, body, T0 + HOUR),
        ("std-future", std, wh, body, T0 - HOUR),
        ("std-encoding", std, wh | {"webhook-signature": "v1,%%"}, body, T0),
        ("douyin-mismatch", douyin, push, body + b"x", T0),
        ("douyin-replay", douyin, push, body, T0),
        ("douyin-encoding", douyin, push | {"event-sign": "q" * 32}, body, T0),
    ]


def test_no_failure_message_reveals_secret_signature_or_body() -> None:
    """No raised message (or its cause) contains a secret, an expected signature or the body."""
    expected = {
        sign_shopify(LEAKY, MARKER_BODY),
        sign_shopify(LEAKY, MARKER_BODY + b"x"),
        sign_standard_webhook(LEAKY_WH, "m1", TS, MARKER_BODY + b"x").removeprefix("v1,"),
        sign_douyin_push(APP_KEY, LEAKY, MARKER_BODY + b"x"),
    }
    forbidden = {LEAKY, LEAKY_WH.removeprefix("whsec_"), "BODYMARKER", *expected}
    for case, verifier, headers, body, now in _leak_cases():
        with pytest.raises(SignatureInvalid) as caught:
            verifier.verify(headers, body, now)
        texts = [str(caught.value), str(caught.value.__cause__ or "")]
        leaked = [word for word in forbidden for text in texts if word.lower() in text.lower()]
        assert not leaked, f"{case}: message {texts[0]!r} leaks {leaked}"


def test_verifier_repr_hides_secrets() -> None:
    """A verifier's repr, as it may land in a log, shows no secret."""
    verifiers = [
        ShopifyVerifier(LEAKY),
        StandardWebhooksVerifier(LEAKY_WH),
        DouyinPushVerifier(APP_KEY, LEAKY, ReplayGuard()),
    ]
    for verifier in verifiers:
        assert LEAKY not in repr(verifier)
        assert LEAKY_WH not in repr(verifier)
