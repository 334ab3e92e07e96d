"""JD (京东 JOS): incremental pull of a POP seller's orders by modification time.

``JdChannel(name, config)`` implements :class:`ordercore.ports.channels.ChannelPort`
over :class:`~.client.JosClient`. Config keys:

==============================  ============================================================
``app_key``, ``app_secret``     the JOS app (the secret signs every request)
``access_token``                the seller's token from authorisation
``access_token_expires_at``     when it expires (aware datetime or ISO 8601 text)
``gateway_url``                 the JOS ``/routerjson`` URL (required)
``page_size``                   orders per page, 1..100 (default 100)
``requests_per_second``         client-side rate limit (default 10)
``timeout``, ``attempts``       per-request timeout in seconds (15), tries per call (4)
``max_ban_wait``                longest total wait for rate-limit answers per call (60 s)
``rate_limit_wait``             wait after one rate-limit answer (1 s)
==============================  ============================================================

Limits, and where they come from:

* **Public** (JOS docs of ``jingdong.pop.order.search``): business params travel as one
  JSON string ``360buy_param_json``; ``start_date``/``end_date`` are Asia/Shanghai wall
  clock to the second; ``page`` from 1, ``page_size`` up to 100; ``order_state`` lists
  the states wanted; the answer carries ``orderTotal`` and ``orderInfoList``.
* **Assumed**: ``dateType=0`` selects modification time; both bounds are inclusive to
  the second, like TOP (so the half-open window is sent as ``start .. end - 1 s`` with
  the Taobao adapter's :func:`top_bounds`); a span of at most one day per query; results
  sorted oldest first (``sortType=0``); 89 days of history; a 60 s lag behind JD's clock.
  JOS has no public clock API this adapter relies on: :meth:`JdChannel.platform_time` is
  the local clock (JOS itself refuses requests whose timestamp is far off).

Paging is forward (page 1, 2, ...). An order modified while we page leaves the window
(which ends ``lag`` behind JD's clock), so later rows slide towards pages already read
and one may be skipped; every page reports JD's *current* total, and when the totals of
a window differ the intake's count check re-scans it, so a skip fails closed.

Token refresh: with a ``refresh_token`` in the config, :meth:`JdChannel.refresh_credentials`
posts JOS's OAuth 2 refresh-token grant to ``oauth_url`` (JD's OAuth host, not the
gateway; see :mod:`.client` for what is public and what is assumed) and uses the new
access token from the next call on. JD's access tokens last about a year for
self-developed apps and shorter for ISV apps; the refresh token's own lifetime is not
published for every app type, so ``refresh_token_expires_at`` is optional and taken from
the answer when JD names it. Without a (live) refresh token a refresh raises
ChannelAuthExpired naming what the seller must do. The adapter implements
:class:`ordercore.ports.channels.TokenCarrier`: the core saves refreshed tokens and
restores them after a restart. JD pushes (JMQ messages) are not HTTP webhooks:
:meth:`JdChannel.verify_webhook` refuses.

Extra config keys for the refresh: ``refresh_token``, ``refresh_token_expires_at`` and
``oauth_url`` (default :data:`OAUTH_URL`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

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
from ordercore.errors import (
    ChannelUnavailable,
    FieldError,
    OrderCoreError,
)
from ordercore.ports.clock import Clock, SystemClock

from .._platform.config import TOKEN_NUMBERS, check_token_config
from .._platform.credentials import (
    REFRESH_KEYS,
    RefreshingTokenChannel,
    TokenGrant,
    TokenState,
    epoch_time,
    refresh_config_errors,
)
from .._platform.gateway import check_gateway_url
from .._platform.times import format_top_time, inclusive_bounds, parse_top_time
from .after_sales import JdAfterSales
from .client import JosApiError, JosClient
from .mapping import JD_STATUSES, ORDER_FIELDS, map_jd_order
from .shipments import JdShipments

__all__ = ["OAUTH_URL", "SEARCH_METHOD", "JdChannel", "JdPushNotSupported"]

logger = logging.getLogger("ordercore.channels.jd")

SEARCH_METHOD: Final = "jingdong.pop.order.search"
OAUTH_URL: Final = "https://open-oauth.jd.com/oauth2/refresh_token"
"""JD's OAuth host's refresh endpoint (public)."""
_SECRET_KEYS: Final = frozenset({"app_secret", "access_token", "refresh_token"})
_REQUIRED: Final = ("app_key", "app_secret", "access_token", "gateway_url")
_KNOWN_KEYS: Final = frozenset(
    {*_REQUIRED, *TOKEN_NUMBERS, *REFRESH_KEYS, "access_token_expires_at", "oauth_url"},
)


class JdPushNotSupported(OrderCoreError, NotImplementedError):
    """JD pushes arrive as JMQ messages, not as signed HTTP webhooks."""


class JdChannel(JdAfterSales, JdShipments, RefreshingTokenChannel[JosClient]):
    """A ChannelPort (and TokenCarrier) for one JD POP shop over JOS (see the module)."""

    kind = "jd"
    reauthorise = (
        "in the JD app's authorisation page, then put the new access_token and "
        "refresh_token in the channel config"
    )

    def __init__(
        self,
        name: str,
        config: Mapping[str, object],
        *,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not name:
            raise ValueError("jd: a channel needs a name")
        self.name = name
        values, expires = check_token_config(
            "jd",
            name,
            config,
            required=_REQUIRED,
            secret_keys=_SECRET_KEYS,
            known=_KNOWN_KEYS,
            extra=_oauth_errors,
        )
        self._clock: Clock = clock or SystemClock()
        self._oauth_url = str(config.get("oauth_url") or OAUTH_URL).strip()
        self._page_size = int(values["page_size"])
        self.limits = ChannelLimits(
            max_window=timedelta(days=1),
            lag=timedelta(seconds=60),
            history_depth=timedelta(days=89),
            page_size=self._page_size,
            paging=PagingDirection.FORWARD,
            requests_per_second=values["requests_per_second"],
        )
        self._client = JosClient(
            app_key=str(config["app_key"]).strip(),
            app_secret=str(config["app_secret"]).strip(),
            access_token=str(config["access_token"]).strip(),
            gateway_url=str(config["gateway_url"]).strip(),
            timeout=values["timeout"],
            attempts=int(values["attempts"]),
            requests_per_second=values["requests_per_second"],
            max_ban_wait=values["max_ban_wait"],
            rate_limit_wait=values["rate_limit_wait"],
            channel=name,
            clock=self._clock,
            transport=transport,
        )
        self._tokens = TokenState.from_config(
            config, expires_at=expires, on_secret=self._client.add_secret
        )

    def __repr__(self) -> str:
        return f"JdChannel({self.name!r}, gateway_url={self._client.gateway_url!r})"

    @property
    def client(self) -> JosClient:
        """The JOS client (for calls this adapter does not wrap)."""
        return self._client

    async def _refresh_grant(self, refresh_token: str, now: datetime) -> TokenGrant:
        data = await self._client.refresh_grant(self._oauth_url, refresh_token)
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise self._malformed("no access_token")
        refresh = data.get("refresh_token")
        refresh_expires = epoch_time(data.get("refresh_token_expires"), milliseconds=True)
        if refresh_expires is None and data.get("refresh_expires_in") not in (None, ""):
            refresh_expires = self._expiry(now, None, data.get("refresh_expires_in"))
        return TokenGrant(
            access_token=token,
            expires_at=self._expiry(now, None, data.get("expires_in")),
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            refresh_expires_at=refresh_expires,
        )

    def _use_access_token(self, token: str) -> None:
        self._client.set_access_token(token)

    async def platform_time(self) -> datetime:
        """The local clock in UTC (JOS has no clock API this adapter uses; see the module)."""
        return self._clock.now().astimezone(UTC)

    async def fetch_orders(self, window: TimeWindow, page: str | None) -> Page:
        """One page of orders modified in ``window`` (forward paging, see the module)."""
        start, end = inclusive_bounds(window)
        if end < start:
            return Page(records=(), total=0)
        if page is not None and not (page.isdigit() and int(page) >= 1):
            raise ValueError(f"jd: not a page token of this adapter: {page!r}")
        page_no = int(page) if page is not None else 1
        body = await self._client.call(
            SEARCH_METHOD,
            {
                "start_date": format_top_time(start),
                "end_date": format_top_time(end),
                "order_state": ",".join(JD_STATUSES),
                "optional_fields": ORDER_FIELDS,
                "dateType": "0",
                "sortType": "0",
                "page": str(page_no),
                "page_size": str(self._page_size),
            },
        )
        result = body.get("searchorderinfo_result")
        if not isinstance(result, dict):
            raise ChannelUnavailable(
                f"jd channel {self.name!r}: the answer has no searchorderinfo_result"
            )
        api = result.get("apiResult")
        if isinstance(api, dict) and api.get("success") is False:
            raise JosApiError(
                self.name,
                SEARCH_METHOD,
                str(api.get("code", "")),
                self._client.redact(str(api.get("chineseErrCode") or api.get("englishErrCode"))),
            )
        total = _count(self.name, result.get("orderTotal", 0))
        orders = result.get("orderInfoList") or []
        if not isinstance(orders, list):
            raise ChannelUnavailable(f"jd channel {self.name!r}: orderInfoList is not a list")
        records = tuple(self._record(order) for order in orders)
        last = math.ceil(total / self._page_size)
        next_page = str(page_no + 1) if page_no < last else None
        return Page(records=records, total=total, next_page=next_page)

    def _record(self, order: Any) -> RawRecord:
        if not isinstance(order, dict):
            raise ChannelUnavailable(f"jd channel {self.name!r}: an order is not an object")
        order_id, modified = order.get("orderId"), order.get("modified")
        if order_id in (None, "") or not isinstance(modified, str):
            raise ChannelUnavailable(
                f"jd channel {self.name!r}: an order came without orderId or modified"
            )
        try:
            modified_at = parse_top_time(modified)
        except ValueError:
            raise ChannelUnavailable(
                f"jd channel {self.name!r} order {order_id}: modified is not a JD time "
                f"({modified!r})"
            ) from None
        return RawRecord(
            channel=self.name, external_id=str(order_id), modified_at=modified_at, payload=order
        )

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> WebhookDelivery:
        """Not supported: JD pushes through JMQ, not HTTP webhooks; polling sees every change."""
        raise JdPushNotSupported(
            f"jd channel {self.name!r}: JD pushes arrive as JMQ messages, not signed HTTP "
            f"webhooks; polling picks up every change"
        )

    def map_order(self, record: RawRecord) -> MappedOrder:
        """Map a fetched order (see :mod:`.mapping`)."""
        return map_jd_order(record)


def _oauth_errors(config: Mapping[str, object]) -> list[FieldError]:
    errors = refresh_config_errors(config)
    url = config.get("oauth_url")
    if url not in (None, ""):
        try:
            check_gateway_url("jd", str(url))
        except ValueError:
            errors.append(FieldError("oauth_url", "must be an http(s) URL", url))
    return errors


def _count(channel: str, raw: object) -> int:
    if isinstance(raw, bool) or not str(raw).isdigit():
        raise ChannelUnavailable(f"jd channel {channel!r}: orderTotal is not a count ({raw!r})")
    return int(str(raw))
