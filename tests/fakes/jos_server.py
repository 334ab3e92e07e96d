"""A fake JOS gateway (JD Open Service, ``/routerjson``) on 127.0.0.1, for the JD tests.

Answers form POSTs the way JOS does as far as its public docs describe it:

* checks the system params, the app key, the timestamp (Asia/Shanghai, within 10
  minutes of its clock) and the md5 signature (its own implementation, compared with
  ``hmac.compare_digest``), then the access token;
* ``jingdong.pop.order.search`` with ``360buy_param_json``: orders whose ``modified``
  lies in ``[start_date, end_date]`` (both inclusive, to the second), oldest first,
  filtered by ``order_state``, ``orderTotal`` with every page, a 1-day span cap and 90
  days of history, ``page_size`` 1..100; answered under JOS's ``..._responce`` key;
* JOS's error shape ``{"error_response": {"code", "zh_desc", "en_desc"}}``: code 19
  for the expired token (public); the rate-limit code 82 and the span-cap answer
  (``apiResult.success=false``) are assumed.

JD's OAuth host is served too (``oauth_url``): a form POST of the refresh-token grant
(``app_key, app_secret, grant_type=refresh_token, refresh_token``) with a live refresh
token issues a new access token and a new refresh token (the old ones stop working:
single-use) and answers ``{"code": 0, "access_token", "expires_in", "refresh_token",
"refresh_token_expires", "time", ...}``; a spent, unknown or expired refresh token
answers ``{"code": 4xx, "msg"}`` (codes assumed).

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
    "APP_KEY",
    "APP_SECRET",
    "REFRESH_TOKEN",
    "FakeJosServer",
    "jd_time",
    "sample_order",
    "sample_service",
]

APP_KEY = "JDFAKEAPPKEY0001"
APP_SECRET = "fake-jos-secret-XYZZY"
ACCESS_TOKEN = "fake-jos-token-PLUGH"
REFRESH_TOKEN = "fake-jos-refresh-GRUE"
SHANGHAI = ZoneInfo("Asia/Shanghai")
_TIME = "%Y-%m-%d %H:%M:%S"
SEARCH = "jingdong.pop.order.search"
AFTER_SALES = "jingdong.asc.query.list"
SHIPMENT = "jingdong.pop.order.shipment"


def sample_service(
    service_id: str,
    order_id: str,
    updated: datetime,
    *,
    customer_expect: int = 10,
    service_status: int = 10004,
    count: int = 1,
) -> dict[str, Any]:
    """An after-sales service order as ``jingdong.asc.query.list`` lists it."""
    return {
        "serviceId": service_id,
        "orderId": order_id,
        "skuId": "100012345678",
        "wareName": "纯棉短袖T恤 黑色 S",
        "serviceCount": count,
        "customerExpect": customer_expect,
        "serviceStatus": service_status,
        "refundAmount": "59.00",
        "questionDesc": "尺码不合适",
        "expressCode": "JDV000123456789" if customer_expect in (10, 20) else "",
        "applyTime": jd_time(updated - timedelta(hours=1)),
        "updateTime": jd_time(updated),
    }


def jd_time(moment: datetime) -> str:
    """An aware time as JD's wall clock."""
    return moment.astimezone(SHANGHAI).strftime(_TIME)


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, _TIME).replace(tzinfo=SHANGHAI).astimezone(UTC)


def _expected_sign(form: dict[str, str], secret: str) -> str:
    text = "".join(f"{k}{v}" for k, v in sorted(form.items()) if k != "sign" and v != "")
    return hashlib.md5(f"{secret}{text}{secret}".encode()).hexdigest().upper()


def sample_order(
    order_id: str, modified: datetime, *, state: str = "WAIT_SELLER_STOCK_OUT"
) -> dict[str, Any]:
    """An order as ``jingdong.pop.order.search`` returns it (masked consignee, yuan)."""
    return {
        "orderId": order_id,
        "venderId": "10001",
        "orderState": state,
        "orderStartTime": jd_time(modified - timedelta(minutes=5)),
        "modified": jd_time(modified),
        "pin": "jd_4f7a****b21c",
        "orderRemark": "",
        "freightPrice": "0.00",
        "orderTotalPrice": "118.00",
        "consigneeInfo": {
            "fullname": "李*",
            "mobile": "139****1234",
            "telephone": "",
            "province": "北京",
            "city": "北京市",
            "county": "朝阳区",
            "town": "",
            "fullAddress": "北京朝阳区建国路****号",
        },
        "itemInfoList": [
            {
                "skuId": "100012345678",
                "outerSkuId": "TEE-2026-BLK-M",
                "skuName": "纯棉短袖T恤 黑色 M",
                "itemTotal": "2",
                "jdPrice": "59.00",
                "wareId": "10001234",
            }
        ],
    }


def _error(code: str, zh: str, en: str = "") -> Reply:
    return Reply({"error_response": {"code": code, "zh_desc": zh, "en_desc": en or zh}})


@dataclass
class _Move:
    order_id: str
    after_pages: int
    to: datetime | None


class FakeJosServer(FakeGateway):
    """The fake JOS gateway (see the module docstring)."""

    path = "/routerjson"
    thread_name = "fake-jos"

    def __init__(
        self,
        *,
        app_key: str = APP_KEY,
        app_secret: str = APP_SECRET,
        access_token: str = ACCESS_TOKEN,
        clock: Callable[[], datetime] | None = None,
        hang_seconds: float = 10.0,
        echo_secrets_in_errors: bool = False,
    ) -> None:
        super().__init__(hang_seconds=hang_seconds)
        self.app_key = app_key
        self.app_secret = app_secret
        self.access_token = access_token
        self._clock = clock or (lambda: datetime.now(UTC))
        self.echo_secrets_in_errors = echo_secrets_in_errors
        self.token_valid = True
        self.refresh_token = REFRESH_TOKEN
        self.refresh_valid = True
        self.refreshes = 0
        """How many refresh grants were answered with new tokens."""
        self.orders: dict[str, dict[str, Any]] = {}
        self.modified: dict[str, datetime] = {}
        self.search_pages: list[int] = []
        """The page of every search answered with orders (not an error)."""
        self.search_params: list[dict[str, Any]] = []
        self._limited = 0
        self.services: dict[str, dict[str, Any]] = {}
        """After-sales service orders by serviceId (``jingdong.asc.query.list``)."""
        self.service_pages: list[int] = []
        self._moves: list[_Move] = []
        self.shipments = ShipmentLedger()
        """Orders shipped through ``jingdong.pop.order.shipment``."""

    # -- the contract suite's control protocol -------------------------------------------

    def add_order(self, external_id: str, modified_at_utc: datetime) -> None:
        """Create or change an order, modified at ``modified_at_utc`` (whole seconds)."""
        self.put_order(sample_order(external_id, modified_at_utc))

    def now(self) -> datetime:
        """The platform's clock (UTC)."""
        return self._clock()

    def expire_credentials(self) -> None:
        """The seller's access token stops working (code 19 from now on)."""
        with self._lock:
            self.token_valid = False

    # -- more controls ---------------------------------------------------------------------

    @property
    def oauth_url(self) -> str:
        """The fake OAuth host's refresh endpoint."""
        return self.origin + "/oauth2/refresh_token"

    def expire_refresh_token(self) -> None:
        """The refresh token stops working (the seller must authorise the app again)."""
        with self._lock:
            self.refresh_valid = False

    def put_order(self, order: dict[str, Any]) -> None:
        """Store an order as given (its ``modified`` decides where it lists)."""
        with self._lock:
            self.orders[str(order["orderId"])] = order
            self.modified[str(order["orderId"])] = _parse_time(order["modified"])

    def touch(self, order_id: str, at: datetime | None = None) -> None:
        """Modify an order now (or at ``at``)."""
        moment = (at or self.now()).replace(microsecond=0)
        with self._lock:
            self.orders[order_id] = {**self.orders[order_id], "modified": jd_time(moment)}
            self.modified[order_id] = moment

    def modify_during_paging(
        self, order_id: str, *, after_pages: int, to: datetime | None = None
    ) -> None:
        """Touch ``order_id`` right after the ``after_pages``-th search page was answered."""
        with self._lock:
            self._moves.append(_Move(order_id, after_pages, to))

    def rate_limit_next(self, n: int) -> None:
        """The next ``n`` requests are refused with the rate-limit code."""
        with self._lock:
            self._limited = n

    # -- answering -------------------------------------------------------------------------

    def dispatch(self, form: dict[str, str]) -> dict[str, Any]:
        if self._limited > 0:
            self._limited -= 1
            raise _error("82", "调用频率超限", "call frequency limited")
        if "grant_type" in form:
            return self._refresh(form)
        if form.get("app_key") != self.app_key:
            raise _error("10", "无效的app_key", "Invalid app_key")
        try:
            stamp = _parse_time(form.get("timestamp", ""))
        except ValueError:
            raise _error("6", "时间戳格式错误", "Invalid timestamp") from None
        if abs(stamp - self.now()) > timedelta(minutes=10):
            raise _error("6", "时间戳超出范围", "timestamp out of range")
        if form.get("v") != "2.0" or form.get("sign_method", "md5") != "md5":
            raise _error("5", "参数错误", "invalid v or sign_method")
        given = form.get("sign", "")
        if not hmac.compare_digest(given.encode(), _expected_sign(form, self.app_secret).encode()):
            raise _error("14", "签名无效", "Invalid signature")
        token = form.get("access_token", "")
        if token != self.access_token or not self.token_valid:
            shown = f" ({token})" if self.echo_secrets_in_errors else ""
            raise _error("19", f"token已过期或者不存在，请重新授权访问{shown}", "Invalid token")
        if form.get("method") == AFTER_SALES:
            try:
                params = json.loads(form.get("360buy_param_json", ""))
            except ValueError:
                raise _error("5", "360buy_param_json 不是 JSON", "bad json") from None
            return {"jingdong_asc_query_list_responce": {"code": "0", **self._services(params)}}
        if form.get("method") == SHIPMENT:
            return self._shipment(form)
        if form.get("method") != SEARCH:
            raise _error("22", "方法不存在", "Invalid method")
        try:
            params = json.loads(form.get("360buy_param_json", ""))
        except ValueError:
            raise _error("5", "360buy_param_json 不是 JSON", "bad 360buy_param_json") from None
        return {"jingdong_pop_order_search_responce": {"code": "0", **self._search(params)}}

    def _shipment(self, form: dict[str, str]) -> dict[str, Any]:
        """``jingdong.pop.order.shipment``: ship an order once with a tracking number."""
        try:
            params = json.loads(form.get("360buy_param_json", ""))
            order_id, company = str(params["orderId"]), str(params["logiCoprId"])
            tracking = str(params["logiNo"])
        except (ValueError, KeyError, TypeError):
            raise _error("5", "参数错误", "orderId/logiCoprId/logiNo") from None
        self.shipments.orders = set(self.orders)
        outcome = self.shipments.take(order_id, company, tracking, ())
        result: dict[str, Any] = {"success": outcome.accepted}
        if not outcome.accepted:
            result |= {"errorCode": outcome.refusal, "chineseErrCode": "订单出库失败"}
        return {"jingdong_pop_order_shipment_responce": {"sopjosshipment_result": result}}

    def _refresh(self, form: dict[str, str]) -> dict[str, Any]:
        if form.get("app_key") != self.app_key or form.get("app_secret") != self.app_secret:
            return {"code": 401, "msg": "app_key或app_secret错误"}
        if form.get("grant_type") != "refresh_token":
            return {"code": 400, "msg": "grant_type错误"}
        given = form.get("refresh_token", "")
        if given != self.refresh_token or not self.refresh_valid:
            shown = f" ({given})" if self.echo_secrets_in_errors else ""
            return {"code": 402, "msg": f"refresh_token已过期或无效{shown}"}
        self.refreshes += 1
        self.access_token = f"jd-access-{self.refreshes}-{given[-5:]}-FROTZ"
        self.refresh_token = f"jd-refresh-{self.refreshes}-{given[-5:]}-FROTZ"
        self.token_valid = True
        now_ms = int(self.now().timestamp() * 1000)
        return {
            "code": 0,
            "access_token": self.access_token,
            "expires_in": 86_400,
            "refresh_token": self.refresh_token,
            "refresh_token_expires": now_ms + 30 * 86_400_000,
            "scope": "snsapi_base",
            "open_id": "fake-open-id",
            "uid": "fake-uid",
            "time": now_ms,
            "token_type": "bearer",
        }

    def _search(self, params: dict[str, Any]) -> dict[str, Any]:
        self.search_params.append(params)

        def refused(zh: str) -> dict[str, Any]:
            api = {"success": False, "code": "100", "chineseErrCode": zh, "englishErrCode": zh}
            return {"searchorderinfo_result": {"apiResult": api}}

        try:
            start = _parse_time(str(params["start_date"]))
            end = _parse_time(str(params["end_date"]))
            page = int(params.get("page", 1))
            page_size = int(params.get("page_size", 20))
        except (KeyError, ValueError):
            return refused("参数错误")
        if str(params.get("dateType")) != "0":
            return refused("仅支持按修改时间查询 (dateType=0)")
        if end < start or end - start > timedelta(days=1):
            return refused("查询时间跨度不能超过1天")
        if start < self.now() - timedelta(days=90):
            return refused("只能查询90天内的订单")
        if not 1 <= page_size <= 100 or page < 1:
            return refused("page_size 1..100")
        states = set(str(params.get("order_state", "")).split(","))
        matching = sorted(
            (
                oid
                for oid, moment in self.modified.items()
                if start <= moment <= end and self.orders[oid]["orderState"] in states
            ),
            key=lambda oid: (self.modified[oid], oid),
        )
        rows = matching[(page - 1) * page_size : page * page_size]
        fields = set(str(params.get("optional_fields", "")).split(","))
        result = {
            "apiResult": {"success": True, "code": "0"},
            "orderTotal": len(matching),
            "orderInfoList": [
                {k: v for k, v in self.orders[oid].items() if k in fields} for oid in rows
            ],
        }
        self.search_pages.append(page)
        for move in [m for m in self._moves if m.after_pages == len(self.search_pages)]:
            self._moves.remove(move)
            self.touch(move.order_id, move.to)
        return {"searchorderinfo_result": result}

    # -- after-sales: jingdong.asc.query.list ----------------------------------------------

    def put_service(self, service: dict[str, Any]) -> None:
        """Store a service order as given (its ``updateTime`` decides where it lists)."""
        with self._lock:
            self.services[str(service["serviceId"])] = service

    def _services(self, params: dict[str, Any]) -> dict[str, Any]:
        """Service orders updated in ``[begin, end]`` (inclusive, 1-day cap), oldest first."""
        try:
            start = _parse_time(str(params["updateTimeBegin"]))
            end = _parse_time(str(params["updateTimeEnd"]))
            page = int(params.get("pageNumber", "1"))
            size = int(params.get("pageSize", "10"))
        except (KeyError, ValueError):
            raise _error("5", "参数错误", "updateTimeBegin/updateTimeEnd/pageNumber") from None
        if end < start or end - start > timedelta(days=1):
            return {
                "pageResult": {
                    "success": False,
                    "resultCode": "1001",
                    "resultDescription": "时间跨度不能超过1天",
                }
            }
        if not 1 <= size <= 100 or page < 1:
            raise _error("5", "参数错误", "pageSize 1..100")
        with self._lock:
            matching = sorted(
                (
                    service
                    for service in self.services.values()
                    if start <= _parse_time(service["updateTime"]) <= end
                ),
                key=lambda service: (service["updateTime"], str(service["serviceId"])),
            )
        self.service_pages.append(page)
        rows = matching[(page - 1) * size : page * size]
        return {"pageResult": {"success": True, "totalCount": len(matching), "data": rows}}
