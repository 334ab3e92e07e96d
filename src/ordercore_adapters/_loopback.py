"""A real HTTP server on 127.0.0.1 in a thread, for simulators and fake platforms.

The stdlib ``ThreadingHTTPServer`` on an ephemeral port, tracking its connections so a
stop closes them (a client hanging on a request sees the close at once). Used by the
courier simulator behind ``ordercore replay-incident`` and by the test suite's fake
platform servers; never for production traffic.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

__all__ = ["LoopbackHttpServer", "LoopbackServer", "TrackingHandler"]


class LoopbackHttpServer(ThreadingHTTPServer):
    """The stdlib threading server, joining its request threads on close."""

    daemon_threads = False
    block_on_close = True
    fake: LoopbackServer


class TrackingHandler(BaseHTTPRequestHandler):
    """A keep-alive handler whose connections the fake can cut when it stops."""

    protocol_version = "HTTP/1.1"
    server: LoopbackHttpServer

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        return None


class LoopbackServer:
    """A real HTTP server on 127.0.0.1 (ephemeral port) in a thread; a context manager.

    Subclasses name their ``handler`` class; ``stop()`` releases hanging requests, cuts
    every open connection and joins every thread, so no test leaks a socket.
    """

    handler: type[TrackingHandler]
    thread_name = "fake-server"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._release = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: LoopbackHttpServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        server = LoopbackHttpServer(("127.0.0.1", 0), self.handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=self.thread_name
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Release hanging requests, close every connection, join every thread."""
        if self._server is None:
            return
        self._release.set()
        self._server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``."""
        assert self._server is not None, "start the server first (use it as a context manager)"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)
