"""Taobao/Tmall through TOP (淘宝开放平台): incremental pull of a seller's trades.

``TaobaoChannel(name, config)`` implements :class:`ordercore.ports.channels.ChannelPort`
over :class:`~.client.TopClient`. Config keys:

============================  ================================================================
``app_key``, ``app_secret``   the TOP app (the secret signs every request)
``session``                   the seller's session key (access token) from authorisation
``session_expires_at``        when it expires (aware datetime or ISO 8601 text)
``scope_expires_at``          optional {scope: expiry}, e.g. TOP's ``r1`` ``r2`` ``w1`` ``w2``
``refresh_token``             optional: lets :meth:`refresh_credentials` renew the session
``refresh_token_expires_at``  optional: when the refresh token stops working
``gateway_url``               the TOP gateway's ``/router/rest`` URL (required)
``page_size``                 records per page, 1..100 (default 100)
``sign_method``               ``md5`` (default), ``hmac`` or ``hmac-sha256``
``requests_per_second``       client-side rate limit (default 10)
``timeout``, ``attempts``     per-request timeout in seconds (15), tries per call (4)
``max_ban_wait``              longest total wait for TOP's code-7 bans per call (60 s)
``fields``                    the trade fields to ask for (default: what the mapping reads)
============================  ================================================================

Limits, and where they come from:

* **Public** (TOP's API docs for ``taobao.trades.sold.increment.get``): one request spans
  at most one day (``end_modified - start_modified <= 1 day``); results are sorted by
  modification time, newest first, and TOP advises paging from the last page to the
  first to avoid missing trades; only about three months of trades can be read;
  ``page_size`` is 1..100; times are Asia/Shanghai wall clock to the second.
* **Assumed**: that both bounds are inclusive to the second (so our half-open UTC
  window ``[start, end)`` is sent as ``start .. end - 1 s``, see :func:`top_bounds`);
  a history depth of 89 days for "three months" (the shortest three calendar months:
  the planner never asks past TOP's edge and reports an older range as a gap); the 60 s
  lag: TOP fills the increment index asynchronously, so a change stamped at ``t`` may
  be listed a little later, and a window that ends a minute behind TOP's clock
  (``taobao.time.get``) leaves that time to settle (the intake's 10-minute lookback
  catches stragglers); the default of 10 requests per second (TOP's flow control is
  set per app and API and not published).

Paging (:attr:`PagingDirection.BACKWARD`): the first request reads page 1 and learns
``total_results`` (``use_has_next=false``). If there is more than one page, the token
then walks from the last page down to page 1 (read again, last), carrying the page
number and the total seen first: ``"3/250"``. A trade modified while we page gets a
modification time after the window (the window ends ``lag`` behind TOP's clock), so it
drops out of the listing and the older trades slide one place towards page 1, i.e.
towards the pages not yet read: a slide duplicates a row (the intake dedups it) and never
skips one. Every page reports TOP's *current* total; when it differs between pages,
the intake's count check re-scans the window, so a change that does skip (a trade
entering at the front of a window reaching TOP's present) fails closed too.

Pushes: TOP delivers events through its message service (TMC, a long-lived client
connection), not as signed HTTP webhooks, so :meth:`TaobaoChannel.verify_webhook`
raises :class:`TmcPushNotSupported`; polling is the source of truth anyway.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx

from ordercore.domain.channels import (
    ChannelLimits,
    ChannelTokens,
    CredentialStatus,
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
    InvalidInput,
    OrderCoreError,
)
from ordercore.ports.clock import Clock, SystemClock

from .._platform.config import aware, shown, unknown_keys
from .._platform.credentials import AS_CONFIGURED, ClientOwner, fingerprint
from .._platform.times import inclusive_bounds
from .after_sales import TaobaoAfterSales
from .client import TopApiError, TopClient
from .mapping import TRADE_FIELDS, map_trade
from .shipments import TaobaoShipments
from .signing import SIGN_METHODS, format_top_time, parse_top_time

__all__ = ["TaobaoChannel", "TmcPushNotSupported", "top_bounds"]

logger = logging.getLogger("ordercore.channels.taobao")

MAX_PAGE_SIZE: Final = 100
_SKUS_PER_CALL: Final = 20
"""taobao.skus.quantity.update takes at most 20 SKUs per call."""
_SECRET_KEYS: Final = frozenset({"app_secret", "session", "refresh_token"})
_KNOWN_KEYS: Final = frozenset(
    {
        "app_key",
        "app_secret",
        "session",
        "session_expires_at",
        "scope_expires_at",
        "refresh_token",
        "refresh_token_expires_at",
        "gateway_url",
        "page_size",
        "sign_method",
        "requests_per_second",
        "timeout",
        "attempts",
        "max_ban_wait",
        "fields",
    }
)
_REQUIRED: Final = ("app_key", "app_secret", "session", "session_expires_at", "gateway_url")


class TmcPushNotSupported(OrderCoreError, NotImplementedError):
    """Taobao pushes arrive through TMC (TOP's message service), not as signed webhooks."""


def top_bounds(window: TimeWindow) -> tuple[datetime, datetime]:
    """The inclusive whole-second bounds (UTC) TOP is asked for, for a half-open window.

    See :func:`ordercore_adapters.channels._platform.times.inclusive_bounds`.
    """
    return inclusive_bounds(window)


class TaobaoChannel(TaobaoAfterSales, TaobaoShipments, ClientOwner[TopClient]):
    """A ChannelPort for one Taobao/Tmall shop over TOP (see the module docstring)."""

    kind = "taobao"

    def __init__(
        self,
        name: str,
        config: Mapping[str, object],
        *,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not name:
            raise ValueError("taobao: a channel needs a name")
        self.name = name
        settings = _Settings(name, config)
        self._clock: Clock = clock or SystemClock()
        self._session_expires_at = settings.session_expires_at
        self._scope_expires_at = dict(settings.scope_expires_at)
        self._refresh_token = settings.refresh_token
        self._refresh_expires_at = settings.refresh_token_expires_at
        self._page_size = settings.page_size
        self._fields = settings.fields
        self.limits = ChannelLimits(
            max_window=timedelta(days=1),
            lag=timedelta(seconds=60),
            history_depth=timedelta(days=89),
            page_size=settings.page_size,
            paging=PagingDirection.BACKWARD,
            requests_per_second=settings.requests_per_second,
        )
        self._client = TopClient(
            app_key=settings.app_key,
            app_secret=settings.app_secret,
            session=settings.session,
            gateway_url=settings.gateway_url,
            sign_method=settings.sign_method,
            timeout=settings.timeout,
            attempts=settings.attempts,
            requests_per_second=settings.requests_per_second,
            max_ban_wait=settings.max_ban_wait,
            channel=name,
            clock=self._clock,
            transport=transport,
        )
        if self._refresh_token:
            self._client.add_secret(self._refresh_token)
        self._origin = fingerprint(settings.session)
        self._refreshed_at = AS_CONFIGURED

    def __repr__(self) -> str:
        return f"TaobaoChannel({self.name!r}, gateway_url={self._client.gateway_url!r})"

    @property
    def client(self) -> TopClient:
        """The TOP client (for calls this adapter does not wrap)."""
        return self._client

    # -- credentials ------------------------------------------------------------------------

    async def credential_status(self) -> CredentialStatus:
        """The session key's expiry and each configured scope's; refreshable with a token."""
        now = self._clock.now()
        refreshable = bool(self._refresh_token) and (
            self._refresh_expires_at is None or self._refresh_expires_at > now
        )
        return CredentialStatus(
            channel=self.name,
            expires_at={"session": self._session_expires_at, **self._scope_expires_at},
            refreshable=refreshable,
            refresh_expires_at=self._refresh_expires_at if self._refresh_token else None,
        )

    async def refresh_credentials(self) -> CredentialStatus:
        """Renew the session with ``taobao.top.auth.token.refresh`` (needs a refresh token).

        TOP session keys are otherwise renewed only by the seller authorising the app
        again, so without a (live) refresh token this raises ChannelAuthExpired. The new
        session and refresh token live in this object only (persisting them is left to
        the caller: :class:`ordercore.services.credentials.CredentialService` saves them
        through :meth:`export_tokens`).
        """
        now = self._clock.now()
        if not self._refresh_token:
            raise ChannelAuthExpired(
                f"taobao channel {self.name!r}: TOP session keys are renewed by the seller "
                f"authorising the app again (no refresh_token is configured)"
            )
        if self._refresh_expires_at is not None and self._refresh_expires_at <= now:
            raise ChannelAuthExpired(
                f"taobao channel {self.name!r}: the refresh token expired at "
                f"{self._refresh_expires_at.isoformat()}; the seller must authorise the app again"
            )
        try:
            body = await self._client.call(
                "taobao.top.auth.token.refresh",
                {"refresh_token": self._refresh_token},
                with_session=False,
            )
        except TopApiError as exc:
            raise ChannelAuthExpired(
                f"taobao channel {self.name!r}: TOP refused to refresh the session "
                f"({exc.code}, {exc.sub_code}); the seller must authorise the app again"
            ) from exc
        self._apply_token(body.get("token_result"), now)
        return await self.credential_status()

    def _apply_token(self, raw: object, now: datetime) -> None:
        try:
            token = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(token, dict):
                raise TypeError(type(token).__name__)
            session = str(token["access_token"])
            expires = _token_time(token, "expire_time", "expires_in", now)
        except (KeyError, TypeError, ValueError) as exc:
            raise ChannelUnavailable(
                f"taobao channel {self.name!r}: the token refresh answer is malformed "
                f"({type(exc).__name__})"
            ) from None
        if expires is None:
            raise ChannelUnavailable(
                f"taobao channel {self.name!r}: the token refresh answer has no expiry"
            )
        self._client.set_session(session)
        self._session_expires_at = expires
        for scope in ("r1", "r2", "w1", "w2"):
            scope_expiry = _token_time(token, f"{scope}_valid", f"{scope}_expires_in", now)
            if scope_expiry is not None:
                self._scope_expires_at[scope] = scope_expiry
        new_refresh = token.get("refresh_token")
        if new_refresh:
            self._refresh_token = str(new_refresh)
            self._client.add_secret(self._refresh_token)
        self._refresh_expires_at = _token_time(
            token, "refresh_token_valid_time", "re_expires_in", now
        )
        self._refreshed_at = now

    def export_tokens(self) -> ChannelTokens:
        """The session, refresh token and expiries held now (a TokenCarrier)."""
        tokens = {"session": self._client.session}
        expires = {"session": self._session_expires_at, **self._scope_expires_at}
        if self._refresh_token:
            tokens["refresh_token"] = self._refresh_token
            if self._refresh_expires_at is not None:
                expires["refresh_token"] = self._refresh_expires_at
        return ChannelTokens(
            channel=self.name,
            origin=self._origin,
            tokens=tokens,
            expires_at=expires,
            refreshed_at=self._refreshed_at,
        )

    def restore_tokens(self, tokens: ChannelTokens) -> bool:
        """Use saved tokens when newer and of the configured session's origin."""
        session = tokens.secret("session")
        if (
            tokens.channel != self.name
            or tokens.origin != self._origin
            or tokens.refreshed_at <= self._refreshed_at
            or not session
        ):
            return False
        expires = dict(tokens.expires_at)
        self._client.set_session(session)
        self._session_expires_at = expires.pop("session", self._session_expires_at)
        self._refresh_expires_at = expires.pop("refresh_token", None)
        self._scope_expires_at = expires
        self._refresh_token = tokens.secret("refresh_token")
        if self._refresh_token:
            self._client.add_secret(self._refresh_token)
        self._refreshed_at = tokens.refreshed_at
        return True

    # -- pulling ----------------------------------------------------------------------------

    async def platform_time(self) -> datetime:
        """TOP's clock (``taobao.time.get``) in UTC."""
        body = await self._client.call("taobao.time.get", with_session=False)
        try:
            return parse_top_time(str(body["time"]))
        except (KeyError, ValueError) as exc:
            raise ChannelUnavailable(
                f"taobao channel {self.name!r}: taobao.time.get answered without a valid time"
            ) from exc

    async def fetch_orders(self, window: TimeWindow, page: str | None) -> Page:
        """One page of trades modified in ``window`` (backward paging, see the module)."""
        start, end = top_bounds(window)
        if end < start:
            return Page(records=(), total=0)
        page_no, first_total = _parse_token(page)
        body = await self._client.call(
            "taobao.trades.sold.increment.get",
            {
                "fields": self._fields,
                "start_modified": format_top_time(start),
                "end_modified": format_top_time(end),
                "page_no": page_no,
                "page_size": self._page_size,
                "use_has_next": "false",
            },
        )
        total = self._total(body)
        records = tuple(self._record(trade) for trade in _trades(body))
        if first_total is None:
            last = math.ceil(total / self._page_size)
            next_page = f"{last}/{total}" if last > 1 else None
        else:
            if total != first_total:
                logger.info(
                    "taobao channel %r: the window's total moved from %d to %d while paging",
                    self.name,
                    first_total,
                    total,
                )
            next_page = f"{page_no - 1}/{first_total}" if page_no > 1 else None
        return Page(records=records, total=total, next_page=next_page)

    def _total(self, body: Mapping[str, Any]) -> int:
        raw = body.get("total_results", 0)
        if isinstance(raw, bool) or not str(raw).isdigit():
            raise ChannelUnavailable(
                f"taobao channel {self.name!r}: total_results is not a count ({raw!r})"
            )
        return int(raw)

    def _record(self, trade: Any) -> RawRecord:
        if not isinstance(trade, dict):
            raise ChannelUnavailable(f"taobao channel {self.name!r}: a trade is not an object")
        tid = trade.get("tid_str") or trade.get("tid")
        modified = trade.get("modified")
        if tid in (None, "") or not isinstance(modified, str):
            raise ChannelUnavailable(
                f"taobao channel {self.name!r}: a trade came without tid or modified "
                f"(ask for both in 'fields')"
            )
        try:
            modified_at = parse_top_time(modified)
        except ValueError as exc:
            raise ChannelUnavailable(f"taobao channel {self.name!r} trade {tid}: {exc}") from None
        return RawRecord(
            channel=self.name, external_id=str(tid), modified_at=modified_at, payload=trade
        )

    # -- stock push ---------------------------------------------------------------------------

    async def push_stock(self, quantities: Mapping[str, int]) -> Mapping[str, str | None]:
        """Set listed quantities (full update, ``type=1``); per listing None or TOP's refusal.

        A listing id is ``"<num_iid>:<sku_id>"`` for a SKU of an item, set through
        ``taobao.skus.quantity.update`` (up to 20 SKUs of one item per call), or
        ``"<num_iid>"`` for an item without SKUs, set through
        ``taobao.item.quantity.update``. A refusal (``isv.*``) answers for the listings of
        that call; transport failures and expired sessions raise.
        """
        answers: dict[str, str | None] = {}
        by_item: dict[str, list[tuple[str, str, int]]] = {}
        for listing, quantity in quantities.items():
            num_iid, _, sku_id = listing.partition(":")
            if not num_iid.isdigit() or (sku_id and not sku_id.isdigit()) or quantity < 0:
                answers[listing] = (
                    f"not a Taobao listing id ('<num_iid>:<sku_id>' or '<num_iid>') with a "
                    f"quantity >= 0: {listing!r} = {quantity!r}"
                )
                continue
            by_item.setdefault(num_iid, []).append((listing, sku_id, quantity))
        for num_iid, entries in sorted(by_item.items()):
            skus = [entry for entry in entries if entry[1]]
            whole = [entry for entry in entries if not entry[1]]
            for start in range(0, len(skus), _SKUS_PER_CALL):
                chunk = skus[start : start + _SKUS_PER_CALL]
                params = {
                    "num_iid": num_iid,
                    "skuid_quantities": ";".join(f"{sku}:{qty}" for _, sku, qty in chunk),
                    "type": 1,
                }
                error = await self._stock_call("taobao.skus.quantity.update", params)
                answers.update({listing: error for listing, _, _ in chunk})
            for listing, _, quantity in whole:
                params = {"num_iid": num_iid, "quantity": quantity, "type": 1}
                answers[listing] = await self._stock_call("taobao.item.quantity.update", params)
        return answers

    async def _stock_call(self, method: str, params: Mapping[str, object]) -> str | None:
        try:
            await self._client.call(method, params)
        except TopApiError as exc:
            return str(exc)
        return None

    # -- pushes and mapping -----------------------------------------------------------------

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> WebhookDelivery:
        """Not supported: TOP pushes through TMC, a client connection, not HTTP webhooks."""
        raise TmcPushNotSupported(
            f"taobao channel {self.name!r}: Taobao pushes arrive through TMC (TOP's message "
            f"service), not as signed HTTP webhooks; this adapter does not take them yet, "
            f"and polling picks up every change"
        )

    def map_order(self, record: RawRecord) -> MappedOrder:
        """Map a fetched trade (see :mod:`.mapping`)."""
        return map_trade(record)


# -- helpers --------------------------------------------------------------------------------


def _parse_token(page: str | None) -> tuple[int, int | None]:
    if page is None:
        return 1, None
    number, _, total = page.partition("/")
    if not (number.isdigit() and total.isdigit()) or int(number) < 1:
        raise ValueError(f"taobao: not a page token of this adapter: {page!r}")
    return int(number), int(total)


def _trades(body: Mapping[str, Any]) -> list[Any]:
    container = body.get("trades")
    if container is None:
        return []  # TOP leaves ``trades`` out of an empty page
    trades = container.get("trade", []) if isinstance(container, dict) else None
    if not isinstance(trades, list):
        raise ChannelUnavailable("taobao: trades.trade is not a list")
    return trades


def _token_time(
    token: Mapping[str, Any], absolute_ms: str, relative_s: str, now: datetime
) -> datetime | None:
    """An expiry from TOP's token JSON: epoch milliseconds, else seconds from now."""
    if token.get(absolute_ms) not in (None, ""):
        return datetime.fromtimestamp(int(token[absolute_ms]) / 1000, UTC)
    if token.get(relative_s) not in (None, ""):
        return now + timedelta(seconds=int(token[relative_s]))
    return None


class _Settings:
    """The validated config; every problem named at once, secrets never quoted."""

    def __init__(self, name: str, config: Mapping[str, object]) -> None:
        errors = unknown_keys(config, _KNOWN_KEYS)
        self._errors = errors
        self._config = config
        for key in _REQUIRED:
            if config.get(key) in (None, ""):
                errors.append(FieldError(key, "is required"))
        self.app_key = self._text("app_key")
        self.app_secret = self._text("app_secret")
        self.session = self._text("session")
        self.gateway_url = self._text("gateway_url")
        self.refresh_token = self._text("refresh_token") or None
        self.session_expires_at = self._time("session_expires_at") or datetime.min.replace(
            tzinfo=UTC
        )
        self.refresh_token_expires_at = self._time("refresh_token_expires_at")
        self.scope_expires_at = self._scopes()
        self.sign_method = self._text("sign_method") or "md5"
        if self.sign_method not in SIGN_METHODS:
            errors.append(
                FieldError("sign_method", f"must be one of {', '.join(SIGN_METHODS)}", None)
            )
        self.page_size = int(self._number("page_size", MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE, whole=True))
        self.requests_per_second = self._number("requests_per_second", 10.0, 0.001, None)
        self.timeout = self._number("timeout", 15.0, 0.001, None)
        self.attempts = int(self._number("attempts", 4, 1, 20, whole=True))
        self.max_ban_wait = self._number("max_ban_wait", 60.0, 0.0, None)
        self.fields = self._text("fields") or TRADE_FIELDS
        if errors:
            raise InvalidInput(f"taobao channel {name!r} config", errors)

    def _shown(self, key: str) -> object:
        return shown(key, self._config.get(key), _SECRET_KEYS)

    def _text(self, key: str) -> str:
        value = self._config.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            self._errors.append(FieldError(key, "must be text", self._shown(key)))
            return ""
        return value.strip()

    def _time(self, key: str) -> datetime | None:
        value = self._config.get(key)
        if value is None or value == "":
            return None
        moment = aware(value)
        if moment is None:
            self._errors.append(FieldError(key, "must be a timezone-aware ISO 8601 time", value))
        return moment

    def _scopes(self) -> dict[str, datetime]:
        value = self._config.get("scope_expires_at")
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self._errors.append(FieldError("scope_expires_at", "must map scope -> time", value))
            return {}
        scopes: dict[str, datetime] = {}
        for scope, raw in value.items():
            key = f"scope_expires_at.{scope}"
            moment = aware(raw)
            if moment is None:
                self._errors.append(FieldError(key, "must be a timezone-aware ISO 8601 time", raw))
            else:
                scopes[str(scope)] = moment
        return scopes

    def _number(
        self, key: str, default: float, low: float, high: float | None, *, whole: bool = False
    ) -> float:
        value = self._config.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self._errors.append(FieldError(key, "must be a number", value))
            return default
        try:
            number = float(value)
        except ValueError:
            self._errors.append(FieldError(key, "must be a number", value))
            return default
        bounds = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
        kind = "a whole number" if whole else "a number"
        if (
            not math.isfinite(number)
            or number < low
            or (high is not None and number > high)
            or (whole and number != int(number))
        ):
            self._errors.append(FieldError(key, f"must be {kind} {bounds}", value))
            return default
        return number
