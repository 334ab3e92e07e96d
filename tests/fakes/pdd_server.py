"""A fake Pinduoduo open-platform gateway (``/api/router``) on 127.0.0.1, for the tests.

Answers form POSTs the way the platform does as far as its public docs describe it:

* checks ``type``, ``client_id``, ``data_type=JSON``, the unix ``timestamp`` (within 10
  minutes of its clock) and the md5 signature (its own implementation, compared with
  ``hmac.compare_digest``), then the access token;
* ``pdd.order.number.list.increment.get``: orders whose ``updated_at`` lies in
  ``[start_updated_at, end_updated_at]`` (unix seconds, both inclusive), oldest first,
  ``total_count`` with every page (``has_next`` instead with ``use_has_next=true``), a
  30-minute span cap, 90 days of history, ``page_size`` 1..100; it requires
  ``order_status=5``, ``refund_status=5`` and ``is_lucky_flag=0`` (all orders), as the
  adapter asks;
* ``pdd.time.get`` (its clock, Asia/Shanghai wall clock);
* an index that settles late: an order updated at ``t`` lists only from ``t +
  index_delay`` on (what the adapter's lag is for);
* the error shape ``{"error_response": {"error_code", "error_msg", ...}}``: 10019 for an
  expired token (public); 70031 for rate limiting and the codes for a bad signature,
  timestamp and span (assumed).

``pdd.pop.auth.token.refresh`` (signed, no access token) with the live refresh token
issues a new access token and a new refresh token (the old ones stop working) and
answers ``access_token, expires_at, expires_in, refresh_token, refresh_token_expires_at,
r1..w2_expires_at`` (unix seconds); a spent, unknown or expired refresh token answers
error 10020 (assumed).

Faults: expired token, rate limiting for the next N requests, 5xx, malformed JSON, a
hang, and an order modified while a window is paged. It implements the contract
suite's control protocol: ``add_order``, ``now``, ``expire_credentials``, ``fail_next``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fakes._http import FakeGateway, Reply
from fakes.shipment_ledger import ShipmentLedger

__all__ = [
    "ACCESS_TOKEN",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "REFRESH_TOKEN",
    "FakePddServer",
    "pdd_time",
    "sample_order",
    "sample_refund",
]

CLIENT_ID = "fakepddclientid0001"
CLIENT_SECRET = "fake-pdd-secret-XYZZY"
ACCESS_TOKEN = "fake-pdd-token-PLUGH"
REFRESH_TOKEN = "fake-pdd-refresh-GRUE"
SHANGHAI = ZoneInfo("Asia/Shanghai")
_TIME = "%Y-%m-%d %H:%M:%S"
INCREMENT = "pdd.order.number.list.increment.get"
REFRESH = "pdd.pop.auth.token.refresh"
REFUND_INCREMENT = "pdd.refund.list.increment.get"
SHIP_SEND = "pdd.logistics.online.send"
SHIP_EXTRA = "pdd.order.upload.extra.logistic"


def sample_refund(
    refund_id: str,
    order_sn: str,
    updated: datetime,
    *,
    after_sales_type: int = 3,
    after_sales_status: int = 7,
    goods_number: int = 1,
) -> dict[str, Any]:
    """An after-sale request as ``pdd.refund.list.increment.get`` lists it (amounts in fen)."""
    return {
        "id": int(refund_id) if refund_id.isdigit() else refund_id,
        "order_sn": order_sn,
        "after_sales_type": after_sales_type,
        "after_sales_status": after_sales_status,
        "after_sale_reason": "不喜欢/不想要",
        "refund_amount": 5900,
        "goods_number": goods_number,
        "goods_id": 123456789,
        "sku_id": 987654321,
        "outer_id": "TEE-2026-BLK-S",
        "goods_name": "纯棉短袖T恤 黑色",
        "tracking_number": "YT1234567890" if after_sales_type in (3, 4) else "",
        "created_time": pdd_time(updated - timedelta(hours=1)),
        "updated_time": pdd_time(updated),
    }


def pdd_time(moment: datetime) -> str:
    """An aware time as Pinduoduo's wall clock."""
    return moment.astimezone(SHANGHAI).strftime(_TIME)


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, _TIME).replace(tzinfo=SHANGHAI).astimezone(UTC)


def _expected_sign(form: dict[str, str], secret: str) -> str:
    text = "".join(f"{k}{v}" for k, v in sorted(form.items()) if k != "sign" and v != "")
    return hashlib.md5(f"{secret}{text}{secret}".encode()).hexdigest().upper()


def sample_order(order_sn: str, updated: datetime) -> dict[str, Any]:
    """An order as the increment API returns it (encrypted receiver, amounts in yuan)."""
    return {
        "order_sn": order_sn,
        "order_status": 1,
        "refund_status": 1,
        "confirm_status": 1,
        "created_time": pdd_time(updated - timedelta(minutes=5)),
        "confirm_time": pdd_time(updated - timedelta(minutes=4)),
        "updated_at": pdd_time(updated),
        "buyer_memo": "",
        "postage": "0.00",
        "pay_amount": "39.98",
        "receiver_name": "~AgAAAAPjOLkx9P0=~0~",
        "receiver_phone": "~AgAAAAPjOLnC9b4=~1~",
        "province": "上海",
        "city": "上海市",
        "town": "长宁区",
        "address": "~AgAAAAPjOLnZn8s=~2~",
        "item_list": [
            {
                "goods_id": 123456789,
                "sku_id": 987654321,
                "outer_id": "TEE-2026-BLK-L",
                "outer_goods_id": "TEE-2026",
                "goods_name": "纯棉短袖T恤 黑色 L",
                "goods_count": 2,
                "goods_price": "19.99",
            }
        ],
    }


def _error(code: int, msg: str, sub_msg: str = "") -> Reply:
    body = {"error_code": code, "error_msg": msg, "sub_msg": sub_msg, "request_id": "fake"}
    return Reply({"error_response": body})


@dataclass
class _Move:
    order_sn: str
    after_pages: int
    to: datetime | None


class FakePddServer(FakeGateway):
    """The fake Pinduoduo gateway (see the module docstring)."""

    path = "/api/router"
    thread_name = "fake-pdd"

    def __init__(
        self,
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        access_token: str = ACCESS_TOKEN,
        clock: Callable[[], datetime] | None = None,
        index_delay: timedelta = timedelta(0),
        hang_seconds: float = 10.0,
        echo_secrets_in_errors: bool = False,
    ) -> None:
        super().__init__(hang_seconds=hang_seconds)
        self.client_id = client_id
        self.client_secret = client_secret
        self.access_token = access_token
        self._clock = clock or (lambda: datetime.now(UTC))
        self.index_delay = index_delay
        self.echo_secrets_in_errors = echo_secrets_in_errors
        self.token_valid = True
        self.refresh_token = REFRESH_TOKEN
        self.refresh_valid = True
        self.refreshes = 0
        """How many refreshes were answered with new tokens."""
        self.orders: dict[str, dict[str, Any]] = {}
        self.updated: dict[str, datetime] = {}
        self.search_pages: list[int] = []
        """The page of every increment call answered with orders (not an error)."""
        self.search_params: list[dict[str, str]] = []
        self._limited = 0
        self._moves: list[_Move] = []
        self.refunds: dict[str, dict[str, Any]] = {}
        """After-sale requests by id (``pdd.refund.list.increment.get``)."""
        self.refund_pages: list[int] = []
        self.shipments = ShipmentLedger()
        """Packages taken by ``pdd.logistics.online.send`` and extra-logistic uploads."""

    # -- the contract suite's control protocol -------------------------------------------

    def add_order(self, external_id: str, modified_at_utc: datetime) -> None:
        """Create or change an order, updated at ``modified_at_utc`` (whole seconds)."""
        self.put_order(sample_order(external_id, modified_at_utc))

    def now(self) -> datetime:
        """The platform's clock (UTC)."""
        return self._clock()

    def expire_credentials(self) -> None:
        """The shop's access token stops working (10019 from now on)."""
        with self._lock:
            self.token_valid = False

    # -- more controls ---------------------------------------------------------------------

    def expire_refresh_token(self) -> None:
        """The refresh token stops working (the seller must authorise the app again)."""
        with self._lock:
            self.refresh_valid = False

    def put_order(self, order: dict[str, Any]) -> None:
        """Store an order as given (its ``updated_at`` decides where it lists)."""
        with self._lock:
            self.orders[str(order["order_sn"])] = order
            self.updated[str(order["order_sn"])] = _parse_time(order["updated_at"])

    def touch(self, order_sn: str, at: datetime | None = None) -> None:
        """Update an order now (or at ``at``)."""
        moment = (at or self.now()).replace(microsecond=0)
        with self._lock:
            self.orders[order_sn] = {**self.orders[order_sn], "updated_at": pdd_time(moment)}
            self.updated[order_sn] = moment

    def modify_during_paging(
        self, order_sn: str, *, after_pages: int, to: datetime | None = None
    ) -> None:
        """Touch ``order_sn`` right after the ``after_pages``-th page was answered."""
        with self._lock:
            self._moves.append(_Move(order_sn, after_pages, to))

    def rate_limit_next(self, n: int) -> None:
        """The next ``n`` requests are refused with 70031."""
        with self._lock:
            self._limited = n

    # -- answering -------------------------------------------------------------------------

    def dispatch(self, form: dict[str, str]) -> dict[str, Any]:
        if self._limited > 0:
            self._limited -= 1
            raise _error(70031, "调用过于频繁，已被限流", "rate limited")
        if form.get("client_id") != self.client_id:
            raise _error(10016, "client_id不存在")
        stamp = form.get("timestamp", "")
        if not stamp.isdigit() or abs(int(stamp) - self.now().timestamp()) > 600:
            raise _error(10001, "timestamp 不合法或已过期")
        if form.get("data_type", "JSON") != "JSON":
            raise _error(10000, "参数错误", "data_type")
        given = form.get("sign", "")
        if not hmac.compare_digest(
            given.encode(), _expected_sign(form, self.client_secret).encode()
        ):
            raise _error(10003, "签名错误")
        api = form.get("type", "")
        if api == "pdd.time.get":
            return {"time_get_response": {"time": pdd_time(self.now()), "request_id": "fake"}}
        if api == REFRESH:
            return {"pop_auth_token_refresh_response": self._refresh(form)}
        if api == REFUND_INCREMENT:
            return {"refund_increment_get_response": self._refund_increment(form)}
        if api in (SHIP_SEND, SHIP_EXTRA):
            if form.get("access_token", "") != self.access_token or not self.token_valid:
                raise _error(10019, "access_token已过期")
            return self._ship(api, form)
        if api != INCREMENT:
            raise _error(10006, "type不存在")
        token = form.get("access_token", "")
        if token != self.access_token or not self.token_valid:
            shown = f" ({token})" if self.echo_secrets_in_errors else ""
            raise _error(10019, f"access_token已过期{shown}")
        return {"order_sn_increment_get_response": self._increment(form)}

    def _ship(self, api: str, form: dict[str, str]) -> dict[str, Any]:
        """``pdd.logistics.online.send`` (the first package) and extra packages."""
        order_sn = form.get("order_sn", "")
        self.shipments.orders = set(self.orders)
        if api == SHIP_SEND:
            company, tracking = form.get("logistics_id", ""), form.get("tracking_number", "")
            if not (order_sn and company.isdigit() and tracking):
                raise _error(10000, "参数错误", "order_sn/logistics_id/tracking_number")
            outcome = self.shipments.take(order_sn, company, tracking, ())
            key = "logistics_online_send_response"
        else:
            try:
                [track] = json.loads(form.get("extra_track_list", ""))
                company, tracking = str(track["shipping_id"]), str(track["tracking_number"])
            except (ValueError, KeyError, TypeError):
                raise _error(10000, "参数错误", "extra_track_list") from None
            outcome = self.shipments.take_extra(order_sn, company, tracking)
            key = "order_upload_extra_logistic_response"
        if not outcome.accepted:
            code = {"already-shipped": 52101, "unknown-order": 52102}.get(outcome.refusal, 52000)
            raise _error(code, "发货失败", outcome.refusal)
        return {key: {"is_success": True, "request_id": "fake"}}

    def _refresh(self, form: dict[str, str]) -> dict[str, Any]:
        given = form.get("refresh_token", "")
        if given != self.refresh_token or not self.refresh_valid:
            shown = f" ({given})" if self.echo_secrets_in_errors else ""
            raise _error(10020, f"refresh_token已失效{shown}")
        self.refreshes += 1
        self.access_token = f"pdd-access-{self.refreshes}-{given[-5:]}-FROTZ"
        self.refresh_token = f"pdd-refresh-{self.refreshes}-{given[-5:]}-FROTZ"
        self.token_valid = True
        now = int(self.now().timestamp())
        day = 86_400
        return {
            "access_token": self.access_token,
            "expires_at": now + day,
            "expires_in": day,
            "refresh_token": self.refresh_token,
            "refresh_token_expires_at": now + 30 * day,
            "refresh_token_expires_in": 30 * day,
            "r1_expires_at": now + day,
            "r2_expires_at": now + day,
            "w1_expires_at": now + day,
            "w2_expires_at": now + day,
            "owner_id": "fake-owner",
            "owner_name": "fake shop",
            "scope": [INCREMENT],
            "request_id": "fake",
        }

    def _increment(self, form: dict[str, str]) -> dict[str, Any]:
        self.search_params.append(form)
        try:
            start = int(form["start_updated_at"])
            end = int(form["end_updated_at"])
            page = int(form.get("page", "1"))
            page_size = int(form.get("page_size", "100"))
        except (KeyError, ValueError):
            raise _error(10000, "参数错误", "start_updated_at/end_updated_at/page") from None
        wanted = (form.get("order_status"), form.get("refund_status"), form.get("is_lucky_flag"))
        if wanted != ("5", "5", "0"):
            raise _error(10000, "参数错误", "order_status/refund_status/is_lucky_flag")
        if end < start or end - start > 1800:
            raise _error(10000, "参数错误", "时间间隔不能超过30分钟")
        if start < (self.now() - timedelta(days=90)).timestamp():
            raise _error(10000, "参数错误", "只能查询90天内的订单")
        if not 1 <= page_size <= 100 or page < 1:
            raise _error(10000, "参数错误", "page_size 1..100")
        visible_until = self.now() - self.index_delay
        matching = sorted(
            (
                sn
                for sn, moment in self.updated.items()
                if start <= moment.timestamp() <= end and moment <= visible_until
            ),
            key=lambda sn: (self.updated[sn], sn),
        )
        rows = matching[(page - 1) * page_size : page * page_size]
        answer: dict[str, Any] = {"order_sn_list": [self.orders[sn] for sn in rows]}
        if form.get("use_has_next") == "true":
            answer["has_next"] = page * page_size < len(matching)
        else:
            answer["total_count"] = len(matching)
        self.search_pages.append(page)
        for move in [m for m in self._moves if m.after_pages == len(self.search_pages)]:
            self._moves.remove(move)
            self.touch(move.order_sn, move.to)
        return answer

    # -- after-sales: pdd.refund.list.increment.get -------------------------------------------

    def put_refund(self, refund: dict[str, Any]) -> None:
        """Store an after-sale request as given (its ``updated_time`` decides where it lists)."""
        with self._lock:
            self.refunds[str(refund["id"])] = refund

    def _refund_increment(self, form: dict[str, str]) -> dict[str, Any]:
        """Requests updated in ``[start, end]`` (unix s, 30-minute cap), oldest first."""
        token = form.get("access_token", "")
        if token != self.access_token or not self.token_valid:
            raise _error(10019, "access_token已过期")
        try:
            start = int(form["start_updated_at"])
            end = int(form["end_updated_at"])
            page = int(form.get("page", "1"))
            page_size = int(form.get("page_size", "100"))
        except (KeyError, ValueError):
            raise _error(10000, "参数错误", "start_updated_at/end_updated_at/page") from None
        if (form.get("after_sales_status"), form.get("after_sales_type")) != ("1", "1"):
            raise _error(10000, "参数错误", "after_sales_status/after_sales_type")
        if end < start or end - start > 1800:
            raise _error(10000, "参数错误", "时间间隔不能超过30分钟")
        if not 1 <= page_size <= 100 or page < 1:
            raise _error(10000, "参数错误", "page_size 1..100")
        with self._lock:
            matching = sorted(
                (
                    refund
                    for refund in self.refunds.values()
                    if start <= _parse_time(refund["updated_time"]).timestamp() <= end
                ),
                key=lambda refund: (refund["updated_time"], str(refund["id"])),
            )
        self.refund_pages.append(page)
        rows = matching[(page - 1) * page_size : page * page_size]
        return {"total_count": len(matching), "refund_list": rows, "request_id": "fake"}
