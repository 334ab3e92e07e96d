"""A real NATS JetStream for tests: find it (or skip, saying why).

The server is ``ORDERCORE_TEST_NATS_URL`` (default ``nats://127.0.0.1:4222``). With
``ORDERCORE_REQUIRE_NATS=1`` (CI sets it) an unreachable server fails the test instead of
skipping it.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from urllib.parse import urlsplit

import pytest

__all__ = ["DEFAULT_URL", "nats_url_or_skip"]

DEFAULT_URL = "nats://127.0.0.1:4222"


def nats_url_or_skip() -> str:
    """The URL of a reachable NATS server, or skip the test with the reason."""
    url, reason = _probe()
    if url is None:
        if os.environ.get("ORDERCORE_REQUIRE_NATS") == "1":
            pytest.fail(f"ORDERCORE_REQUIRE_NATS=1 but {reason}")
        pytest.skip(reason)
    return url


@cache
def _probe() -> tuple[str | None, str]:
    url = os.environ.get("ORDERCORE_TEST_NATS_URL", DEFAULT_URL)
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 4222
    try:
        with socket.create_connection((host, port), timeout=2) as conn:
            greeting = conn.recv(4096)
    except OSError as exc:
        return (
            None,
            f"no NATS server reachable at {host}:{port} ({exc}); set ORDERCORE_TEST_NATS_URL",
        )
    if not greeting.startswith(b"INFO") or b'"jetstream":true' not in greeting.replace(b" ", b""):
        return None, f"the NATS server at {host}:{port} does not have JetStream enabled (-js)"
    return url, ""
