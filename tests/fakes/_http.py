"""Plumbing shared by the fake platform gateways: a real HTTP server on 127.0.0.1.

A stdlib ``ThreadingHTTPServer`` in a thread, on an ephemeral port, answering form
POSTs. A subclass implements :meth:`FakeGateway.dispatch` (form -> JSON object, or a
:class:`Reply` raised with the platform's error); this base records every request and
injects the transport faults every platform shares: ``5xx``, ``malformed`` JSON and
``hang`` (until the client times out or the server stops).
"""

from __future__ import annotations

import json
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qsl

from ordercore_adapters._loopback import LoopbackHttpServer, LoopbackServer, TrackingHandler

__all__ = [
    "FAULTS",
    "FakeGateway",
    "LoopbackHttpServer",
    "LoopbackServer",
    "Reply",
    "TrackingHandler",
]

FAULTS = ("5xx", "malformed", "hang")


class Reply(Exception):
    """Raised by ``dispatch`` to answer with ``payload`` (an error shape, say)."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload)
        self.payload = payload


class _GatewayHandler(TrackingHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8")
        form = dict(parse_qsl(body, keep_blank_values=True))
        fake = self.server.fake
        assert isinstance(fake, FakeGateway)
        status, content_type, payload = fake._answer(form)
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up (a timeout): nothing to answer
            self.close_connection = True


class FakeGateway(LoopbackServer):
    """Base of a fake gateway: use as a context manager, point the adapter at :attr:`url`."""

    handler = _GatewayHandler
    path = "/"
    thread_name = "fake-gateway"
    faults: tuple[str, ...] = FAULTS
    """The faults :meth:`fail_next` accepts; a subclass adds its own (see :meth:`fault`)."""
    hang_body = b"{}"
    malformed_body = b'{"order_search_resp'

    def __init__(self, *, hang_seconds: float = 10.0) -> None:
        self.hang_seconds = hang_seconds
        self.requests: list[dict[str, str]] = []
        """Every form received, in order (signature checked or not)."""
        self.request_times: list[float] = []
        self._faults: deque[str] = deque()
        super().__init__()

    @property
    def url(self) -> str:
        """The gateway URL (``http://127.0.0.1:PORT`` + :attr:`path`)."""
        return self.origin + self.path

    def fail_next(self, n: int, kind: str = "5xx") -> None:
        """The next ``n`` requests fail: ``5xx``, ``malformed`` JSON, ``hang`` (or a subclass's)."""
        if kind not in self.faults:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(self.faults)}")
        with self._lock:
            self._faults.clear()
            self._faults.extend([kind] * n)

    def dispatch(self, form: dict[str, str]) -> dict[str, Any]:
        """Answer one request (called under the lock); raise Reply for an error shape."""
        raise NotImplementedError

    def fault(self, kind: str) -> None:
        """Answer a subclass's own fault ``kind`` (called under the lock): raise Reply."""
        raise NotImplementedError(kind)

    def _answer(self, form: dict[str, str]) -> tuple[int, str, bytes]:
        with self._lock:
            self.requests.append(form)
            self.request_times.append(time.monotonic())
            fault = self._faults.popleft() if self._faults else None
        if fault == "hang":
            self._release.wait(self.hang_seconds)
            return 200, "application/json", self.hang_body
        if fault == "5xx":
            return 502, "text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        if fault == "malformed":
            return 200, "application/json;charset=UTF-8", self.malformed_body
        with self._lock:
            try:
                if fault is not None:
                    self.fault(fault)
                payload = self.dispatch(form)
            except Reply as reply:
                payload = reply.payload
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        return 200, "application/json;charset=UTF-8", data
