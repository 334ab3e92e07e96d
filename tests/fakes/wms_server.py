"""A fake WMS serving the HTTP stock feed on 127.0.0.1 (see ordercore_adapters.warehouses).

It holds a list of pages (batch id + entries); the cursor of page ``n`` is ``p<n>``
and reading it returns page ``n`` (the first page has no cursor). It checks each
request's HMAC signature (401 when wrong) and signs each answer with its own secret
(hmac from the standard library, written independently of the adapter). Faults for the
next requests: ``5xx``, ``hang`` (until the client times out), ``bad_signature`` (the
answer signed with another secret), ``unsigned``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fakes._http import LoopbackServer, TrackingHandler

__all__ = ["FakeWms"]

FAULTS = ("5xx", "hang", "bad_signature", "unsigned")


def _hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class _WmsHandler(TrackingHandler):
    def do_GET(self) -> None:
        fake = self.server.fake
        assert isinstance(fake, FakeWms)
        status, body, headers = fake._answer(self.path, dict(self.headers.items()))
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (a timeout)
            self.close_connection = True


class FakeWms(LoopbackServer):
    """Use as a context manager; point the adapter at :attr:`base_url`."""

    handler = _WmsHandler
    thread_name = "fake-wms"

    def __init__(self, *, key_id: str = "wms-key", secret: str = "wms-secret") -> None:
        super().__init__()
        self.key_id = key_id
        self.secret = secret
        self.pages: list[tuple[str, list[dict[str, Any]]]] = []
        """(batch id, entries) per page, in feed order."""
        self.requests: list[dict[str, str]] = []
        """The query of every request received, signature checked or not."""
        self.refused = 0
        """Requests refused for a bad signature or key."""
        self._faults: deque[str] = deque()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/wms``."""
        return self.origin + "/wms"

    def add_page(self, batch_id: str, entries: list[dict[str, Any]]) -> None:
        """Append a page to the feed."""
        with self._lock:
            self.pages.append((batch_id, entries))

    def change_page(self, index: int, entries: list[dict[str, Any]]) -> None:
        """Change a page's entries under the same batch id (a WMS misbehaving)."""
        with self._lock:
            self.pages[index] = (self.pages[index][0], entries)

    def fail_next(self, n: int, kind: str = "5xx") -> None:
        """The next ``n`` requests fail with ``kind``."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULTS)}")
        with self._lock:
            self._faults.clear()
            self._faults.extend([kind] * n)

    def _answer(self, target: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        parts = urlsplit(target)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self._lock:
            self.requests.append(params)
            fault = self._faults.popleft() if self._faults else None
        if fault == "hang":
            self._release.wait(10.0)
            return 200, b"{}", {}
        if fault == "5xx":
            return 503, b'{"error": "maintenance"}', {}
        if parts.path != "/wms/stock/changes":
            return 404, b'{"error": "not found"}', {}
        if not self._signed_by_client(parts.path, params, headers):
            with self._lock:
                self.refused += 1
            return 401, b'{"error": "bad signature"}', {}
        body = json.dumps(self._page(params), ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        secret = "not-the-secret" if fault == "bad_signature" else self.secret
        signed = (
            {}
            if fault == "unsigned"
            else {
                "X-Wms-Timestamp": timestamp,
                "X-Wms-Signature": _hmac(secret, timestamp.encode() + b"\n" + body),
            }
        )
        return 200, body, signed

    def _signed_by_client(self, path: str, params: dict[str, str], headers: dict[str, str]) -> bool:
        lowered = {name.lower(): value for name, value in headers.items()}
        if lowered.get("x-wms-key") != self.key_id:
            return False
        timestamp = lowered.get("x-wms-timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return False
        query = urlencode(sorted(params.items()))
        expected = _hmac(self.secret, f"GET\n{path}\n{query}\n{timestamp}".encode())
        return hmac.compare_digest(lowered.get("x-wms-signature", ""), expected)

    def _page(self, params: dict[str, str]) -> dict[str, Any]:
        cursor = params.get("cursor")
        index = 0 if cursor is None else int(cursor.removeprefix("p"))
        with self._lock:
            if index >= len(self.pages):
                return {"batch_id": f"empty-{index}", "cursor": f"p{index}", "entries": []}
            batch_id, entries = self.pages[index]
            more = index + 1 < len(self.pages)
        return {
            "batch_id": batch_id,
            "cursor": f"p{index + 1}",
            "has_more": more,
            "entries": entries,
        }
