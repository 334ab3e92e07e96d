"""A fake 抖店 open-platform gateway on 127.0.0.1, for the Douyin adapter's tests.

Built on :class:`fakes.webhook_shop_server.FakeHttpServer` (real HTTP, ephemeral port).
It answers ``POST /order/searchList?app_key&method&v&timestamp&sign&sign_method&
access_token`` with the business params as the JSON body, the way the platform's docs
describe: it checks the app key, the timestamp (10 minutes of skew), the signature (its
own implementation of the canonical string, compared in constant time) and the access
token; it filters on ``update_time`` in ``[update_start_time, update_end_time]`` (both
inclusive), sorts oldest first, pages from 0, caps ``size`` at 100 and the span at one
day, and answers ``{"code": 10000, "data": {"shop_order_list", "total", ...}}``.

It also answers ``order.orderDetail`` (``{"shop_order_id"}`` -> ``data.shop_order_detail``,
the order as stored; an unknown id: code 50002, ``isv.order-not-exist``, assumed) and
``token.refresh`` (signed without ``access_token``; ``{"grant_type": "refresh_token",
"refresh_token"}`` with the live refresh token issues new tokens, the old ones stop
working; a spent or expired refresh token: code 30004, ``isv.refresh-token-invalid``,
assumed).

Faults: the base's 5xx / malformed / hang; an in-body rate limit
(:meth:`FakeDouyin.rate_limit_next`), an ``isp.*`` error; an expired token (code 30002).
It *sends* pushes: :meth:`FakeDouyin.push` builds the bytes and headers the platform
POSTs (``app-id``, ``event-sign`` = MD5(app_key + body + app_secret)). Error codes and
sub_codes are modelled on the platform's documented shape; the exact values are assumed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fakes.shipment_ledger import ShipmentLedger
from fakes.webhook_shop_server import FakeHttpServer, Reply, json_reply
from ordercore_adapters.channels.signatures import sign_douyin_push

__all__ = ["ACCESS_TOKEN", "APP_KEY", "APP_SECRET", "REFRESH_TOKEN", "FakeDouyin", "shop_order"]

APP_KEY = "7123456789012345678"
APP_SECRET = "fake-doudian-secret-XYZZY"
ACCESS_TOKEN = "fake-doudian-token-PLUGH"
REFRESH_TOKEN = "fake-doudian-refresh-GRUE"
_PATHS = {
    "order.searchList": "/order/searchList",
    "order.orderDetail": "/order/orderDetail",
    "token.refresh": "/token/refresh",
    "afterSale.List": "/afterSale/List",
    "order.logisticsAdd": "/order/logisticsAdd",
    "order.logisticsAddMultiPack": "/order/logisticsAddMultiPack",
}
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _expected_sign(query: dict[str, str], body: str) -> str | None:
    text = (
        f"{APP_SECRET}app_key{query.get('app_key', '')}method{query.get('method', '')}"
        f"param_json{body}timestamp{query.get('timestamp', '')}v{query.get('v', '')}{APP_SECRET}"
    ).encode()
    if query.get("sign_method", "md5") == "md5":
        return hashlib.md5(text).hexdigest()
    if query.get("sign_method") == "hmac-sha256":
        return hmac.new(APP_SECRET.encode(), text, hashlib.sha256).hexdigest()
    return None


def shop_order(
    order_id: str, updated: datetime, *, status: int = 2, encrypted: bool = False
) -> dict[str, Any]:
    """A shop order as ``order.searchList`` lists it (fen amounts, masked receiver)."""
    stamp = int(updated.timestamp())
    order: dict[str, Any] = {
        "order_id": order_id,
        "order_status": status,
        "order_status_desc": "备货中",
        "create_time": stamp - 300,
        "update_time": stamp,
        "pay_time": stamp - 240,
        "order_amount": 12800,
        "post_amount": 1000,
        "buyer_words": "",
        "doudian_open_id": "1@#fakeOpenId",
        "mask_post_receiver": "王*",
        "mask_post_tel": "138****5678",
        "mask_post_addr": {
            "province": {"name": "浙江省", "id": "33"},
            "city": {"name": "杭州市", "id": "330100"},
            "town": {"name": "余杭区", "id": "330110"},
            "street": {"name": "五常街道", "id": "330110005"},
            "detail": "文一西路***号",
        },
        "sku_order_list": [
            {
                "order_id": f"{order_id}1",
                "product_name": "纯棉短袖T恤",
                "code": "TEE-BLK-M",
                "sku_id": 1754000000001,
                "product_id": 3600000000001,
                "item_num": 2,
                "goods_price": 5900,
            },
            {
                "order_id": f"{order_id}2",
                "product_name": "赠品",
                "code": "",
                "sku_id": 1754000000002,
                "product_id": 3600000000002,
                "item_num": 1,
                "goods_price": 0,
            },
        ],
    }
    if encrypted:
        for key in ("mask_post_receiver", "mask_post_tel"):
            del order[key]
        order["encrypt_post_receiver"] = "#F3Yq#Vb8xk1Uq1kgFsbEOtHmF0A==*CgkIARCtHCABKAESPgo8#1##"
        order["encrypt_post_tel"] = "$$9Gxa7$$AAAAAAA==*CgwIARCtHCABKAESPgo8$1$$"
    return order


class FakeDouyin(FakeHttpServer):
    """The fake gateway: use as a context manager, point the adapter at :attr:`url`."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        hang_seconds: float = 10.0,
        echo_token_in_errors: bool = False,
    ) -> None:
        super().__init__(clock=clock, hang_seconds=hang_seconds)
        self.orders: dict[str, dict[str, Any]] = {}
        self.bodies: list[dict[str, Any]] = []
        """The business params of every signed call that got through."""
        self.shipments = ShipmentLedger()
        """Packs taken by ``order.logisticsAdd`` / ``order.logisticsAddMultiPack``."""
        self.echo_token_in_errors = echo_token_in_errors
        self.access_token = ACCESS_TOKEN
        self.refresh_token = REFRESH_TOKEN
        self.refresh_valid = True
        self.refreshes = 0
        """How many refreshes were answered with new tokens."""
        self.detail_requests: list[str] = []
        """The shop_order_id of every order.orderDetail answered."""
        self._rate_limited = 0
        self._isp = 0
        self.after_sales: dict[str, dict[str, Any]] = {}
        """After-sale items by aftersale_id (``afterSale.List``)."""
        self.after_sale_pages: list[int] = []

    def put_after_sale(self, item: dict[str, Any]) -> None:
        """Store an after-sale item as given (its ``aftersale_info.update_time`` lists it)."""
        with self._lock:
            self.after_sales[str(item["aftersale_info"]["aftersale_id"])] = item

    def _after_sale_list(self, text: str) -> Reply:
        """After-sales updated in ``[start, end]`` (unix s, 1-day cap), oldest first, from 0."""
        try:
            params = json.loads(text)
            low, high = int(params["update_start_time"]), int(params["update_end_time"])
            page, size = int(params["page"]), int(params["size"])
        except (ValueError, KeyError, TypeError):
            return self._error(40004, "参数错误", "isv.parameter-invalid", "param_json")
        if high < low or high - low > 86_400 or page < 0 or not 1 <= size <= 100:
            return self._error(40004, "参数错误", "isv.parameter-invalid", "范围")
        with self._lock:
            hits = sorted(
                (item["aftersale_info"]["update_time"], key, item)
                for key, item in self.after_sales.items()
                if low <= item["aftersale_info"]["update_time"] <= high
            )
        self.after_sale_pages.append(page)
        chosen = [item for _, _, item in hits[page * size : (page + 1) * size]]
        more = (page + 1) * size < len(hits)
        return self._ok(
            {"items": chosen, "total": len(hits), "page": page, "size": size, "has_more": more}
        )

    @property
    def url(self) -> str:
        """The gateway URL."""
        return self.origin

    def add_order(self, external_id: str, modified_at_utc: datetime) -> None:
        """Create or change a shop order updated at ``modified_at_utc`` (whole seconds)."""
        self.put(shop_order(external_id, modified_at_utc))

    def put(self, order: dict[str, Any]) -> None:
        """Store a shop order as given."""
        with self._lock:
            self.orders[order["order_id"]] = order

    def expire_refresh_token(self) -> None:
        """The refresh token stops working (the shop must authorise the app again)."""
        with self._lock:
            self.refresh_valid = False

    def rate_limit_next(self, n: int) -> None:
        """The next ``n`` signed calls are answered with the traffic-control error."""
        with self._lock:
            self._rate_limited = n

    def isp_next(self, n: int) -> None:
        """The next ``n`` signed calls are answered with an ``isp.*`` error."""
        with self._lock:
            self._isp = n

    def push(
        self,
        order_id: str,
        tag: str = "101",
        *,
        msg_id: str | None = None,
        secret: str = APP_SECRET,
    ) -> tuple[dict[str, str], bytes]:
        """The headers and body the platform POSTs for an order event (one message)."""
        order = self.orders.get(order_id, {})
        data = {
            "p_id": int(order_id),
            "s_ids": [int(line["order_id"]) for line in order.get("sku_order_list", [])],
            "shop_id": 4463798,
            "order_status": order.get("order_status", 2),
            "update_time": order.get("update_time", int(self.now().timestamp())),
        }
        body = json.dumps(
            [{"tag": tag, "msg_id": msg_id or os.urandom(8).hex(), "data": json.dumps(data)}],
            separators=(",", ":"),
        ).encode()
        headers = {
            "app-id": APP_KEY,
            "event-sign": sign_douyin_push(APP_KEY, secret, body),
            "content-type": "application/json",
        }
        return headers, body

    # -- answering -----------------------------------------------------------------------

    @staticmethod
    def _error(code: int, msg: str, sub_code: str = "", sub_msg: str = "") -> Reply:
        return json_reply(
            200,
            {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg, "log_id": "f"},
        )

    def _logistics(self, method_name: str, text: str) -> Reply:
        """Ship a whole order, or one pack of its sub-orders (multi-pack)."""
        try:
            params = json.loads(text)
            order_id = str(params["order_id"])
            if method_name == "order.logisticsAdd":
                packs = [(str(params["company_code"]), str(params["logistics_code"]), ())]
            else:
                packs = [
                    (
                        str(pack["company_code"]),
                        str(pack["logistics_code"]),
                        tuple(str(i["shipped_order_id"]) for i in pack["shipped_order_info"]),
                    )
                    for pack in params["pack_list"]
                ]
        except (ValueError, KeyError, TypeError):
            return self._error(40004, "参数错误", "isv.parameter-invalid", "param_json")
        self.shipments.orders = set(self.orders)
        for company, tracking, lines in packs:
            outcome = self.shipments.take(order_id, company, tracking, lines)
            if not outcome.accepted:
                return self._error(50002, "发货失败", f"isv.{outcome.refusal}", outcome.refusal)
        return json_reply(200, {"code": 10000, "msg": "success", "data": {"order_id": order_id}})

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Reply:
        text = body.decode("utf-8")
        if query.get("app_key") != APP_KEY:
            return self._error(30007, "app_key无效", "isv.app-key-invalid")
        method_name = query.get("method", "")
        if _PATHS.get(method_name) != path:
            return self._error(40003, "方法不存在", "isv.method-not-exist")
        if query.get("v") != "2":
            return self._error(40004, "参数错误", "isv.parameter-invalid", "v")
        try:
            stamp = datetime.strptime(query.get("timestamp", ""), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return self._error(40004, "参数错误", "isv.parameter-invalid", "timestamp")
        if abs(stamp.replace(tzinfo=SHANGHAI) - self.now()) > timedelta(minutes=10):
            return self._error(40004, "参数错误", "isv.timestamp-invalid", "timestamp")
        expected = _expected_sign(query, text)
        given = query.get("sign", "")
        if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
            return self._error(40006, "签名错误", "isv.sign-invalid")
        if method_name == "token.refresh":
            return self._refresh(query, text)
        token = query.get("access_token", "")
        if token != self.access_token or not self.credentials_valid:
            shown = f" ({token})" if self.echo_token_in_errors else ""
            return self._error(
                30002, "access_token已过期", "isv.access-token-expired", f"token{shown}"
            )
        if self._rate_limited:
            self._rate_limited -= 1
            return self._error(70002, "调用频率超限", "dop.traffic-control", "请稍后再试")
        if self._isp:
            self._isp -= 1
            return self._error(20000, "服务繁忙", "isp.service-busy", "稍后重试")
        if method_name == "order.orderDetail":
            return self._detail(text)
        if method_name == "afterSale.List":
            return self._after_sale_list(text)
        if method_name in ("order.logisticsAdd", "order.logisticsAddMultiPack"):
            return self._logistics(method_name, text)
        try:
            params = json.loads(text)
            low, high = int(params["update_start_time"]), int(params["update_end_time"])
            page, size = int(params["page"]), int(params["size"])
        except (ValueError, KeyError, TypeError):
            return self._error(40004, "参数错误", "isv.parameter-invalid", "param_json")
        if text != json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False):
            return self._error(40004, "参数错误", "isv.parameter-invalid", "param_json order")
        if high < low or high - low > 86_400 or page < 0 or not 1 <= size <= 100:
            return self._error(40004, "参数错误", "isv.parameter-invalid", "范围")
        self.bodies.append(params)
        hits = sorted(
            (order["update_time"], order_id)
            for order_id, order in self.orders.items()
            if low <= order["update_time"] <= high
        )
        chosen = hits[page * size : (page + 1) * size]
        return json_reply(
            200,
            {
                "code": 10000,
                "msg": "success",
                "sub_code": "",
                "sub_msg": "",
                "log_id": "fake",
                "data": {
                    "shop_order_list": [self.orders[order_id] for _, order_id in chosen],
                    "page": page,
                    "size": size,
                    "total": len(hits),
                },
            },
        )

    def _ok(self, data: dict[str, Any]) -> Reply:
        return json_reply(
            200,
            {
                "code": 10000,
                "msg": "success",
                "sub_code": "",
                "sub_msg": "",
                "log_id": "fake",
                "data": data,
            },
        )

    def _detail(self, text: str) -> Reply:
        try:
            order_id = str(json.loads(text)["shop_order_id"])
        except (ValueError, KeyError, TypeError):
            return self._error(40004, "参数错误", "isv.parameter-invalid", "shop_order_id")
        order = self.orders.get(order_id)
        if order is None:
            return self._error(50002, "订单不存在", "isv.order-not-exist", order_id)
        self.detail_requests.append(order_id)
        return self._ok({"shop_order_detail": order})

    def _refresh(self, query: dict[str, str], text: str) -> Reply:
        if "access_token" in query:
            return self._error(40004, "参数错误", "isv.parameter-invalid", "access_token")
        try:
            params = json.loads(text)
        except ValueError:
            return self._error(40004, "参数错误", "isv.parameter-invalid", "param_json")
        given = str(params.get("refresh_token", ""))
        if params.get("grant_type") != "refresh_token":
            return self._error(40004, "参数错误", "isv.parameter-invalid", "grant_type")
        if given != self.refresh_token or not self.refresh_valid:
            shown = f" ({given})" if self.echo_token_in_errors else ""
            return self._error(30004, "refresh_token无效", "isv.refresh-token-invalid", shown)
        self.refreshes += 1
        self.access_token = f"doudian-access-{self.refreshes}-{given[-5:]}-FROTZ"
        self.refresh_token = f"doudian-refresh-{self.refreshes}-{given[-5:]}-FROTZ"
        self.credentials_valid = True
        return self._ok(
            {
                "access_token": self.access_token,
                "expires_in": 7 * 86_400,
                "refresh_token": self.refresh_token,
                "scope": "SCOPE",
                "shop_id": 4463798,
                "shop_name": "fake shop",
            }
        )
