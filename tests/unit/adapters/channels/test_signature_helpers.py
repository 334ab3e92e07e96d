"""The shared helpers: header lookup, constant-time matching and strict base64."""

from __future__ import annotations

import hmac

import pytest

from ordercore.errors import SignatureInvalid
from ordercore_adapters.channels.signatures.helpers import (
    b64decode,
    find_header,
    matches_any,
    require_header,
    secret_list,
)


def test_matches_any_compares_every_pair_without_early_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every received/expected pair is compared even after a match (no timing shortcut)."""
    compared: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    assert matches_any([b"x", b"y"], [b"x", b"z", b"w"])
    assert len(compared) == 6


def test_matches_any_without_a_match_is_false() -> None:
    """No equal pair means no match, including for different lengths."""
    assert not matches_any([b"abc"], [b"abd", b"abcd"])


def test_find_header_ignores_case() -> None:
    """A header is found under any spelling of its name; absence gives None."""
    assert find_header({"WEBHOOK-ID": "m"}, "Webhook-Id") == "m"
    assert find_header({}, "webhook-id") is None


def test_require_header_rejects_blank_values() -> None:
    """A header present but blank counts as missing."""
    with pytest.raises(SignatureInvalid, match="missing header webhook-id"):
        require_header({"webhook-id": "  "}, "webhook-id")


@pytest.mark.parametrize("value", ["not base64!", "ÄÖÜ", "a"])
def test_b64decode_turns_decoding_errors_into_signature_invalid(value: str) -> None:
    """Invalid or non-ASCII base64 raises SignatureInvalid naming the field, not the value."""
    with pytest.raises(SignatureInvalid, match=r"^the signature is not valid base64$"):
        b64decode(value, "the signature")


def test_b64decode_accepts_missing_padding() -> None:
    """Unpadded base64 decodes like padded."""
    assert b64decode("aGk", "x") == b64decode("aGk=", "x") == b"hi"


@pytest.mark.parametrize(("secrets", "reason"), [([], "at least one"), (["a", ""], "#1 is empty")])
def test_secret_list_refuses_missing_or_empty_secrets(secrets: list[str], reason: str) -> None:
    """No secret, or an empty one, is refused at configuration time."""
    with pytest.raises(ValueError, match=reason):
        secret_list(secrets, "test")
