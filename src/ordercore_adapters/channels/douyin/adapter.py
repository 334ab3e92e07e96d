"""Douyin shop (抖店): a signed pull API, and pushes taken as hints.

``DouyinChannel(name, config)`` implements :class:`ordercore.ports.channels.ChannelPort`.

Pulling (public: 抖店开放平台 ``order.searchList``): ``update_start_time`` /
``update_end_time`` in unix seconds, ``page`` from 0, ``size`` 1..100, ``order_by=
update_time``; the answer's ``data`` has ``shop_order_list`` and ``total``. Calls are
signed as :mod:`.signing` describes; errors come in the body (``code`` 10000 is success,
``sub_code`` says why not).

Assumed (not public, or not precisely): both update-time bounds inclusive to the second
(so ``[start, end)`` is sent as ``ceil(start) .. ceil(end) - 1``); a window of at most
one day, 90 days of history and a 60 s settling lag; the error codes: ``30001`` /
``30002`` or a ``sub_code`` starting ``isv.access-token`` -> ChannelAuthExpired,
``sub_code`` ``dop.traffic-control`` (or code 70002) -> rate limited (no wait time is
given: we wait ``rate_limit_wait`` seconds per answer, up to ``max_wait`` in all), any
``isp.*`` sub_code or code 20000/50000 -> transient (stamina retries, then
ChannelUnavailable), anything else -> :class:`DouyinApiError`. The platform publishes no
clock API: :meth:`DouyinChannel.platform_time` is the injected clock (the gateway
rejects request timestamps far from its own, so a skewed clock shows up as errors).

Pushes (decision): a 抖店 push names an order and an event (``tag``: 100 created,
101 paid, 102 shipped, 106 cancelled ...; ``data.p_id`` the order id) but carries no
order. :meth:`DouyinChannel.verify_webhook` verifies it (:class:`DouyinPushVerifier`,
MD5 of app key + body + secret; no timestamp, so a :class:`ReplayGuard` on ``msg_id``),
and returns the delivery with no records but the order ids as
:attr:`WebhookDelivery.hints`: the intake fetches each one with :meth:`fetch_order`
(``order.orderDetail``, signed like every call, public: param ``shop_order_id``, answer
``data.shop_order_detail`` shaped like a ``searchList`` row) and stores that version,
so nothing half-built is stored and the push stores the newest version at once; the
poll stays the source of truth. An order the platform no longer returns gives None
(**assumed**: the refusal's ``sub_code`` or message says the order does not exist;
``isv.order-not-exist`` / "不存在"). The ids are also kept
(:meth:`DouyinChannel.take_push_hints`, the last :data:`MAX_KEPT_HINTS`) for a scheduler
that wants to poll early. A
replay within the guard's horizon raises SignatureInvalid; past it (or in another
process) the core's durable delivery memory reports it ``replayed``.

Token refresh: with a ``refresh_token`` in the config, :meth:`refresh_credentials` calls
``token.refresh`` (public: signed like every call but without ``access_token``, param_json
``{"grant_type": "refresh_token", "refresh_token": ...}``; the answer's ``data`` carries
``access_token``, ``expires_in`` in seconds, ``refresh_token``, ``scope``, ``shop_id``).
Public too: an access token lasts 7 days and the refresh token 14 days, and refreshing
spends the old refresh token (the new one must be kept: the core saves it, see
:class:`ordercore.ports.channels.TokenCarrier`). **Assumed**: that the refresh answer
names no refresh-token expiry (we take 14 days from the refresh; the config may give
``refresh_token_expires_at`` for the configured one); that any refusal of
``token.refresh`` means the seller must authorise again (ChannelAuthExpired).

Config keys: ``app_key``, ``app_secret`` (or ``app_secrets``, a list during a reset),
``access_token``, ``access_token_expires_at``, ``refresh_token`` and
``refresh_token_expires_at`` (optional), ``gateway_url`` (``https://openapi-fxg.
jinritemai.com``), ``page_size`` (100), ``sign_method`` (md5), ``timeout`` (15 s),
``attempts`` (4), ``max_wait`` (60 s), ``rate_limit_wait`` (1 s).
"""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

import httpx

from ordercore.domain.channels import (
    ChannelLimits,
    MappedOrder,
    Page,
    PagingDirection,
    RawRecord,
    TimeWindow,
    WebhookDelivery,
)
from ordercore.errors import ChannelAuthExpired, ChannelUnavailable, FieldError, OrderCoreError
from ordercore.ports.clock import Clock, SystemClock
from ordercore_adapters.channels._platform.config_reader import ConfigReader
from ordercore_adapters.channels._platform.credentials import (
    TokenGrant,
    TokenLifecycle,
    TokenState,
)
from ordercore_adapters.channels._platform.json_http import JsonHttp, Throttled, Transient
from ordercore_adapters.channels.signatures import DouyinPushVerifier, ReplayCheck, ReplayGuard

from .after_sales import DouyinAfterSales
from .mapping import map_shop_order
from .shipments import DouyinShipments
from .signing import DOUYIN_SIGN_METHODS, format_douyin_time, param_json, sign_douyin

__all__ = ["DouyinApiError", "DouyinChannel", "PushHint", "douyin_bounds"]

logger = logging.getLogger("ordercore.channels.douyin")

MAX_PAGE_SIZE: Final = 100
MAX_KEPT_HINTS: Final = 1000
"""How many push hints :meth:`DouyinChannel.take_push_hints` keeps (the newest)."""
SEARCH_METHOD: Final = "order.searchList"
DETAIL_METHOD: Final = "order.orderDetail"
REFRESH_METHOD: Final = "token.refresh"
REFRESH_TOKEN_LIFETIME: Final = timedelta(days=14)
"""How long a refresh token works after it is issued (public: 14 days)."""
_NOT_FOUND_SUB_CODES: Final = ("isv.order-not-exist",)
_SUCCESS: Final = 10000
_AUTH_CODES: Final = frozenset({30001, 30002})
_RATE_CODES: Final = frozenset({70002})
_TRANSIENT_CODES: Final = frozenset({20000, 50000})
_KNOWN: Final = frozenset(
    {
        "app_key",
        "app_secret",
        "app_secrets",
        "access_token",
        "access_token_expires_at",
        "refresh_token",
        "refresh_token_expires_at",
        "gateway_url",
        "page_size",
        "sign_method",
        "timeout",
        "attempts",
        "max_wait",
        "rate_limit_wait",
    }
)


class DouyinApiError(OrderCoreError):
    """The platform refused a call for a reason a retry will not fix."""

    code: int | None = None
    sub_code: str = ""
    msg: str = ""


@dataclass(frozen=True, slots=True)
class PushHint:
    """A verified push's order id, event tag and message id (no order data)."""

    order_id: str
    tag: str
    msg_id: str


def douyin_bounds(window: TimeWindow) -> tuple[int, int]:
    """Inclusive unix-second bounds for a half-open window (``end < start``: empty)."""
    return math.ceil(window.start.timestamp()), math.ceil(window.end.timestamp()) - 1


class DouyinChannel(DouyinAfterSales, DouyinShipments, TokenLifecycle):
    """A ChannelPort, TokenCarrier and OrderLookupPort for one 抖店 shop (see the module)."""

    kind = "douyin"
    reauthorise = (
        "from the 抖店 service market's app page, then put the new access_token and "
        "refresh_token in the channel config"
    )

    def __init__(
        self,
        name: str,
        config: Mapping[str, object],
        *,
        clock: Clock | None = None,
        replay_guard: ReplayCheck | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not name:
            raise ValueError("douyin: a channel needs a name")
        self.name = name
        read = ConfigReader(
            "douyin",
            name,
            config,
            known=_KNOWN,
            required=("app_key", "access_token", "access_token_expires_at", "gateway_url"),
            secret_keys=("app_secret", "app_secrets", "access_token", "refresh_token"),
        )
        self.app_key = read.text("app_key")
        secrets = read.texts("app_secrets") or read.texts("app_secret")
        if not secrets:
            read.errors.append(FieldError("app_secret", "is required"))
        self._token = read.text("access_token")
        token_expires_at = read.time("access_token_expires_at")
        refresh_token = read.text("refresh_token")
        refresh_expires_at = read.time("refresh_token_expires_at")
        self.gateway_url = read.url("gateway_url")
        self._page_size = int(read.number("page_size", MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE, whole=True))
        self.sign_method = read.text("sign_method", "md5")
        if self.sign_method not in DOUYIN_SIGN_METHODS:
            read.errors.append(
                FieldError("sign_method", f"must be one of {', '.join(DOUYIN_SIGN_METHODS)}")
            )
        timeout = read.number("timeout", 15.0, 0.001, None)
        attempts = int(read.number("attempts", 4, 1, 20, whole=True))
        max_wait = read.number("max_wait", 60.0, 0.0, None)
        self._rate_wait = read.number("rate_limit_wait", 1.0, 0.0, None)
        read.done()
        self._secret = secrets[0]
        self._clock: Clock = clock or SystemClock()
        self.replay_guard: ReplayCheck = replay_guard or ReplayGuard(clock=self._clock)
        self._verifier = DouyinPushVerifier(self.app_key, secrets, self.replay_guard)
        self._hints: deque[PushHint] = deque(maxlen=MAX_KEPT_HINTS)
        self.limits = ChannelLimits(
            max_window=timedelta(days=1),
            lag=timedelta(seconds=60),
            history_depth=timedelta(days=90),
            page_size=self._page_size,
            paging=PagingDirection.FORWARD,
        )
        self._http = JsonHttp(
            kind="douyin",
            channel=name,
            timeout=timeout,
            attempts=attempts,
            max_wait=max_wait,
            secrets=(*secrets, self._token),
            transport=transport,
        )
        self._tokens = TokenState(
            access_name="access_token",
            access_token=self._token,
            expires_at=token_expires_at,
            refresh_token=refresh_token or None,
            refresh_expires_at=refresh_expires_at,
            on_secret=self._http.add_secret,
        )

    def __repr__(self) -> str:
        return (
            f"DouyinChannel({self.name!r}, app_key={self.app_key!r}, "
            f"gateway_url={self.gateway_url!r})"
        )

    async def __aenter__(self) -> DouyinChannel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    # -- calls ----------------------------------------------------------------------------

    def signed_query(self, method: str, body: str, *, with_token: bool = True) -> dict[str, str]:
        """The system params of a call whose business params are ``body`` (param_json)."""
        timestamp = format_douyin_time(self._clock.now())
        query = {
            "app_key": self.app_key,
            "method": method,
            "v": "2",
            "timestamp": timestamp,
            "sign_method": self.sign_method,
            "sign": sign_douyin(
                self.app_key, self._secret, method, body, timestamp, self.sign_method
            ),
            "access_token": self._token,
        }
        if not with_token:
            del query["access_token"]
        return query

    def _check(self, response: httpx.Response, data: Any) -> None:
        if not isinstance(data, dict):
            raise Transient(f"the gateway answered {type(data).__name__}, not an object")
        raw_code = data.get("code")
        code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else -1
        if code == _SUCCESS:
            return
        sub_code = self._http.redact(str(data.get("sub_code", "")))
        msg = self._http.redact(str(data.get("msg", "")))
        sub_msg = self._http.redact(str(data.get("sub_msg", "")))
        logger.info("douyin channel %r: error %s %s", self.name, code, sub_code)
        if code in _AUTH_CODES or sub_code.startswith("isv.access-token"):
            raise ChannelAuthExpired(
                f"douyin channel {self.name!r}: the access token was refused ({code} {msg}, "
                f"{sub_code}: {sub_msg}); the shop must authorise the app again"
            )
        if code in _RATE_CODES or sub_code.startswith("dop.traffic-control"):
            raise Throttled(self._rate_wait, f"{code} {sub_code}")
        if code in _TRANSIENT_CODES or sub_code.startswith("isp."):
            raise Transient(f"platform error {code} {msg!r} ({sub_code}: {sub_msg})")
        error = DouyinApiError(
            f"douyin channel {self.name!r}: refused with error {code} {msg!r} "
            f"({sub_code}: {sub_msg}); not retried"
        )
        error.code, error.sub_code, error.msg = code, sub_code, msg
        raise error

    async def call(
        self, method: str, params: Mapping[str, object], *, with_token: bool = True
    ) -> dict[str, Any]:
        """Call ``method`` with business ``params``; the answer's ``data`` object."""
        body = param_json(params)
        path = quote(method.replace(".", "/"))
        _, data = await self._http.request(
            "POST",
            f"{self.gateway_url}/{path}",
            what=method,
            params=self.signed_query(method, body, with_token=with_token),
            content=body.encode("utf-8"),
            headers={"Content-Type": "application/json"},
            check=self._check,
        )
        result = data.get("data")
        if not isinstance(result, dict):
            raise ChannelUnavailable(f"douyin channel {self.name!r}: {method} has no data object")
        return result

    # -- credentials ----------------------------------------------------------------------

    # (credential_status, refresh_credentials, export_tokens, restore_tokens: TokenLifecycle)

    async def _refresh_grant(self, refresh_token: str, now: datetime) -> TokenGrant:
        try:
            data = await self.call(
                REFRESH_METHOD,
                {"grant_type": "refresh_token", "refresh_token": refresh_token},
                with_token=False,
            )
        except DouyinApiError as exc:
            raise ChannelAuthExpired(
                f"douyin channel {self.name!r}: the platform refused to refresh the token "
                f"({exc.code} {exc.sub_code}); the shop must authorise the app again "
                f"({self.reauthorise})"
            ) from exc
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise self._malformed("no access_token")
        refresh = data.get("refresh_token")
        return TokenGrant(
            access_token=token,
            expires_at=self._expiry(now, None, data.get("expires_in")),
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            refresh_expires_at=now + REFRESH_TOKEN_LIFETIME if refresh else None,
        )

    def _use_access_token(self, token: str) -> None:
        self._http.add_secret(token)
        self._token = token

    # -- pulling --------------------------------------------------------------------------

    async def platform_time(self) -> datetime:
        """The injected clock in UTC (the platform publishes no clock API)."""
        return self._clock.now().astimezone(UTC)

    async def fetch_orders(self, window: TimeWindow, page: str | None) -> Page:
        """One page (from 0, oldest first) of shop orders updated in ``window``."""
        low, high = douyin_bounds(window)
        if high < low:
            return Page(records=(), total=0)
        number = 0 if page is None else int(page)
        data = await self.call(
            SEARCH_METHOD,
            {
                "update_start_time": low,
                "update_end_time": high,
                "page": number,
                "size": self._page_size,
                "order_by": "update_time",
                "order_asc": True,
            },
        )
        total = data.get("total")
        orders = data.get("shop_order_list", [])
        if isinstance(total, bool) or not isinstance(total, int) or not isinstance(orders, list):
            raise ChannelUnavailable(
                f"douyin channel {self.name!r}: {SEARCH_METHOD} lacks total or shop_order_list"
            )
        records = tuple(self._record(order) for order in orders)
        more = (number + 1) * self._page_size < total and bool(orders)
        return Page(records=records, total=total, next_page=str(number + 1) if more else None)

    def _record(self, order: Any) -> RawRecord:
        if not isinstance(order, dict):
            raise ChannelUnavailable(f"douyin channel {self.name!r}: an order is not an object")
        order_id, updated = order.get("order_id"), order.get("update_time")
        if order_id in (None, "") or isinstance(updated, bool) or not isinstance(updated, int):
            raise ChannelUnavailable(
                f"douyin channel {self.name!r}: an order came without order_id or update_time"
            )
        return RawRecord(
            channel=self.name,
            external_id=str(order_id),
            modified_at=datetime.fromtimestamp(updated, UTC),
            payload=order,
        )

    # -- pushes and mapping ---------------------------------------------------------------

    async def fetch_order(self, external_id: str) -> RawRecord | None:
        """One shop order's newest version (``order.orderDetail``), or None if not found."""
        try:
            data = await self.call(DETAIL_METHOD, {"shop_order_id": external_id})
        except DouyinApiError as exc:
            if exc.sub_code in _NOT_FOUND_SUB_CODES or "不存在" in exc.msg:
                return None
            raise
        detail = data.get("shop_order_detail")
        if detail is None:
            return None
        record = self._record(detail)
        if record.external_id != external_id:
            raise ChannelUnavailable(
                f"douyin channel {self.name!r}: {DETAIL_METHOD} for {external_id} answered "
                f"order {record.external_id}"
            )
        return record

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> WebhookDelivery:
        """Verify a push; return it with its order ids as hints (no records)."""
        verified = self._verifier.verify(headers, body, now)
        messages = verified.payload if isinstance(verified.payload, list) else [verified.payload]
        ids: list[str] = []
        for message in messages:
            hint = _hint(message)
            if hint is not None:
                self._hints.append(hint)
                if hint.order_id not in ids:
                    ids.append(hint.order_id)
        return verified.delivery.model_copy(update={"hints": tuple(ids)})

    def take_push_hints(self) -> list[PushHint]:
        """The hints of the pushes verified since the last call (and forget them)."""
        hints = list(self._hints)
        self._hints.clear()
        return hints

    def map_order(self, record: RawRecord) -> MappedOrder:
        """Map a shop order (see :mod:`.mapping`)."""
        return map_shop_order(record)


def _hint(message: Any) -> PushHint | None:
    """The order id of a push message (``data`` is JSON text with ``p_id``), if any."""
    if not isinstance(message, dict):
        return None
    raw = message.get("data")
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    order_id = data.get("p_id") if isinstance(data, dict) else None
    if order_id in (None, "") or isinstance(order_id, bool):
        return None
    return PushHint(str(order_id), str(message.get("tag", "")), str(message.get("msg_id", "")))
