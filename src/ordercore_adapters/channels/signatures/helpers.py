"""What every signature scheme needs: header lookup, constant-time matching, decoding.

Every failure raises :class:`ordercore.errors.SignatureInvalid` with a message that
names what failed. Messages never carry a secret, an expected signature or the body;
where they quote a received header value, it is shortened and ``repr``-escaped.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ordercore.domain.channels import WebhookDelivery
from ordercore.errors import SignatureInvalid

__all__ = [
    "Secrets",
    "VerifiedWebhook",
    "b64decode",
    "find_header",
    "matches_any",
    "parse_json_body",
    "require_header",
    "require_utc",
    "secret_list",
    "shown",
]

Secrets = str | bytes | Sequence[str | bytes]
"""One secret, or several during a rotation (any of them may sign)."""

_SHOWN_LIMIT = 40


@dataclass(frozen=True, slots=True)
class VerifiedWebhook:
    """A delivery whose signature held: the parsed delivery and its decoded JSON body."""

    delivery: WebhookDelivery
    payload: Any
    """The JSON body as ``json.loads`` returned it (the channel adapter maps it)."""


def shown(value: str) -> str:
    """A received (untrusted, non-secret) value fit for an error message: short, escaped."""
    if len(value) > _SHOWN_LIMIT:
        return repr(value[:_SHOWN_LIMIT]) + "..."
    return repr(value)


def find_header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` (any case), or None when absent.

    A header that appears under several spellings with different values is ambiguous
    and raises SignatureInvalid rather than letting one spelling win.
    """
    wanted = name.lower()
    values = {value for key, value in headers.items() if key.lower() == wanted}
    if len(values) > 1:
        raise SignatureInvalid(f"header {name} is given more than once with different values")
    return values.pop() if values else None


def require_header(headers: Mapping[str, str], name: str) -> str:
    """The non-blank value of header ``name`` (any case); SignatureInvalid when missing."""
    value = find_header(headers, name)
    if value is None or not value.strip():
        raise SignatureInvalid(f"missing header {name}")
    return value.strip()


def matches_any(received: Iterable[bytes], expected: Iterable[bytes]) -> bool:
    """Whether any received signature equals any expected one, in constant time.

    Every pair is compared (no exit on the first match or mismatch), so the time taken
    tells an attacker nothing about which candidate came close.
    """
    expected_all = tuple(expected)
    found = False
    for candidate in received:
        for reference in expected_all:
            found |= hmac.compare_digest(candidate, reference)
    return found


def b64decode(value: str, what: str) -> bytes:
    """Strict standard base64 (padding optional); SignatureInvalid naming ``what`` if not."""
    padded = value + "=" * (-len(value) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureInvalid(f"{what} is not valid base64") from exc


def parse_json_body(body: bytes) -> Any:
    """The decoded JSON body of a verified delivery; SignatureInvalid if it is not JSON."""
    # The decoders' own messages quote bytes of the body: name only the position.
    try:
        return json.loads(body)
    except UnicodeDecodeError as exc:
        position = exc.start
    except json.JSONDecodeError as exc:
        position = exc.pos
    raise SignatureInvalid(f"body is signed but is not JSON (error at position {position})")


def require_utc(now: datetime) -> datetime:
    """``now`` in UTC; ValueError for a naive time (local time is never guessed)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware UTC datetime, got a naive one")
    return now.astimezone(UTC)


def secret_list(secrets: Secrets, scheme: str) -> tuple[bytes, ...]:
    """One or several secrets as UTF-8 bytes; ValueError when there is none or one is empty."""
    items: Sequence[str | bytes] = [secrets] if isinstance(secrets, str | bytes) else list(secrets)
    keys = tuple(item.encode() if isinstance(item, str) else bytes(item) for item in items)
    if not keys:
        raise ValueError(f"{scheme}: at least one secret is needed")
    if not all(keys):
        raise ValueError(f"{scheme}: secret #{[bool(k) for k in keys].index(False)} is empty")
    return keys
