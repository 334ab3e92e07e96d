"""A simulated ZTO-style courier open API on 127.0.0.1, and the incident replay's rig.

:class:`FakeCourierServer` answers JSON POSTs to ``/{api}`` the way
:mod:`ordercore_adapters.couriers.http_courier` describes the courier:

* checks ``x-appKey`` and ``x-dataDigest`` = base64(md5(body + secret)) (its own
  implementation, compared with ``hmac.compare_digest``); a bad one answers
  ``SIGN_ERROR`` / ``APPKEY_ERROR``;
* ``zto.open.createOrder``: one order per ``partnerOrderCode`` (the client order
  number): a repeat answers the first order's ``billCode`` (``duplicates="return"``,
  the default) or the ``ORDER_DUPLICATE`` error (``duplicates="error"``); missing
  receiver fields answer ``PARAM_ERROR``, a receiver province in ``unserved`` answers
  ``AREA_NOT_SERVED``;
* ``zto.open.getOrderInfo``, ``zto.open.cancelPreOrder`` (``ORDER_NOT_FOUND`` when
  unknown), ``zto.merchant.waybill.track.query``.

Faults: ``fail_next(n, kind)`` for the next n requests (``5xx``, ``busy``, ``malformed``,
``hang``, ``slow``); and a standing ``mode`` for a stretch of time: ``hang`` (every
request waits until :meth:`FakeCourierServer.recover` or the server stops, so clients
time out), ``slow`` (every answer takes ``slow_seconds``), ``5xx``. ``recover()``
switches back to normal and releases requests still hanging. A hung create that is
released late still creates its order (as a real courier would have): the orphan its
client gave up on.

It ships in the package (not only in the test suite) because ``ordercore
replay-incident`` runs against it: :func:`incident_rig` starts a primary and a backup
courier, the real :class:`~ordercore_adapters.couriers.HttpCourier` for each and the
failover chain with breakers (:func:`~ordercore_adapters.couriers.courier_chain`).
Stdlib HTTP server in a thread; never for production traffic.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Self

from ordercore.ports.couriers import CourierPort
from ordercore.resilience import Failover, ServicePolicy, StateChange

from .._loopback import LoopbackHttpServer, LoopbackServer, TrackingHandler
from .http_courier import HttpCourier
from .resilient import CourierChain, courier_chain

__all__ = [
    "APP_KEY",
    "APP_SECRET",
    "INCIDENT_POLICY",
    "CourierOrder",
    "FakeCourierServer",
    "IncidentRig",
    "LoopbackServer",
    "digest",
    "incident_rig",
]

APP_KEY = "fake-courier-appkey"
APP_SECRET = "fake-courier-secret-FROBOZZ"  # noqa: S105  the simulator's own, public
FAULT_KINDS = ("5xx", "busy", "malformed", "hang", "slow")
MODES = ("ok", "hang", "slow", "5xx")


def digest(body: bytes, secret: str = APP_SECRET) -> str:
    """The courier's expected ``x-dataDigest`` of ``body``."""
    return base64.b64encode(hashlib.md5(body + secret.encode()).digest()).decode()  # noqa: S324


@dataclass
class CourierOrder:
    """One order the fake courier holds."""

    partner_code: str
    bill_code: str
    body: dict[str, Any]
    cancelled: bool = False
    scans: list[dict[str, Any]] = field(default_factory=list)


class _BusyServer(LoopbackHttpServer):
    """Room for a burst of connections: the stdlib's listen backlog of 5 makes a burst of
    20 wait for SYN retransmits (a second each), which would read as a slow courier."""

    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout) resets its connection: not worth a traceback."""
        if isinstance(sys.exception(), OSError):
            return
        super().handle_error(request, client_address)


class _Handler(TrackingHandler):
    def do_POST(self) -> None:  # noqa: N802  the stdlib handler's name
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        fake = self.server.fake
        assert isinstance(fake, FakeCourierServer)
        status, payload = fake._answer(self.path.lstrip("/"), dict(self.headers), body)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up (a timeout): nothing to answer
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802  the stdlib handler's name
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


class FakeCourierServer(LoopbackServer):
    """The fake courier; a context manager. Point the adapter at :attr:`url`."""

    handler = _Handler
    thread_name = "fake-courier"

    def __init__(
        self,
        prefix: str = "ZT",
        *,
        duplicates: str = "return",
        slow_seconds: float = 0.3,
        hang_seconds: float = 30.0,
        unserved: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.prefix = prefix
        self.duplicates = duplicates
        self.slow_seconds = slow_seconds
        self.hang_seconds = hang_seconds
        self.unserved = unserved
        self.mode = "ok"
        self.orders: dict[str, CourierOrder] = {}
        """By partnerOrderCode."""
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        """(api, headers, body) of every request, in arrival order."""
        self.creates = 0
        """createOrder requests that created an order."""
        self._faults: deque[str] = deque()
        self._recovered = threading.Event()
        self._counter = 0

    def __enter__(self) -> Self:
        server = _BusyServer(("127.0.0.1", 0), self.handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=self.thread_name
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        """The API base URL."""
        return self.origin

    # -- control -------------------------------------------------------------------------

    def fail_next(self, n: int, kind: str = "5xx") -> None:
        """The next ``n`` requests fail with ``kind`` (see the module docstring)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._faults.extend([kind] * n)

    def set_mode(self, mode: str) -> None:
        """Answer every request ``hang``, ``slow``, ``5xx`` or ``ok`` from now on."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
        with self._lock:
            self.mode = mode
            if mode == "ok":
                self._recovered.set()
            else:
                self._recovered.clear()

    def recover(self) -> None:
        """Back to normal; requests still hanging are released (and answered)."""
        self.set_mode("ok")

    def live_orders(self) -> list[CourierOrder]:
        """Orders not cancelled."""
        with self._lock:
            return [order for order in self.orders.values() if not order.cancelled]

    def requests_to(self, api: str) -> int:
        """How many requests reached ``api``."""
        with self._lock:
            return sum(1 for name, _, _ in self.requests if name == api)

    # -- answering -----------------------------------------------------------------------

    def _answer(self, api: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        with self._lock:
            self.requests.append((api, headers, body))
            fault = self._faults.popleft() if self._faults else None
            mode = self.mode
        if fault == "hang" or (fault is None and mode == "hang"):
            self._hang()
        elif fault == "slow" or (fault is None and mode == "slow"):
            time.sleep(self.slow_seconds)
        elif fault == "5xx" or (fault is None and mode == "5xx"):
            return 502, b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        elif fault == "malformed":
            return 200, b'{"status":tr'
        elif fault == "busy":
            return 200, _error("SYS_BUSY", "system busy, try again later")
        with self._lock:
            payload = self._dispatch(api, headers, body)
        return 200, json.dumps(payload, ensure_ascii=False).encode()

    def _hang(self) -> None:
        deadline = time.monotonic() + self.hang_seconds
        while time.monotonic() < deadline and not self._release.is_set():
            if self._recovered.wait(0.02):
                return

    def _dispatch(self, api: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        lowered = {key.lower(): value for key, value in headers.items()}
        if lowered.get("x-appkey") != APP_KEY:
            return _fail("APPKEY_ERROR", "unknown app key")
        if not hmac.compare_digest(lowered.get("x-datadigest", ""), digest(body)):
            return _fail("SIGN_ERROR", "data digest does not match")
        try:
            data = json.loads(body)
        except ValueError:
            return _fail("PARAM_ERROR", "body is not JSON")
        if api == "zto.open.createOrder":
            return self._create(data)
        if api == "zto.open.getOrderInfo":
            order = self.orders.get(str(data.get("partnerOrderCode")))
            if order is None:
                return _fail("ORDER_NOT_FOUND", "no such order")
            return _ok(self._result(order))
        if api == "zto.open.cancelPreOrder":
            order = self.orders.get(str(data.get("partnerOrderCode")))
            if order is None or order.cancelled:
                return _fail("ORDER_NOT_FOUND", "no such order")
            order.cancelled = True
            return _ok({"orderCode": order.partner_code})
        if api == "zto.merchant.waybill.track.query":
            for order in self.orders.values():
                if order.bill_code == data.get("billCode"):
                    return _ok(order.scans)
            return _ok([])
        return _fail("API_NOT_FOUND", f"unknown api {api}")

    def _create(self, data: dict[str, Any]) -> dict[str, Any]:
        code = data.get("partnerOrderCode")
        if not isinstance(code, str) or not code:
            return _fail("PARAM_ERROR", "partnerOrderCode is required")
        receiver = data.get("receiveInfo") or {}
        missing = [
            key
            for key in ("receiverName", "receiverMobile", "receiverProvince", "receiverAddress")
            if not receiver.get(key)
        ]
        if missing:
            return _fail("PARAM_ERROR", f"missing {', '.join(missing)}")
        if receiver.get("receiverProvince") in self.unserved:
            return _fail("AREA_NOT_SERVED", "the receiver's area is not served")
        existing = self.orders.get(code)
        if existing is not None:
            if self.duplicates == "error":
                return _fail("ORDER_DUPLICATE", f"partnerOrderCode {code} exists")
            return _ok(self._result(existing))
        self._counter += 1
        bill = f"{self.prefix}{self._counter:010d}"
        order = CourierOrder(code, bill, data)
        order.scans.append(
            {
                "scanDate": 1798729200000,
                "scanType": "收件",
                "desc": "已揽收",
                "scanSite": {"name": "上海"},
            }
        )
        self.orders[code] = order
        self.creates += 1
        return _ok(self._result(order))

    def _result(self, order: CourierOrder) -> dict[str, Any]:
        return {
            "orderCode": order.partner_code,
            "billCode": order.bill_code,
            "bigMarkInfo": {"mark": "310-A01"},
            "printUrl": f"https://print.fake-courier.test/{order.bill_code}.pdf",
        }


def _ok(result: Any) -> dict[str, Any]:
    return {"status": True, "statusCode": "SUCCESS", "message": "", "result": result}


def _fail(code: str, message: str) -> dict[str, Any]:
    return {"status": False, "statusCode": code, "message": message, "result": None}


def _error(code: str, message: str) -> bytes:
    return json.dumps(_fail(code, message)).encode()


# -- the incident replay's rig ---------------------------------------------------------

INCIDENT_POLICY = ServicePolicy(
    timeout=timedelta(seconds=0.5),
    attempts=2,
    backoff_initial=timedelta(milliseconds=50),
    backoff_max=timedelta(milliseconds=200),
    retry_deadline=timedelta(seconds=3),
    fail_max=5,
    reset_timeout=timedelta(seconds=1),
    success_threshold=1,
    half_open_max_calls=1,
    slow_call_threshold=None,
    max_concurrent=32,
    max_waiting=128,
)
"""The primary's policy in the replay: a short timeout and reset so a run stays short.

The backup gets the same with a 5 s timeout: a loopback server under a burst must not
trip it, and it is not the courier under test.
"""


@dataclass
class IncidentRig:
    """Two simulated couriers and the chain over them (the ``CourierRig`` of the replay)."""

    primary: FakeCourierServer
    backup: FakeCourierServer
    couriers: CourierChain

    @property
    def chain(self) -> Failover[CourierPort]:
        """Primary first, then the backup; each behind its own pipeline and breaker."""
        return self.couriers.failover

    def hang(self) -> None:
        """The primary starts hanging."""
        self.primary.set_mode("hang")

    def recover(self) -> None:
        """The primary answers again (hung requests are released)."""
        self.primary.recover()

    def history(self) -> list[StateChange]:
        """Every breaker's state changes, oldest first."""
        return self.couriers.history()

    def live_waybills(self) -> dict[str, dict[str, int]]:
        """Courier code -> idempotency key -> live waybills the courier holds for it."""
        live: dict[str, dict[str, int]] = {}
        for code, server in (("zto", self.primary), ("sf", self.backup)):
            held = live.setdefault(code, {})
            for order in server.live_orders():
                held[order.partner_code] = held.get(order.partner_code, 0) + 1
        return live


@asynccontextmanager
async def incident_rig(
    policy: ServicePolicy = INCIDENT_POLICY, *, hang_seconds: float = 120.0
) -> AsyncIterator[IncidentRig]:
    """Start a primary (``zto``) and a backup (``sf``) courier on 127.0.0.1 and chain them.

    Everything is stopped and closed on exit, hanging requests included.
    """
    backup_policy = policy.model_copy(update={"timeout": timedelta(seconds=5)})
    with (
        FakeCourierServer("ZT", hang_seconds=hang_seconds) as primary,
        FakeCourierServer("SF", hang_seconds=hang_seconds) as backup,
    ):
        adapters = [
            HttpCourier(
                code,
                {"base_url": server.url, "app_key": APP_KEY, "app_secret": APP_SECRET},
            )
            for code, server in (("zto", primary), ("sf", backup))
        ]
        chain = courier_chain(adapters, policy=policy, policies={"sf": backup_policy})
        try:
            yield IncidentRig(primary, backup, chain)
        finally:
            primary.recover()
            await chain.aclose()
