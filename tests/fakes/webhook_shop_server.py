"""Fake webhook-first shops on 127.0.0.1: a Shopify-style Admin API and our own H5 store.

Each is a real HTTP server (stdlib ``ThreadingHTTPServer`` in a thread, ephemeral port),
as :mod:`fakes.top_server` does for TOP. Both serve their safety-poll list endpoints,
check credentials, page, and inject faults (5xx, malformed JSON, a hang, 429 with
``Retry-After``); both can *send* webhooks: :meth:`~FakeH5Store.webhook` builds the
exact bytes and headers the platform would POST, for the test to hand to
``core.intake.ingest_webhook``. They implement the contract suite's control protocol
(``add_order``, ``now``, ``expire_credentials``, ``fail_next``).

:class:`FakeHttpServer` is the reusable base (the Douyin fake builds on it).
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from fakes._http import LoopbackHttpServer, LoopbackServer, TrackingHandler
from fakes.shelf import Shelf
from fakes.shipment_ledger import ShipmentLedger
from ordercore_adapters.channels.signatures import sign_shopify, sign_standard_webhook

__all__ = [
    "H5_SECRET",
    "H5_TOKEN",
    "SHOPIFY_SECRET",
    "SHOPIFY_TOKEN",
    "FakeH5Store",
    "FakeHttpServer",
    "FakeShopify",
    "Reply",
    "h5_order",
    "shopify_order",
]

FAULTS = ("5xx", "malformed", "hang", "429")
Reply = tuple[int, dict[str, str], bytes]


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    """A JSON answer."""
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, data


class _Handler(TrackingHandler):
    server: LoopbackHttpServer

    @property
    def fake(self) -> FakeHttpServer:
        fake = self.server.fake
        assert isinstance(fake, FakeHttpServer)
        return fake

    def date_time_string(self, timestamp: float | None = None) -> str:
        return format_datetime(self.fake.now(), usegmt=True)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = {key.lower(): value for key, value in self.headers.items()}
        status, extra, payload = self.fake._answer(self.command, parts.path, query, headers, body)
        try:
            self.send_response(status)
            for key, value in extra.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up (a timeout)
            self.close_connection = True

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()


class FakeHttpServer(LoopbackServer):
    """Request log and fault injection; subclasses implement :meth:`handle`."""

    handler = _Handler
    thread_name = "fake-shop"

    def __init__(
        self, *, clock: Callable[[], datetime] | None = None, hang_seconds: float = 10.0
    ) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self.hang_seconds = hang_seconds
        self.credentials_valid = True
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        """Every (method, path, query) received, in order."""
        self.request_times: list[float] = []
        self._faults: deque[str] = deque()
        self.retry_after = "1"
        super().__init__()

    # -- controls ----------------------------------------------------------------------

    def now(self) -> datetime:
        """The platform's clock (UTC)."""
        return self._clock()

    def expire_credentials(self) -> None:
        """From now on the platform refuses the credentials as expired."""
        with self._lock:
            self.credentials_valid = False

    def fail_next(self, n: int, kind: str = "5xx") -> None:
        """The next ``n`` requests fail: ``5xx``, ``malformed`` JSON, ``hang``, ``429``."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULTS)}")
        with self._lock:
            self._faults.clear()
            self._faults.extend([kind] * n)

    # -- answering ---------------------------------------------------------------------

    def _answer(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Reply:
        with self._lock:
            self.requests.append((method, path, query))
            self.request_times.append(time.monotonic())
            fault = self._faults.popleft() if self._faults else None
        if fault == "hang":
            self._release.wait(self.hang_seconds)
            return json_reply(200, {})
        if fault == "5xx":
            return 502, {"Content-Type": "text/html"}, b"<html><h1>502 Bad Gateway</h1></html>"
        if fault == "malformed":
            return 200, {"Content-Type": "application/json"}, b'{"orders": [{"id'
        if fault == "429":
            return json_reply(
                429, {"errors": "Exceeded 2 calls per second"}, {"Retry-After": self.retry_after}
            )
        with self._lock:
            return self.handle(method, path, query, headers, body)

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Reply:
        """Answer one request (called under the lock)."""
        raise NotImplementedError


def _iso(moment: datetime, offset_hours: int = 8) -> str:
    """``moment`` as ISO 8601 in a fixed-offset zone (the shop's), e.g. ``+08:00``."""
    return moment.astimezone(timezone(timedelta(hours=offset_hours))).isoformat()


def _parse_aware(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


# == our own H5 store ===================================================================

H5_TOKEN = "h5-api-token-QUUX"
H5_SECRET = "whsec_" + base64.b64encode(b"h5-webhook-secret-GRAULT-32bytes!").decode()


def h5_order(
    external_id: str, updated: datetime, *, status: str = "paid", masked: bool = False
) -> dict[str, Any]:
    """An ``h5.order.v1`` as the store sends it (times with +08:00 offsets)."""
    created = updated - timedelta(minutes=5)
    return {
        "schema": "h5.order.v1",
        "id": external_id,
        "status": status,
        "created_at": _iso(created),
        "updated_at": _iso(updated),
        "currency": "CNY",
        "buyer_id": "u-42",
        "note": "",
        "shipping_fee": "10.00",
        "receiver": {
            "name": "张*" if masked else "张三",
            "phone": "138****5678" if masked else "13800005678",
            "email": "",
        },
        "address": {
            "country": "CN",
            "province": "浙江省",
            "city": "杭州市",
            "district": "西湖区",
            "street": "文新街道",
            "detail": "文三路***号" if masked else "文三路 1 号",
            "postal_code": "310012",
        },
        "lines": [
            {
                "id": f"{external_id}-1",
                "sku": "TEE-BLK-M",
                "quantity": 2,
                "unit_price": "59.00",
                "title": "T恤",
            },
        ],
    }


class FakeH5Store(FakeHttpServer):
    """The seller's own store: ``/v1/orders``, ``/v1/time``, and Standard Webhooks sending."""

    def __init__(
        self,
        *,
        token: str = H5_TOKEN,
        secrets: Sequence[str] = (H5_SECRET,),
        clock: Callable[[], datetime] | None = None,
        hang_seconds: float = 10.0,
    ) -> None:
        super().__init__(clock=clock, hang_seconds=hang_seconds)
        self.token = token
        self.secrets = list(secrets)
        self.orders: dict[str, dict[str, Any]] = {}
        self.updated: dict[str, datetime] = {}
        self.shelf = Shelf()
        """Listings by SKU for stock-push tests (``/v1/stock``, ``/v1/listings``)."""
        self.after_sales: dict[str, dict[str, Any]] = {}
        """``h5.after-sale.v1`` requests by id (``/v1/after-sales``)."""
        self.after_sale_pages: list[int] = []
        self.shipments = ShipmentLedger()
        """Shipments taken by ``POST /v1/orders/{id}/shipments``."""

    def put_after_sale(self, item: dict[str, Any]) -> None:
        """Store an after-sale request as given (its ``updated_at`` lists it)."""
        with self._lock:
            self.after_sales[item["id"]] = item

    def _after_sale_page(self, query: dict[str, str]) -> Reply:
        """``/v1/after-sales``: like ``/v1/orders`` (since inclusive, before exclusive)."""
        since = _parse_aware(query.get("updated_since", ""))
        before = _parse_aware(query.get("updated_before", ""))
        try:
            page = int(query.get("page", "1"))
            per_page = int(query.get("per_page", "50"))
        except ValueError:
            return json_reply(400, {"error": "bad_request", "message": "page, per_page"})
        if since is None or before is None or page < 1 or not 1 <= per_page <= 100:
            return json_reply(400, {"error": "bad_request", "message": "updated_since/before"})
        with self._lock:
            hits = sorted(
                (moment, key, item)
                for key, item in self.after_sales.items()
                if (moment := _parse_aware(item["updated_at"])) is not None
                and since <= moment < before
            )
        self.after_sale_pages.append(page)
        chosen = [item for _, _, item in hits[(page - 1) * per_page : page * per_page]]
        return json_reply(
            200,
            {
                "schema": "h5.after-sale-page.v1",
                "total": len(hits),
                "page": page,
                "per_page": per_page,
                "after_sales": chosen,
            },
        )

    @property
    def url(self) -> str:
        """The store's API base URL."""
        return f"{self.origin}/api"

    def add_order(self, external_id: str, modified_at_utc: datetime) -> None:
        """Create or change an order updated at ``modified_at_utc``."""
        self.put(h5_order(external_id, modified_at_utc))

    def put(self, order: dict[str, Any]) -> None:
        """Store an order as given."""
        with self._lock:
            self.orders[order["id"]] = order
            parsed = _parse_aware(order["updated_at"])
            assert parsed is not None
            self.updated[order["id"]] = parsed

    def webhook(
        self,
        order_id: str,
        event: str = "order.updated",
        *,
        message_id: str | None = None,
        sent_at: datetime | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """The headers and body the store POSTs for ``event`` of an order (every secret signs)."""
        moment = sent_at or self.now()
        body = json.dumps(
            {"type": event, "timestamp": moment.isoformat(), "data": self.orders[order_id]},
            ensure_ascii=False,
        ).encode("utf-8")
        msg_id = message_id or f"msg_{os.urandom(8).hex()}"
        stamp = int(moment.timestamp())
        signatures = " ".join(sign_standard_webhook(s, msg_id, stamp, body) for s in self.secrets)
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": signatures,
            "content-type": "application/json",
        }
        return headers, body

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Reply:
        if path == "/storefront/buy":  # a buyer, not an API client
            return _buy(self.shelf, body)
        if headers.get("authorization") != f"Bearer {self.token}" or not self.credentials_valid:
            return json_reply(401, {"error": "invalid_token", "message": "token expired"})
        if path == "/api/v1/time":
            return json_reply(200, {"now": self.now().isoformat()})
        if path in ("/api/v1/stock", "/api/v1/listings") and method == "POST":
            return self._stock(path, body)
        if path == "/api/v1/after-sales":
            return self._after_sale_page(query)
        if path.startswith("/api/v1/orders/") and path.endswith("/shipments"):
            return self._h5_shipment(method, path, body)
        if path != "/api/v1/orders":
            return json_reply(404, {"error": "not_found"})
        since = _parse_aware(query.get("updated_since", ""))
        before = _parse_aware(query.get("updated_before", ""))
        try:
            page = int(query.get("page", "1"))
            per_page = int(query.get("per_page", "50"))
        except ValueError:
            return json_reply(400, {"error": "bad_request", "message": "page, per_page"})
        if since is None or before is None or page < 1 or not 1 <= per_page <= 100:
            return json_reply(400, {"error": "bad_request", "message": "updated_since/before"})
        hits = sorted(
            (moment, order_id)
            for order_id, moment in self.updated.items()
            if since <= moment < before
        )
        chosen = hits[(page - 1) * per_page : page * per_page]
        return json_reply(
            200,
            {
                "schema": "h5.order-page.v1",
                "total": len(hits),
                "page": page,
                "per_page": per_page,
                "orders": [self.orders[order_id] for _, order_id in chosen],
            },
        )

    def _h5_shipment(self, method: str, path: str, body: bytes) -> Reply:
        """``POST /v1/orders/{id}/shipments``: one shipment per (order, tracking number)."""
        if method != "POST":
            return json_reply(405, {"error": "method_not_allowed"})
        order_id = unquote(path.removeprefix("/api/v1/orders/").removesuffix("/shipments"))
        try:
            ask = json.loads(body)
            tracking, carrier = str(ask["tracking_number"]), str(ask["carrier"])
            lines = tuple(str(line) for line in ask.get("lines", []))
        except (ValueError, KeyError, TypeError):
            return json_reply(400, {"error": "bad_request", "message": "tracking_number"})
        self.shipments.orders = set(self.orders)
        outcome = self.shipments.take(order_id, carrier, tracking, lines)
        if not outcome.accepted:
            status = 404 if outcome.refusal == "unknown-order" else 409
            return json_reply(status, {"error": outcome.refusal})
        return json_reply(200 if outcome.repeated else 201, {"tracking_number": tracking})

    def _stock(self, path: str, body: bytes) -> Reply:
        try:
            items = json.loads(body)["items"]
        except (ValueError, KeyError, TypeError):
            return json_reply(400, {"error": "bad_request", "message": "items"})
        results = []
        for item in items:
            sku = str(item.get("sku"))
            if path.endswith("stock"):
                error = self.shelf.set(sku, int(item.get("quantity", -1)))
            else:
                error = self.shelf.set_listed(sku, bool(item.get("listed")))
            results.append({"sku": sku, "error": error})
        return json_reply(200, {"results": results})


def _buy(shelf: Shelf, body: bytes) -> Reply:
    """A storefront order against a listing: accepted only while it shows enough."""
    try:
        ask = json.loads(body)
        order = shelf.buy(str(ask["listing"]), int(ask.get("quantity", 1)))
    except (ValueError, KeyError, TypeError):
        return json_reply(400, {"error": "bad_request"})
    return json_reply(200, {"accepted": order is not None, "order_id": order})


# == a Shopify-style Admin API ==========================================================

SHOPIFY_TOKEN = "shpat_fake_access_token_WALDO"
SHOPIFY_SECRET = "shopify-webhook-secret-FRED"
API_PATH = "/admin/api/2024-10"
BUCKET_SIZE = 40


def shopify_order(
    order_id: int, updated: datetime, *, cancelled: bool = False, masked: bool = False
) -> dict[str, Any]:
    """An order as Shopify's REST Admin API shows it (shop time zone +08:00)."""
    created = updated - timedelta(minutes=5)
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": f"#{order_id % 100000}",
        "created_at": _iso(created),
        "updated_at": _iso(updated),
        "cancelled_at": _iso(updated) if cancelled else None,
        "financial_status": "paid",
        "fulfillment_status": None,
        "currency": "CNY",
        "note": None,
        "customer": {"id": 7000 + order_id % 1000},
        "total_shipping_price_set": {"shop_money": {"amount": "10.00", "currency_code": "CNY"}},
        "shipping_address": {
            "name": "Z*** S***" if masked else "Zhang San",
            "phone": "***-***-5678" if masked else "+86 138 0000 5678",
            "province": "Zhejiang",
            "city": "Hangzhou",
            "address1": "1 Wensan Rd" if not masked else "******",
            "address2": "",
            "zip": "310012",
            "country_code": "CN",
        },
        "line_items": [
            {
                "id": order_id * 10 + 1,
                "sku": "TEE-BLK-M",
                "variant_id": 4401,
                "quantity": 2,
                "price": "59.00",
                "title": "Tee",
            },
            {
                "id": order_id * 10 + 2,
                "sku": "",
                "variant_id": 4402,
                "quantity": 1,
                "price": "0.00",
                "title": "Gift bag",
            },
        ],
    }


class FakeShopify(FakeHttpServer):
    """``orders.json`` (Link-header cursor paging), ``orders/count.json``, ``shop.json``."""

    def __init__(
        self,
        *,
        token: str = SHOPIFY_TOKEN,
        secret: str = SHOPIFY_SECRET,
        clock: Callable[[], datetime] | None = None,
        hang_seconds: float = 10.0,
    ) -> None:
        super().__init__(clock=clock, hang_seconds=hang_seconds)
        self.token = token
        self.secret = secret
        self.orders: dict[int, dict[str, Any]] = {}
        self.updated: dict[int, datetime] = {}
        self.bucket_used = 1
        """What the X-Shopify-Shop-Api-Call-Limit header reports as used (of 40)."""
        self.shelf = Shelf()
        """Inventory levels by ``location_id:inventory_item_id`` (inventory_levels/set)."""
        self.shipments = ShipmentLedger()
        """Fulfillments created through ``orders/{id}/fulfillments.json``."""

    @property
    def url(self) -> str:
        """The Admin API base URL (``.../admin/api/2024-10``)."""
        return f"{self.origin}{API_PATH}"

    def add_order(self, external_id: str, modified_at_utc: datetime) -> None:
        """Create or change an order updated at ``modified_at_utc``."""
        self.put(shopify_order(int(external_id), modified_at_utc))

    def put(self, order: dict[str, Any]) -> None:
        """Store an order as given."""
        with self._lock:
            self.orders[order["id"]] = order
            parsed = _parse_aware(order["updated_at"])
            assert parsed is not None
            self.updated[order["id"]] = parsed

    def webhook(
        self, order_id: int, topic: str = "orders/updated", *, webhook_id: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """The headers and body Shopify POSTs for ``topic`` of an order."""
        body = json.dumps(self.orders[order_id]).encode("utf-8")
        return {
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign_shopify(self.secret, body),
            "X-Shopify-Shop-Domain": "fake-shop.myshopify.com",
            "X-Shopify-API-Version": "2024-10",
            "X-Shopify-Webhook-Id": webhook_id or f"b54557e4-{os.urandom(6).hex()}",
            "X-Shopify-Triggered-At": self.now().isoformat(),
            "Content-Type": "application/json",
        }, body

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Reply:
        if path == "/storefront/buy":  # a buyer, not an API client
            return _buy(self.shelf, body)
        if headers.get("x-shopify-access-token") != self.token or not self.credentials_valid:
            return json_reply(
                401,
                {
                    "errors": "[API] Invalid API key or access token (unrecognized login or "
                    "wrong password)"
                },
            )
        limit_header = {"X-Shopify-Shop-Api-Call-Limit": f"{self.bucket_used}/{BUCKET_SIZE}"}
        if path == f"{API_PATH}/inventory_levels/set.json" and method == "POST":
            return self._set_level(body, limit_header)
        if path.startswith(f"{API_PATH}/orders/") and path.endswith("/fulfillments.json"):
            return self._fulfillments(method, path, body, limit_header)
        if path == f"{API_PATH}/shop.json":
            return json_reply(
                200, {"shop": {"id": 1, "iana_timezone": "Asia/Shanghai"}}, limit_header
            )
        if path not in (f"{API_PATH}/orders.json", f"{API_PATH}/orders/count.json"):
            return json_reply(404, {"errors": "Not Found"})
        if "page_info" in query:
            if set(query) - {"page_info", "limit", "fields"}:
                return json_reply(
                    400, {"errors": "page_info cannot be combined with other filters"}
                )
            try:
                state = json.loads(base64.urlsafe_b64decode(query["page_info"]))
                low, high = _parse_aware(state["min"]), _parse_aware(state["max"])
                after = (_parse_aware(state["after"][0]), int(state["after"][1]))
            except (ValueError, KeyError, TypeError):
                return json_reply(400, {"errors": {"page_info": "Invalid value."}})
        else:
            low = _parse_aware(query.get("updated_at_min", ""))
            high = _parse_aware(query.get("updated_at_max", ""))
            after = None
            if query.get("status") not in ("any", None) and path.endswith("orders.json"):
                return json_reply(400, {"errors": "status"})
        if low is None or high is None:
            return json_reply(400, {"errors": {"updated_at": "needs ISO 8601 with an offset"}})
        hits = sorted(
            (moment, order_id)
            for order_id, moment in self.updated.items()
            if low <= moment <= high  # both bounds inclusive, as Shopify documents
        )
        if path.endswith("count.json"):
            return json_reply(200, {"count": len(hits)}, limit_header)
        try:
            limit = int(query.get("limit", "50"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 250:
            return json_reply(400, {"errors": {"limit": "must be 1..250"}})
        if after is not None and after[0] is not None:
            hits = [hit for hit in hits if hit > after]  # keyset: stable under inserts
        chosen = hits[:limit]
        extra = dict(limit_header)
        if len(hits) > limit:
            last = chosen[-1]
            state = {
                "min": low.isoformat(),
                "max": high.isoformat(),
                "after": [last[0].isoformat(), last[1]],
            }
            token = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
            link = f"{self.url}/orders.json?{urlencode({'limit': limit, 'page_info': token})}"
            extra["Link"] = f'<{link}>; rel="next"'
        return json_reply(200, {"orders": [self.orders[i] for _, i in chosen]}, extra)

    def _fulfillments(self, method: str, path: str, body: bytes, extra: dict[str, str]) -> Reply:
        """``orders/{id}/fulfillments.json``: list (GET) or create (POST) fulfillments.

        Like Shopify, a POST is not deduplicated; line items fulfilled already are a 422.
        """
        raw_id = path.removeprefix(f"{API_PATH}/orders/").removesuffix("/fulfillments.json")
        if not raw_id.isdigit() or int(raw_id) not in self.orders:
            return json_reply(404, {"errors": "Not Found"}, extra)
        order_id = int(raw_id)
        if method == "GET":
            done = [
                {"id": n, "order_id": order_id, "tracking_number": push.tracking_number}
                for n, push in enumerate(self.shipments.accepted, start=1)
                if push.order_id == raw_id
            ]
            return json_reply(200, {"fulfillments": done}, extra)
        try:
            ask = json.loads(body)["fulfillment"]
            tracking, company = str(ask["tracking_number"]), str(ask["tracking_company"])
            lines = tuple(str(item["id"]) for item in ask.get("line_items", []))
        except (ValueError, KeyError, TypeError):
            return json_reply(400, {"errors": "fulfillment.tracking_number"}, extra)
        self.shipments.orders = {str(key) for key in self.orders}
        before = len(self.shipments.accepted)
        outcome = self.shipments.take(raw_id, company, tracking, lines)
        if not outcome.accepted or len(self.shipments.accepted) == before:
            return json_reply(422, {"errors": {"base": ["Line items are already fulfilled"]}})
        return json_reply(201, {"fulfillment": {"order_id": order_id, "status": "success"}}, extra)

    def _set_level(self, body: bytes, extra: dict[str, str]) -> Reply:
        """``inventory_levels/set.json``: 422 for an unknown level, as Shopify answers."""
        try:
            ask = json.loads(body)
            listing = f"{int(ask['location_id'])}:{int(ask['inventory_item_id'])}"
            available = int(ask["available"])
        except (ValueError, KeyError, TypeError):
            return json_reply(400, {"errors": "location_id, inventory_item_id, available"})
        error = self.shelf.set(listing, available)
        if error is not None:
            return json_reply(422, {"errors": [error]}, extra)
        location, _, item = listing.partition(":")
        return json_reply(
            200,
            {
                "inventory_level": {
                    "inventory_item_id": int(item),
                    "location_id": int(location),
                    "available": available,
                    "updated_at": self.now().isoformat(),
                }
            },
            extra,
        )
