"""A fake TOP gateway (Taobao Open Platform) on 127.0.0.1, for the Taobao adapter's tests.

A real HTTP server (stdlib ``ThreadingHTTPServer`` in a thread, on an ephemeral port)
that answers TOP's ``/router/rest`` form POSTs the way TOP does, as far as TOP's public
docs describe it:

* checks the system params, the app key, the timestamp (within 10 minutes of its
  clock) and the signature (md5, hmac, hmac-sha256; an implementation separate from the
  adapter's, compared with ``hmac.compare_digest``), then the session key;
* ``taobao.trades.sold.increment.get``: trades whose ``modified`` lies in
  ``[start_modified, end_modified]`` (both inclusive, to the second), newest first,
  ``total_results`` (or ``has_next`` with ``use_has_next=true``), a 1-day cap on the span,
  90 days of history, page_size 1..100; only the requested ``fields`` come back;
* ``taobao.time.get`` (its clock, Asia/Shanghai) and ``taobao.top.auth.token.refresh``;
* TOP's error shape: ``{"error_response": {"code", "msg", "sub_code", "sub_msg"}}``.

Faults a test switches on: an expired session (code 27), a rate-limit ban (code 7, for
real seconds), the next N requests failing with 5xx, an ``isp.*`` error, malformed JSON
or a hang (until the client times out), and a trade modified while a window is paged.
It implements the contract suite's control protocol: ``add_order``, ``now``,
``expire_credentials``, ``fail_next``.

Error codes for the span cap, history depth and bad refresh tokens are modelled on
TOP's documented shape; their exact sub_codes are assumed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fakes._http import FakeGateway, Reply
from fakes.shelf import Shelf
from fakes.shipment_ledger import ShipmentLedger

__all__ = [
    "APP_KEY",
    "APP_SECRET",
    "REFRESH_TOKEN",
    "SESSION",
    "FakeTopServer",
    "sample_refund",
    "sample_trade",
    "top_time",
]

APP_KEY = "12345678"
APP_SECRET = "fake-top-secret-XYZZY"
SESSION = "6100fake-session-PLUGH"
REFRESH_TOKEN = "6101fake-refresh-FROBOZZ"
SHANGHAI = ZoneInfo("Asia/Shanghai")
_TOP_TIME = "%Y-%m-%d %H:%M:%S"
_STOCK_METHODS = frozenset({"taobao.skus.quantity.update", "taobao.item.quantity.update"})
_REFUNDS_METHOD = "taobao.refunds.receive.get"
_SESSION_METHODS = frozenset({"taobao.trades.sold.increment.get", *_STOCK_METHODS, _REFUNDS_METHOD})
_NO_SESSION_METHODS = frozenset({"taobao.time.get", "taobao.top.auth.token.refresh"})
_SEND_METHOD = "taobao.logistics.offline.send"
FAULTS = ("5xx", "isp", "malformed", "hang")


def top_time(moment: datetime) -> str:
    """An aware time as TOP's wall clock."""
    return moment.astimezone(SHANGHAI).strftime(_TOP_TIME)


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, _TOP_TIME).replace(tzinfo=SHANGHAI).astimezone(UTC)


def _expected_sign(form: dict[str, str], secret: str) -> str | None:
    text = "".join(f"{k}{v}" for k, v in sorted(form.items()) if k != "sign" and v != "")
    key, body = secret.encode(), text.encode()
    method = form.get("sign_method", "")
    if method == "md5":
        return hashlib.md5(key + body + key).hexdigest().upper()
    if method == "hmac":
        return hmac.new(key, body, "md5").hexdigest().upper()
    if method == "hmac-sha256":
        return hmac.new(key, body, "sha256").hexdigest().upper()
    return None


def sample_refund(
    refund_id: str,
    tid: str,
    modified: datetime,
    *,
    status: str = "WAIT_SELLER_CONFIRM_GOODS",
    has_good_return: bool = True,
    num: int = 1,
    outer_id: str = "TEE-2026-BLK-S",
) -> dict[str, Any]:
    """A refund as ``taobao.refunds.receive.get`` returns it (yuan strings, TOP times)."""
    return {
        "refund_id": refund_id,
        "tid": tid,
        "oid": f"{tid}0",
        "num": num,
        "num_iid": 612345678901,
        "outer_id": outer_id,
        "sku": "4412345678900|颜色分类:黑色;尺码:S",
        "title": "纯棉短袖T恤 黑色",
        "status": status,
        "order_status": "WAIT_BUYER_CONFIRM_GOODS",
        "good_status": "BUYER_RETURNED_GOODS" if has_good_return else "BUYER_NOT_RECEIVED",
        "has_good_return": has_good_return,
        "refund_fee": "59.00",
        "total_fee": "59.00",
        "payment": "59.00",
        "reason": "尺码拍错/不喜欢/效果差",
        "desc": "",
        "sid": "SF1234567890" if has_good_return else "",
        "company_name": "顺丰速运" if has_good_return else "",
        "created": top_time(modified - timedelta(hours=2)),
        "modified": top_time(modified),
        "refund_phase": "aftersale",
    }


def sample_trade(
    tid: str,
    modified: datetime,
    *,
    status: str = "WAIT_SELLER_SEND_GOODS",
    lines: int = 1,
) -> dict[str, Any]:
    """A trade as TOP's increment API returns it (masked receiver, yuan strings)."""
    created = modified - timedelta(minutes=5)
    number = int(tid) if tid.isdigit() else None
    order_lines = [
        {
            "oid": (number or 0) * 10 + index,
            "oid_str": f"{tid}{index}",
            "num_iid": 612345678901 + index,
            "sku_id": f"44123456789{index:02d}",
            "outer_iid": "TEE-2026",
            "outer_sku_id": f"TEE-2026-BLK-{'SML'[index % 3]}",
            "title": "纯棉短袖T恤 黑色",
            "num": 1 + index,
            "price": "59.00",
            "status": status,
        }
        for index in range(lines)
    ]
    return {
        "tid": number if number is not None else tid,
        "tid_str": tid,
        "status": status,
        "created": top_time(created),
        "modified": top_time(modified),
        "pay_time": top_time(created + timedelta(minutes=1)),
        "buyer_open_uid": "AAHk3xVHANcJmQ2Fqs1bUyVb",
        "buyer_message": "",
        "post_fee": "0.00",
        "payment": "118.00",
        "receiver_name": "王*",
        "receiver_mobile": "*******5678",
        "receiver_phone": "",
        "receiver_state": "浙江省",
        "receiver_city": "杭州市",
        "receiver_district": "余杭区",
        "receiver_town": "五常街道",
        "receiver_address": "文一西路***号",
        "receiver_zip": "311121",
        "orders": {"order": order_lines},
    }


def _error(code: int, msg: str, sub_code: str = "", sub_msg: str = "") -> Reply:
    body: dict[str, Any] = {"code": code, "msg": msg, "request_id": "fake"}
    if sub_code:
        body["sub_code"] = sub_code
    if sub_msg:
        body["sub_msg"] = sub_msg
    return Reply({"error_response": body})


@dataclass
class _Move:
    tid: str
    after_pages: int
    to: datetime | None


class FakeTopServer(FakeGateway):
    """The fake gateway: use as a context manager, point the adapter at :attr:`url`."""

    path = "/router/rest"
    thread_name = "fake-top"
    faults = FAULTS
    hang_body = b'{"time_get_response": {}}'
    malformed_body = b'{"trades_sold_increment_get_resp'

    def __init__(
        self,
        *,
        app_key: str = APP_KEY,
        app_secret: str = APP_SECRET,
        session: str = SESSION,
        refresh_token: str | None = REFRESH_TOKEN,
        clock: Callable[[], datetime] | None = None,
        hang_seconds: float = 10.0,
        echo_secrets_in_errors: bool = False,
    ) -> None:
        super().__init__(hang_seconds=hang_seconds)
        self.app_key = app_key
        self.app_secret = app_secret
        self.session = session
        self.refresh_token = refresh_token
        self._clock = clock or (lambda: datetime.now(UTC))
        self.echo_secrets_in_errors = echo_secrets_in_errors
        self.session_valid = True
        self.trades: dict[str, dict[str, Any]] = {}
        self.modified: dict[str, datetime] = {}
        self.trade_pages: list[int] = []
        """The page_no of every increment.get answered with trades (not an error)."""
        self.requests_during_ban = 0
        self.refreshes = 0
        self._ban_next: float | None = None
        self._banned_until = 0.0
        self._moves: list[_Move] = []
        self.refunds: dict[str, dict[str, Any]] = {}
        """Refunds by refund_id (``taobao.refunds.receive.get``)."""
        self.refund_pages: list[int] = []
        self.shelf = Shelf()
        """Listings by ``num_iid:sku_id`` (or ``num_iid``) for stock-push tests."""
        self.shipments = ShipmentLedger(companies={"ZTO", "YTO", "STO", "YUNDA", "SF", "EMS"})
        """Pushes taken by ``taobao.logistics.offline.send``."""

    # -- the contract suite's control protocol -------------------------------------------

    def add_order(self, external_id: str, modified_at_utc: datetime) -> None:
        """Create or change a trade, modified at ``modified_at_utc`` (whole seconds)."""
        self.put_trade(sample_trade(external_id, modified_at_utc))

    def now(self) -> datetime:
        """The platform's clock (UTC)."""
        return self._clock()

    def expire_credentials(self) -> None:
        """The seller's session key stops working (code 27 from now on)."""
        with self._lock:
            self.session_valid = False

    # -- more controls ---------------------------------------------------------------------

    def put_trade(self, trade: dict[str, Any]) -> None:
        """Store a trade as given (its ``modified`` decides where it lists)."""
        tid = str(trade["tid_str"])
        with self._lock:
            self.trades[tid] = trade
            self.modified[tid] = _parse_time(trade["modified"])

    def touch(self, tid: str, at: datetime | None = None) -> None:
        """Modify a trade now (or at ``at``): it moves to the front of the listing."""
        moment = (at or self.now()).replace(microsecond=0)
        with self._lock:
            self.trades[tid] = {**self.trades[tid], "modified": top_time(moment)}
            self.modified[tid] = moment

    def modify_during_paging(
        self, tid: str, *, after_pages: int, to: datetime | None = None
    ) -> None:
        """Touch trade ``tid`` right after the ``after_pages``-th page has been answered."""
        with self._lock:
            self._moves.append(_Move(tid, after_pages, to))

    def ban(self, seconds: float) -> None:
        """The next request is answered code 7 and starts a ban of ``seconds`` (real time)."""
        with self._lock:
            self._ban_next = seconds

    # -- answering -------------------------------------------------------------------------

    def fault(self, kind: str) -> None:
        """The ``isp`` fault: a remote service error TOP says is worth retrying."""
        if kind == "isp":
            raise _error(15, "Remote service error", "isp.top-remote-connection-timeout", "超时")
        super().fault(kind)

    def dispatch(self, form: dict[str, str]) -> dict[str, Any]:
        if form.get("method") == "fake.storefront.buy":  # a buyer, not a TOP API call
            order = self.shelf.buy(form.get("listing", ""), int(form.get("quantity", "1")))
            return {"accepted": order is not None, "order_id": order}
        self._check_ban()
        method = form.get("method", "")
        if not method:
            raise _error(21, "Missing method")
        if not form.get("app_key"):
            raise _error(28, "Missing app key")
        if form["app_key"] != self.app_key:
            raise _error(29, "Invalid app Key")
        self._check_timestamp(form)
        if form.get("v") != "2.0" or form.get("format", "xml") != "json":
            raise _error(41, "Invalid arguments", "isv.invalid-parameter", "v=2.0, format=json")
        given = form.get("sign", "")
        expected = _expected_sign(form, self.app_secret)
        if not given:
            raise _error(24, "Missing signature")
        if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
            raise _error(25, "Invalid signature")
        if method == _SEND_METHOD:
            self._check_session(form)
            return self._offline_send(form)
        if method in _SESSION_METHODS:
            self._check_session(form)
        elif method not in _NO_SESSION_METHODS:
            raise _error(22, "Invalid method")
        if method == "taobao.time.get":
            return {"time_get_response": {"time": top_time(self.now()), "request_id": "fake"}}
        if method == "taobao.top.auth.token.refresh":
            return self._refresh(form)
        if method in _STOCK_METHODS:
            return self._stock_update(method, form)
        if method == _REFUNDS_METHOD:
            return self._refunds(form)
        return self._increment(form)

    # -- shipment push-back: taobao.logistics.offline.send ---------------------------------

    def _offline_send(self, form: dict[str, str]) -> dict[str, Any]:
        """Record a package of a trade (``is_split=1`` + ``sub_tid`` for part of it)."""
        tid, out_sid, company = (form.get(k, "") for k in ("tid", "out_sid", "company_code"))
        if not (tid and out_sid and company):
            raise _error(40, "Missing required arguments", "isv.missing-parameter", "tid")
        split = form.get("is_split") == "1"
        lines = tuple(form.get("sub_tid", "").split(",")) if split else ()
        if split and not all(lines):
            raise _error(41, "Invalid arguments", "isv.invalid-parameter", "sub_tid")
        self.shipments.orders = set(self.trades)
        outcome = self.shipments.take(tid, company, out_sid, lines)
        if not outcome.accepted:
            sub_code = {
                "unknown-order": "isv.trade-not-exist",
                "unknown-company": "isv.logistics-company-not-exist",
                "already-shipped": "isv.logistics-offline-service-error:B04",
            }.get(outcome.refusal, f"isv.{outcome.refusal}")
            raise _error(15, "Remote service error", sub_code, outcome.refusal)
        return {"logistics_offline_send_response": {"shipping": {"is_success": True}}}

    # -- after-sales: taobao.refunds.receive.get -------------------------------------------

    def put_refund(self, refund: dict[str, Any]) -> None:
        """Store a refund as given (its ``modified`` decides where it lists)."""
        with self._lock:
            self.refunds[str(refund["refund_id"])] = refund

    def _refunds(self, form: dict[str, str]) -> dict[str, Any]:
        """Refunds modified in ``[start_modified, end_modified]``, newest first, 1-day cap."""
        fields = [f.strip() for f in form.get("fields", "").split(",") if f.strip()]
        if not fields:
            raise _error(40, "Missing required arguments", "isv.missing-parameter", "fields")
        try:
            start = _parse_time(form.get("start_modified", ""))
            end = _parse_time(form.get("end_modified", ""))
            page_no = int(form.get("page_no", "1"))
            page_size = int(form.get("page_size", "40"))
        except ValueError:
            raise _error(41, "Invalid arguments", "isv.invalid-parameter", "bad value") from None
        if end < start or end - start > timedelta(days=1):
            raise _error(
                15, "Remote service error", "isv.invalid-parameter", "时间跨度不能大于一天"
            )
        if not 1 <= page_size <= 100 or page_no < 1:
            raise _error(41, "Invalid arguments", "isv.invalid-parameter", "page_size 1..100")
        with self._lock:
            matching = sorted(
                (
                    refund
                    for refund in self.refunds.values()
                    if start <= _parse_time(refund["modified"]) <= end
                ),
                key=lambda refund: (refund["modified"], str(refund["refund_id"])),
                reverse=True,
            )
        self.refund_pages.append(page_no)
        rows = matching[(page_no - 1) * page_size : page_no * page_size]
        answer: dict[str, Any] = {"total_results": len(matching), "request_id": "fake"}
        if rows:
            answer["refunds"] = {
                "refund": [{k: v for k, v in row.items() if k in fields} for row in rows]
            }
        return {"refunds_receive_get_response": answer}

    def _stock_update(self, method: str, form: dict[str, str]) -> dict[str, Any]:
        """``taobao.skus.quantity.update`` / ``taobao.item.quantity.update``, type=1 (full)."""
        num_iid = form.get("num_iid", "")
        if form.get("type", "1") != "1":
            raise _error(41, "Invalid arguments", "isv.invalid-parameter", "fake: type=1 only")
        if method == "taobao.item.quantity.update":
            pairs = [(num_iid, form.get("quantity", ""))]
        else:
            raw = [pair.partition(":") for pair in form.get("skuid_quantities", "").split(";")]
            pairs = [(f"{num_iid}:{sku}", qty) for sku, _, qty in raw]
            if not 1 <= len(pairs) <= 20:
                raise _error(41, "Invalid arguments", "isv.invalid-parameter", "1..20 SKUs")
        for listing, qty in pairs:
            if listing not in self.shelf.quantity:
                raise _error(15, "Remote service error", "isv.item-not-exist", listing)
            if not qty.isdigit():
                raise _error(41, "Invalid arguments", "isv.invalid-parameter", "quantity")
        for listing, qty in pairs:
            self.shelf.set(listing, int(qty))
        key = method.removeprefix("taobao.").replace(".", "_") + "_response"
        return {key: {"item": {"num_iid": num_iid, "modified": top_time(self.now())}}}

    def _check_ban(self) -> None:
        now = time.monotonic()
        if self._ban_next is not None:
            self._banned_until = now + self._ban_next
            left = self._ban_next
            self._ban_next = None
        elif now < self._banned_until:
            self.requests_during_ban += 1
            left = self._banned_until - now
        else:
            return
        raise _error(
            7,
            "App Call Limited",
            "accesscontrol.limited-by-app-access-count",
            f"This ban will last for {math.ceil(left)} more seconds",
        )

    def _check_timestamp(self, form: dict[str, str]) -> None:
        try:
            stamp = _parse_time(form.get("timestamp", ""))
        except ValueError:
            raise _error(41, "Invalid arguments", "isv.invalid-parameter", "timestamp") from None
        if abs(stamp - self.now()) > timedelta(minutes=10):
            raise _error(43, "Invalid timestamp", "isv.invalid-parameter", "timestamp skew")

    def _check_session(self, form: dict[str, str]) -> None:
        session = form.get("session", "")
        if not session:
            raise _error(26, "Missing session")
        if session != self.session or not self.session_valid:
            shown = f" ({session})" if self.echo_secrets_in_errors else ""
            raise _error(27, "Invalid session", "invalid-sessionkey", f"SessionKey非法{shown}")

    def _refresh(self, form: dict[str, str]) -> dict[str, Any]:
        if not self.refresh_token or form.get("refresh_token") != self.refresh_token:
            raise _error(15, "Remote service error", "isv.refresh-token-invalid", "refresh_token")
        self.refreshes += 1
        now_ms = int(self.now().timestamp() * 1000)
        day_ms = 86_400_000
        self.session = f"{self.session.split('~')[0]}~r{self.refreshes}"
        self.refresh_token = f"{self.refresh_token.split('~')[0]}~r{self.refreshes}"
        self.session_valid = True
        token = {
            "access_token": self.session,
            "refresh_token": self.refresh_token,
            "token_type": "Bearer",
            "expires_in": 86_400,
            "expire_time": now_ms + day_ms,
            "re_expires_in": 30 * 86_400,
            "refresh_token_valid_time": now_ms + 30 * day_ms,
            "r1_valid": now_ms + day_ms,
            "r2_valid": now_ms + day_ms // 24,
            "w1_valid": now_ms + day_ms,
            "w2_valid": now_ms + day_ms // 24,
            "taobao_user_nick": "fake-shop",
        }
        return {"top_auth_token_refresh_response": {"token_result": json.dumps(token)}}

    def _increment(self, form: dict[str, str]) -> dict[str, Any]:
        fields = [f.strip() for f in form.get("fields", "").split(",") if f.strip()]
        if not fields:
            raise _error(40, "Missing required arguments", "isv.missing-parameter", "fields")
        try:
            start = _parse_time(form.get("start_modified", ""))
            end = _parse_time(form.get("end_modified", ""))
            page_no = int(form.get("page_no", "1"))
            page_size = int(form.get("page_size", "40"))
        except ValueError:
            raise _error(41, "Invalid arguments", "isv.invalid-parameter", "bad value") from None
        if end < start:
            raise _error(15, "Remote service error", "isv.invalid-parameter", "end < start")
        if end - start > timedelta(days=1):
            raise _error(
                15, "Remote service error", "isv.invalid-parameter", "时间跨度不能大于一天"
            )
        if start < self.now() - timedelta(days=90):
            raise _error(15, "Remote service error", "isv.invalid-parameter", "只能查询三个月内")
        if not 1 <= page_size <= 100 or page_no < 1:
            raise _error(41, "Invalid arguments", "isv.invalid-parameter", "page_size 1..100")
        matching = sorted(
            (tid for tid, moment in self.modified.items() if start <= moment <= end),
            key=lambda tid: (self.modified[tid], tid),
            reverse=True,
        )
        rows = matching[(page_no - 1) * page_size : page_no * page_size]
        answer: dict[str, Any] = {"request_id": "fake"}
        if form.get("use_has_next") == "true":
            answer["has_next"] = page_no * page_size < len(matching)
        else:
            answer["total_results"] = len(matching)
        if rows:
            answer["trades"] = {
                "trade": [{k: v for k, v in self.trades[t].items() if k in fields} for t in rows]
            }
        self.trade_pages.append(page_no)
        for move in [m for m in self._moves if m.after_pages == len(self.trade_pages)]:
            self._moves.remove(move)
            self.touch(move.tid, move.to)
        return {"trades_sold_increment_get_response": answer}
