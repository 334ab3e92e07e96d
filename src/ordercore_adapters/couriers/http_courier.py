"""A courier adapter over a ZTO-style open API (中通开放平台): signed JSON over HTTPS.

The public shape it follows (ZTO open platform, "平台标准签名",
https://open.zto.com/#/document?menuId=4, restated by ZTO's own engineering blog at
https://blog.csdn.net/ZTOTech/article/details/128115351):

* each API is a POST of a JSON body to ``{base_url}/{api name}``;
* headers ``x-appKey: <app key>`` and ``x-dataDigest: base64(md5(body + appSecret))``,
  the digest taken over the exact UTF-8 bytes sent;
* the answer is ``{"status": true|false, "statusCode": ..., "message": ...,
  "result": ...}``; the waybill number is ``result.billCode``.

The APIs used: ``zto.open.createOrder`` (our idempotency key goes in
``partnerOrderCode``, the client order number the courier dedups by),
``zto.open.getOrderInfo`` (read an order back by that number), ``zto.open.cancelPreOrder``
and ``zto.merchant.waybill.track.query``.

Not public (behind the developer login) and therefore *assumed* here, the same way in
the fake server of the tests: the exact request field list beyond the sample (we send
sender/receiver blocks, items, weight and declared value), the ``statusCode``
vocabulary (see :data:`AUTH_CODES`, :data:`BUSY_CODES`, :data:`DUPLICATE_CODE`,
:data:`NOT_FOUND_CODE`), whether a repeated ``partnerOrderCode`` answers with the first
order or with an error (both are handled: the error makes us read the first order
back), and the label field (``result.printUrl``).

One attempt per call: retries, the breaker, the bulkhead and failover wrap the adapter
from outside (:mod:`ordercore_adapters.couriers.resilient`). Errors, translated here:

====================================================  =====================================
what happened                                         raised
====================================================  =====================================
timeout, connection error, HTTP 5xx or 429,           :class:`CourierUnavailable`
malformed JSON, a busy ``statusCode``                 (transient)
HTTP 401/403, a signature or app key ``statusCode``   :class:`CourierAuthFailed`
any other refusal (bad address, area not served...)   :class:`CourierRejected` (business)
====================================================  =====================================

The app secret never appears in a message; courier text quoted in an error is cut short
and has phone numbers masked (a courier may echo the receiver back).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import httpx

from ordercore.domain.couriers import Party, TrackingEvent, Waybill, WaybillRequest
from ordercore.domain.privacy import mask_text
from ordercore.errors import (
    CourierAuthFailed,
    CourierRejected,
    CourierUnavailable,
    FieldError,
    InvalidInput,
)
from ordercore_adapters.channels._platform.config import number, shown, unknown_keys
from ordercore_adapters.channels._platform.scrub import SecretScrubber

__all__ = [
    "AUTH_CODES",
    "BUSY_CODES",
    "CANCEL",
    "CREATE",
    "DUPLICATE_CODE",
    "NOT_FOUND_CODE",
    "QUERY",
    "TRACK",
    "HttpCourier",
    "data_digest",
]

CREATE: Final = "zto.open.createOrder"
QUERY: Final = "zto.open.getOrderInfo"
CANCEL: Final = "zto.open.cancelPreOrder"
TRACK: Final = "zto.merchant.waybill.track.query"

AUTH_CODES: Final = frozenset({"SIGN_ERROR", "APPKEY_ERROR", "PERMISSION_DENIED"})
"""statusCodes meaning our credentials are wrong (assumed names)."""
BUSY_CODES: Final = frozenset({"SYS_BUSY", "SYS_ERROR", "RATE_LIMITED"})
"""statusCodes meaning "try again later" (assumed names)."""
DUPLICATE_CODE: Final = "ORDER_DUPLICATE"
"""The partnerOrderCode was used before (assumed name); the first order is read back."""
NOT_FOUND_CODE: Final = "ORDER_NOT_FOUND"
"""No order under that partnerOrderCode (assumed name)."""

_KNOWN = ("base_url", "app_key", "app_secret", "account_id", "timeout", "connect_timeout")
_SECRETS = ("app_secret",)
_EXCERPT = 200
logger = logging.getLogger("ordercore.couriers.http")


def data_digest(body: bytes, secret: str) -> str:
    """``base64(md5(body + secret))``: ZTO's standard request signature."""
    # MD5 is the courier's choice of hash, not ours.
    return base64.b64encode(hashlib.md5(body + secret.encode()).digest()).decode()  # noqa: S324


def _party(prefix: str, party: Party) -> dict[str, str]:
    contact, address = party.contact, party.address
    return {
        f"{prefix}Name": contact.name,
        f"{prefix}Mobile": contact.phone,
        f"{prefix}Province": address.province,
        f"{prefix}City": address.city,
        f"{prefix}District": address.district,
        f"{prefix}Address": "".join(part for part in (address.street, address.detail) if part),
        f"{prefix}PostalCode": address.postal_code,
    }


def _money(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")


class HttpCourier:
    """One account on a ZTO-style courier open API (see the module docstring).

    ``HttpCourier("zto", {"base_url": ..., "app_key": ..., "app_secret": ...})``; optional
    ``account_id`` (the e-waybill account, 电子面单账号), ``timeout`` (seconds to wait
    for an answer, default 5) and ``connect_timeout`` (default 2). ``transport`` is for
    tests. Registered under the ``ordercore.couriers`` entry point as ``zto``.
    """

    def __init__(
        self,
        code: str,
        config: Mapping[str, object],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        errors = unknown_keys(config, _KNOWN)
        if not code:
            errors.append(FieldError("code", "is required", code))
        for key in ("base_url", "app_key", "app_secret"):
            value = config.get(key)
            if value in (None, ""):
                errors.append(FieldError(key, "is required"))
            elif not isinstance(value, str):
                errors.append(FieldError(key, "must be text", shown(key, value, _SECRETS)))
        base_url = str(config.get("base_url") or "")
        if base_url and not base_url.startswith(("http://", "https://")):
            errors.append(FieldError("base_url", "must be an http(s) URL", base_url))
        seconds: dict[str, float] = {}
        for key, default in (("timeout", 5.0), ("connect_timeout", 2.0)):
            raw = config.get(key, default)
            value = number(raw)
            if value is None or value <= 0:
                errors.append(FieldError(key, "must be a number of seconds > 0", raw))
                value = default
            seconds[key] = value
        if errors:
            raise InvalidInput(f"courier {code!r} config", errors)
        self.code = code
        self.base_url = base_url.rstrip("/")
        self.timeout = seconds["timeout"]
        self._app_key = str(config["app_key"])
        self._secret = str(config["app_secret"])
        self._account = str(config.get("account_id") or "")
        self._scrubber = SecretScrubber([self._secret])
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout, connect=seconds["connect_timeout"]),
            transport=transport,
            headers={"User-Agent": f"ordercore-courier-{code}"},
        )

    def __repr__(self) -> str:
        return f"HttpCourier(code={self.code!r}, base_url={self.base_url!r})"

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def ping(self) -> None:
        """Raise CourierUnavailable when the API cannot be reached (any HTTP answer will do)."""
        try:
            await self._http.get(self.base_url + "/")
        except httpx.HTTPError as exc:
            raise CourierUnavailable(self.code, "ping", type(exc).__name__) from exc

    # -- the port ----------------------------------------------------------------------

    async def create_waybill(self, request: WaybillRequest) -> Waybill:
        """Create one package's waybill; a repeated key returns the first one."""
        package = request.package
        body: dict[str, Any] = {
            "partnerType": "2",
            "orderType": "1",
            "partnerOrderCode": request.key,
            "accountInfo": {"accountId": self._account, "type": 1},
            "senderInfo": _party("sender", request.sender),
            "receiveInfo": _party("receiver", request.receiver),
            "orderItems": [
                {"name": item.title or item.sku, "sku": item.sku, "quantity": item.quantity}
                for item in package.items
            ],
            "summaryInfo": {
                "weight": package.weight_grams,
                "price": _money(package.declared_value),
                "collectMoney": _money(request.cash_on_delivery),
            },
            "remark": request.remark,
        }
        try:
            result = await self._call(CREATE, body)
        except CourierRejected as exc:
            if exc.code != DUPLICATE_CODE:
                raise
            # The courier keeps the first order under this number: read it back.
            result = await self._call(QUERY, {"partnerOrderCode": request.key})
        return self._waybill(CREATE, request.key, result)

    async def cancel_waybill(self, key: str) -> bool:
        """Cancel the order made under ``key``; False when the courier has none."""
        try:
            await self._call(CANCEL, {"cancelType": "1", "partnerOrderCode": key})
        except CourierRejected as exc:
            if exc.code == NOT_FOUND_CODE:
                return False
            raise
        return True

    async def track(self, tracking_number: str) -> list[TrackingEvent]:
        """The parcel's scans, oldest first."""
        result = await self._call(TRACK, {"billCode": tracking_number})
        if not isinstance(result, list):
            raise CourierUnavailable(self.code, TRACK, "the answer's result is not a list")
        events = []
        for scan in result:
            try:
                at = datetime.fromtimestamp(int(scan["scanDate"]) / 1000, UTC)
                site = scan.get("scanSite") or {}
                events.append(
                    TrackingEvent(
                        at=at,
                        status=str(scan.get("scanType", "")),
                        description=str(scan.get("desc", "")),
                        location=str(site.get("name", "")) if isinstance(site, dict) else "",
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise CourierUnavailable(
                    self.code, TRACK, f"a scan could not be read ({type(exc).__name__})"
                ) from None
        return sorted(events, key=lambda event: event.at)

    # -- the wire ----------------------------------------------------------------------

    def _waybill(self, api: str, key: str, result: Any) -> Waybill:
        number = result.get("billCode") if isinstance(result, dict) else None
        if not isinstance(number, str) or not number:
            raise CourierUnavailable(self.code, api, "the answer has no billCode")
        mark = result.get("bigMarkInfo")
        return Waybill(
            courier=self.code,
            tracking_number=number,
            key=key,
            label_ref=str(result.get("printUrl") or ""),
            sort_code=str(mark.get("mark", "")) if isinstance(mark, dict) else "",
        )

    async def _call(self, api: str, body: Mapping[str, Any]) -> Any:
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json; charset=UTF-8",
            "x-appKey": self._app_key,
            "x-dataDigest": data_digest(content, self._secret),
        }
        try:
            response = await self._http.post(
                f"{self.base_url}/{api}", content=content, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise CourierUnavailable(
                self.code, api, f"no answer within {self.timeout:g} s ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise CourierUnavailable(
                self.code, api, f"connection failed ({type(exc).__name__})"
            ) from exc
        status = response.status_code
        if status >= 500 or status == 429:
            hint = number(response.headers.get("Retry-After"))
            raise CourierUnavailable(
                self.code, api, f"HTTP {status}", hint if hint is not None and hint >= 0 else None
            )
        if status in (401, 403):
            raise CourierAuthFailed(self.code, api, f"HTTP {status}")
        if status >= 400:
            raise CourierRejected(self.code, api, f"HTTP {status}", self._excerpt(response.text))
        try:
            data = response.json()
        except ValueError:
            raise CourierUnavailable(
                self.code, api, f"malformed JSON ({len(response.content)} bytes)"
            ) from None
        if not isinstance(data, dict):
            raise CourierUnavailable(
                self.code, api, f"answered {type(data).__name__}, not an object"
            )
        if data.get("status") is True:
            return data.get("result")
        code = str(data.get("statusCode") or "")
        message = self._excerpt(str(data.get("message") or ""))
        if code in AUTH_CODES:
            raise CourierAuthFailed(self.code, api, f"{code}: {message}")
        if code in BUSY_CODES:
            raise CourierUnavailable(self.code, api, f"{code}: {message}")
        raise CourierRejected(self.code, api, code or "(none)", message)

    def _excerpt(self, text: str) -> str:
        return mask_text(self._scrubber.redact(text[:_EXCERPT]))
