"""Pinduoduo (拼多多开放平台): incremental pull of a shop's orders by update time.

``PinduoduoChannel(name, config)`` implements :class:`ordercore.ports.channels.ChannelPort`
over :class:`~.client.PddClient`. Config keys:

==================================  ========================================================
``client_id``, ``client_secret``    the app (the secret signs every request)
``access_token``                    the shop's token from authorisation
``access_token_expires_at``         when it expires (aware datetime or ISO 8601 text)
``gateway_url``                     the gateway's ``/api/router`` URL (required)
``page_size``                       orders per page, 1..100 (default 100)
``requests_per_second``             client-side rate limit (default 10)
``timeout``, ``attempts``           per-request timeout in seconds (15), tries per call (4)
``max_ban_wait``                    longest total wait for rate-limit answers per call (60 s)
``rate_limit_wait``                 wait after one rate-limit answer (1 s)
``amount_unit``                     ``yuan`` (default) or ``fen``: see :mod:`.mapping`
==================================  ========================================================

Limits, and where they come from:

* **Public** (docs of ``pdd.order.number.list.increment.get``): ``start_updated_at`` and
  ``end_updated_at`` in unix seconds, at most 30 minutes apart; ``page`` from 1,
  ``page_size`` up to 100; ``is_lucky_flag`` (0 = all), ``order_status`` (5 = all),
  ``refund_status`` (5 = all); the answer carries ``total_count``, ``has_next`` and
  ``order_sn_list``; paging from the last page back to the first, with the window
  ending at least 3 minutes behind Pinduoduo's clock, avoids missed orders (the docs'
  own advice). ``pdd.time.get`` gives the platform's clock.
* **Assumed**: both bounds inclusive to the second (the half-open window ``[start,
  end)`` is sent as ``ceil(start) .. ceil(end) - 1``, the Taobao adapter's
  :func:`top_bounds`, so adjacent windows lose and double no second, and a one-second
  window sends ``start == end``); a **lag of 5 minutes** behind the platform's clock
  (the docs ask for at least 3: the increment index settles late; 5 leaves a margin,
  and the intake's 10-minute lookback catches stragglers); 89 days of history for the
  docs' "three months".

Paging (:attr:`PagingDirection.BACKWARD`, as the docs advise): the first request reads
page 1 and learns ``total_count``; with more pages, the token walks from the last page
down to page 1 (read again, last), carrying the page number and the first total
(``"3/45"``). An order modified while we page leaves the window (which ends ``lag``
behind the platform's clock), so rows slide towards pages not yet read: a row may be
read twice (the intake dedups it), never skipped. Every page reports the *current*
``total_count``; when the totals of a window differ, the intake re-scans it, so an
order entering the window mid-scan fails closed too.

Token refresh: with a ``refresh_token`` in the config (optional
``refresh_token_expires_at``), :meth:`PinduoduoChannel.refresh_credentials` calls
``pdd.pop.auth.token.refresh`` through the signed router (public: business param
``refresh_token``, no access token; the answer ``pop_auth_token_refresh_response``
carries ``access_token``, ``expires_at``, ``refresh_token``,
``refresh_token_expires_at`` in unix seconds, and ``r1``/``r2``/``w1``/``w2``
``_expires_at`` per scope). **Assumed**: that a refused refresh (a spent, expired or
revoked refresh token) answers an ``error_response`` whose code this adapter need not
know: any refusal of ``pdd.pop.auth.token.refresh`` is taken as "the seller must
authorise again" (ChannelAuthExpired); that the scopes' expiries bound what the token
can read (they are tracked like the token's own). The refresh token's expiry is tracked
apart (``CredentialStatus.refresh_expires_at``). The adapter implements
:class:`ordercore.ports.channels.TokenCarrier`, so the core saves refreshed tokens and
restores them after a restart. Pushes (Pinduoduo's message service) are not taken as
HTTP webhooks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
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
    ChannelAuthExpired,
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
from .._platform.times import inclusive_bounds, parse_top_time
from .after_sales import PddAfterSales
from .client import PddApiError, PddClient
from .mapping import AMOUNT_UNITS, map_pdd_order
from .shipments import PddShipments

__all__ = [
    "INCREMENT_API",
    "REFRESH_API",
    "PddPushNotSupported",
    "PinduoduoChannel",
    "pdd_bounds",
]

INCREMENT_API: Final = "pdd.order.number.list.increment.get"
INCREMENT_KEY: Final = "order_sn_increment_get_response"
REFRESH_API: Final = "pdd.pop.auth.token.refresh"
REFRESH_KEY: Final = "pop_auth_token_refresh_response"
_SCOPES: Final = ("r1", "r2", "w1", "w2")
_SECRET_KEYS: Final = frozenset({"client_secret", "access_token", "refresh_token"})
_REQUIRED: Final = ("client_id", "client_secret", "access_token", "gateway_url")
_KNOWN_KEYS: Final = frozenset(
    {*_REQUIRED, *TOKEN_NUMBERS, *REFRESH_KEYS, "access_token_expires_at", "amount_unit"}
)


class PddPushNotSupported(OrderCoreError, NotImplementedError):
    """Pinduoduo pushes come through its message service, not as signed HTTP webhooks."""


def pdd_bounds(window: TimeWindow) -> tuple[int, int]:
    """The inclusive unix seconds asked for a half-open window (``end < start``: none)."""
    start, end = inclusive_bounds(window)
    return int(start.timestamp()), int(end.timestamp())


class PinduoduoChannel(PddAfterSales, PddShipments, RefreshingTokenChannel[PddClient]):
    """A ChannelPort (and TokenCarrier) for one Pinduoduo shop (see the module docstring)."""

    kind = "pinduoduo"
    reauthorise = (
        "through the app's authorisation link in the Pinduoduo merchant back office, then "
        "put the new access_token and refresh_token in the channel config"
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
            raise ValueError("pinduoduo: a channel needs a name")
        self.name = name
        values, expires = check_token_config(
            "pinduoduo",
            name,
            config,
            required=_REQUIRED,
            secret_keys=_SECRET_KEYS,
            known=_KNOWN_KEYS,
            extra=lambda raw: [*_amount_unit_errors(raw), *refresh_config_errors(raw)],
        )
        self._amount_unit = str(config.get("amount_unit") or "yuan")
        self._clock: Clock = clock or SystemClock()
        self._page_size = int(values["page_size"])
        self.limits = ChannelLimits(
            max_window=timedelta(minutes=30),
            lag=timedelta(minutes=5),
            history_depth=timedelta(days=89),
            page_size=self._page_size,
            paging=PagingDirection.BACKWARD,
            requests_per_second=values["requests_per_second"],
        )
        self._client = PddClient(
            client_id=str(config["client_id"]).strip(),
            client_secret=str(config["client_secret"]).strip(),
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
        return f"PinduoduoChannel({self.name!r}, gateway_url={self._client.gateway_url!r})"

    @property
    def client(self) -> PddClient:
        """The client (for calls this adapter does not wrap)."""
        return self._client

    async def _refresh_grant(self, refresh_token: str, now: datetime) -> TokenGrant:
        try:
            body = await self._client.call(
                REFRESH_API, {"refresh_token": refresh_token}, key=REFRESH_KEY, with_token=False
            )
        except PddApiError as exc:
            raise ChannelAuthExpired(
                f"pinduoduo channel {self.name!r}: the platform refused to refresh the token "
                f"({exc.code}); the seller must authorise the app again ({self.reauthorise})"
            ) from exc
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise self._malformed("no access_token")
        refresh = body.get("refresh_token")
        scopes = {
            scope: moment
            for scope in _SCOPES
            if (moment := epoch_time(body.get(f"{scope}_expires_at"))) is not None
        }
        return TokenGrant(
            access_token=token,
            expires_at=self._expiry(
                now, epoch_time(body.get("expires_at")), body.get("expires_in")
            ),
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            refresh_expires_at=epoch_time(body.get("refresh_token_expires_at")),
            scopes=scopes,
        )

    def _use_access_token(self, token: str) -> None:
        self._client.set_access_token(token)

    async def platform_time(self) -> datetime:
        """Pinduoduo's clock (``pdd.time.get``) in UTC."""
        body = await self._client.call("pdd.time.get", with_token=False)
        try:
            return parse_top_time(str(body["time"]))
        except (KeyError, ValueError) as exc:
            raise ChannelUnavailable(
                f"pinduoduo channel {self.name!r}: pdd.time.get answered without a valid time"
            ) from exc

    async def fetch_orders(self, window: TimeWindow, page: str | None) -> Page:
        """One page of orders updated in ``window`` (backward paging, see the module)."""
        start, end = pdd_bounds(window)
        if end < start:
            return Page(records=(), total=0)
        page_no, first_total = _parse_token(page)
        body = await self._client.call(
            INCREMENT_API,
            {
                "start_updated_at": start,
                "end_updated_at": end,
                "is_lucky_flag": 0,
                "order_status": 5,
                "refund_status": 5,
                "page": page_no,
                "page_size": self._page_size,
            },
            key=INCREMENT_KEY,
        )
        raw_total = body.get("total_count", 0)
        if isinstance(raw_total, bool) or not str(raw_total).isdigit():
            raise ChannelUnavailable(
                f"pinduoduo channel {self.name!r}: total_count is not a count ({raw_total!r})"
            )
        total = int(str(raw_total))
        orders = body.get("order_sn_list") or []
        if not isinstance(orders, list):
            raise ChannelUnavailable(
                f"pinduoduo channel {self.name!r}: order_sn_list is not a list"
            )
        records = tuple(self._record(order) for order in orders)
        if first_total is None:
            last = math.ceil(total / self._page_size)
            next_page = f"{last}/{total}" if last > 1 else None
        else:
            next_page = f"{page_no - 1}/{first_total}" if page_no > 1 else None
        return Page(records=records, total=total, next_page=next_page)

    def _record(self, order: Any) -> RawRecord:
        if not isinstance(order, dict):
            raise ChannelUnavailable(f"pinduoduo channel {self.name!r}: an order is not an object")
        order_sn, updated = order.get("order_sn"), order.get("updated_at")
        if order_sn in (None, "") or not isinstance(updated, str):
            raise ChannelUnavailable(
                f"pinduoduo channel {self.name!r}: an order came without order_sn or updated_at"
            )
        try:
            modified_at = parse_top_time(updated)
        except ValueError:
            raise ChannelUnavailable(
                f"pinduoduo channel {self.name!r} order {order_sn}: updated_at is not a time "
                f"({updated!r})"
            ) from None
        return RawRecord(
            channel=self.name, external_id=str(order_sn), modified_at=modified_at, payload=order
        )

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> WebhookDelivery:
        """Not supported: pushes come through Pinduoduo's message service; polling sees all."""
        raise PddPushNotSupported(
            f"pinduoduo channel {self.name!r}: pushes come through Pinduoduo's message "
            f"service, not signed HTTP webhooks; polling picks up every change"
        )

    def map_order(self, record: RawRecord) -> MappedOrder:
        """Map a fetched order (see :mod:`.mapping`)."""
        return map_pdd_order(record, amount_unit=self._amount_unit)


def _parse_token(page: str | None) -> tuple[int, int | None]:
    if page is None:
        return 1, None
    number, _, total = page.partition("/")
    if not (number.isdigit() and total.isdigit()) or int(number) < 1:
        raise ValueError(f"pinduoduo: not a page token of this adapter: {page!r}")
    return int(number), int(total)


def _amount_unit_errors(config: Mapping[str, object]) -> list[FieldError]:
    unit = config.get("amount_unit")
    if unit not in (None, "", *AMOUNT_UNITS):
        return [FieldError("amount_unit", "must be yuan or fen", unit)]
    return []
