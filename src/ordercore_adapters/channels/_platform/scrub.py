"""Secrets a client knows, scrubbed from any text it quotes (platform text may echo them)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["REDACTED", "SecretScrubber"]

REDACTED = "<redacted>"


class SecretScrubber:
    """Replaces every known secret (longest first) with ``<redacted>``; empty ones are ignored."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Scrub ``secret`` too from now on."""
        if secret:
            self._secrets.add(secret)

    def redact(self, text: str) -> str:
        """``text`` with every known secret replaced."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text
