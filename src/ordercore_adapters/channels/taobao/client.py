"""The TOP HTTP client: one coarse ``call(method, params)`` and the boundary around it.

Every request is a signed form POST to the gateway (system params ``method, app_key,
session, timestamp, format=json, v=2.0, sign_method, sign``). What comes back is
translated here, so nothing above this module sees httpx or a TOP error code:

======================================================  =================================
TOP answer                                              raised
======================================================  =================================
code 26/27, sub_code ``invalid-sessionkey``,            :class:`ChannelAuthExpired` (not
``session-expired``, ``isv.invalid-session``...         retried: a seller must act)
code 7 (App Call Limited, "This ban will last for N     wait N seconds, then call again;
more seconds")                                          :class:`TopRateLimited` when the
                                                        bans add up past ``max_ban_wait``
sub_code ``isp.*``, code 10, HTTP 5xx or 429, a        retried with backoff and jitter
timeout, a connection error, malformed JSON             (stamina), then
                                                        :class:`ChannelUnavailable`
any other error (``isv.*`` and the like)                :class:`TopApiError` (not retried)
======================================================  =================================

A client-side rate limiter spaces the calls (``requests_per_second``); a ban also
pauses it, so concurrent calls wait the ban out too. Secrets (the app secret, the
session key, a refresh token) never appear in a repr, a log line or an error message:
text the platform sends back is scrubbed of them before it is quoted.

Tests turn stamina's waiting off with ``stamina.set_testing(True, attempts=N, cap=True)``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import Any, Final

import anyio
import httpx
import stamina

from ordercore.errors import ChannelAuthExpired, ChannelUnavailable, OrderCoreError
from ordercore.ports.clock import Clock, SystemClock

from .signing import SIGN_METHODS, format_top_time, sign_top

__all__ = ["TopApiError", "TopClient", "TopRateLimited"]

logger = logging.getLogger("ordercore.channels.taobao")

_AUTH_CODES: Final = frozenset({26, 27})
"""Missing session, Invalid session."""
_AUTH_SUB_CODES: Final = frozenset(
    {
        "invalid-sessionkey",
        "session-expired",
        "session-not-exist",
        "isv.invalid-session",
        "isv.session-expired",
        "isv.invalid-sessionkey",
    }
)
_TRANSIENT_CODES: Final = frozenset({10})
"""Service currently unavailable."""
_BAN = re.compile(r"(\d+(?:\.\d+)?)\s*more seconds")
_REDACTED = "<redacted>"


class TopApiError(OrderCoreError):
    """TOP refused a call for a reason a retry will not fix (``isv.*``, bad arguments)."""

    def __init__(
        self, channel: str, method: str, code: object, msg: str, sub_code: str, sub_msg: str
    ) -> None:
        self.channel = channel
        self.method = method
        self.code = code
        self.sub_code = sub_code
        detail = f"{sub_code}: {sub_msg}" if sub_code or sub_msg else "no sub_code"
        super().__init__(
            f"taobao channel {channel!r}: {method} refused with TOP error {code} {msg!r} "
            f"({detail}); not retried"
        )


class TopRateLimited(ChannelUnavailable):
    """TOP's bans (code 7) last longer than the client may wait; try again later."""


class _Transient(ChannelUnavailable):
    """A failure worth retrying (stamina retries exactly this type)."""


class _Banned(Exception):
    """TOP answered code 7: calls are banned for ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


class _RateLimiter:
    """At most ``per_second`` calls per second, and none while a ban lasts."""

    def __init__(self, per_second: float | None) -> None:
        if per_second is not None and per_second <= 0:
            raise ValueError(f"taobao: requests_per_second must be > 0, got {per_second}")
        self._interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0
        self._lock = anyio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            delay = self._next - time.monotonic()
            if delay > 0:
                await anyio.sleep(delay)
            self._next = time.monotonic() + self._interval

    def pause(self, seconds: float) -> None:
        self._next = max(self._next, time.monotonic() + seconds)


def response_key(method: str) -> str:
    """Where TOP puts a method's answer: ``taobao.time.get`` -> ``time_get_response``."""
    name = method.removeprefix("taobao.")
    return name.replace(".", "_") + "_response"


class TopClient:
    """A signed, retrying, rate-limited client of one TOP app (and one seller's session)."""

    def __init__(
        self,
        *,
        app_key: str,
        app_secret: str,
        session: str | None,
        gateway_url: str,
        sign_method: str = "md5",
        timeout: float = 15.0,
        attempts: int = 4,
        retry_timeout: float = 60.0,
        requests_per_second: float | None = None,
        max_ban_wait: float = 60.0,
        channel: str = "taobao",
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not app_key or not app_secret:
            raise ValueError("taobao: app_key and app_secret must not be empty")
        if sign_method not in SIGN_METHODS:
            raise ValueError(
                f"taobao: sign_method must be one of {', '.join(SIGN_METHODS)}, got {sign_method!r}"
            )
        if not gateway_url.startswith(("http://", "https://")):
            raise ValueError(f"taobao: gateway_url must be an http(s) URL, got {gateway_url!r}")
        if attempts < 1:
            raise ValueError(f"taobao: attempts must be >= 1, got {attempts}")
        if timeout <= 0 or max_ban_wait < 0:
            raise ValueError("taobao: timeout must be > 0 and max_ban_wait >= 0")
        self.channel = channel
        self.app_key = app_key
        self.gateway_url = gateway_url
        self.sign_method = sign_method
        self.timeout = timeout
        self.attempts = attempts
        self.retry_timeout = retry_timeout
        self.max_ban_wait = max_ban_wait
        self._secret = app_secret
        self._session = session
        self._secrets: set[str] = {app_secret} | ({session} if session else set())
        self._clock: Clock = clock or SystemClock()
        self._limiter = _RateLimiter(requests_per_second)
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"User-Agent": "ordercore-taobao"},
        )

    def __repr__(self) -> str:
        return (
            f"TopClient(channel={self.channel!r}, app_key={self.app_key!r}, "
            f"gateway_url={self.gateway_url!r}, sign_method={self.sign_method!r})"
        )

    def set_session(self, session: str) -> None:
        """Use a new session key (after a refresh)."""
        self._session = session
        self.add_secret(session)

    def add_secret(self, value: str) -> None:
        """Scrub ``value`` (a refresh token, say) from every message this client makes."""
        if value:
            self._secrets.add(value)

    def redact(self, text: str) -> str:
        """``text`` with every known secret replaced (platform text may echo them)."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, _REDACTED)
        return text

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def call(
        self,
        method: str,
        params: Mapping[str, object] | None = None,
        *,
        with_session: bool = True,
    ) -> dict[str, Any]:
        """Call ``method`` and return its ``<method>_response`` object.

        Raises ChannelAuthExpired, TopApiError, TopRateLimited or (after the retries)
        ChannelUnavailable.
        """
        tried = 0
        try:
            async for attempt in stamina.retry_context(
                on=_Transient,
                attempts=self.attempts,
                timeout=self.retry_timeout,
                wait_initial=0.2,
                wait_max=5.0,
                wait_jitter=0.5,
            ):
                with attempt:
                    tried = attempt.num
                    return await self._call_through_bans(method, params or {}, with_session)
        except _Transient as exc:
            raise ChannelUnavailable(
                f"taobao channel {self.channel!r}: {method} failed {tried} time(s), "
                f"giving up: {exc}"
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call_through_bans(
        self, method: str, params: Mapping[str, object], with_session: bool
    ) -> dict[str, Any]:
        waited = 0.0
        while True:
            await self._limiter.acquire()
            try:
                return await self._call_once(method, params, with_session)
            except _Banned as ban:
                if waited + ban.seconds > self.max_ban_wait:
                    raise TopRateLimited(
                        f"taobao channel {self.channel!r}: {method} is rate limited by TOP "
                        f"(code 7) for {ban.seconds:g} s more, past the "
                        f"{self.max_ban_wait:g} s this client waits; try again later"
                    ) from None
                waited += ban.seconds
                logger.warning(
                    "taobao channel %r: %s rate limited by TOP (code 7), waiting %g s",
                    self.channel,
                    method,
                    ban.seconds,
                )
                self._limiter.pause(ban.seconds)

    def signed_form(
        self, method: str, params: Mapping[str, object], with_session: bool = True
    ) -> dict[str, str]:
        """The form a call sends: system and business params (non-empty) and ``sign``."""
        form: dict[str, str] = {
            "method": method,
            "app_key": self.app_key,
            "timestamp": format_top_time(self._clock.now()),
            "format": "json",
            "v": "2.0",
            "sign_method": self.sign_method,
        }
        if with_session and self._session:
            form["session"] = self._session
        for key, value in params.items():
            if key in form or key == "sign":
                raise ValueError(f"taobao: {key!r} is a system parameter, not a business one")
            if value is not None and value != "":
                form[key] = str(value).lower() if isinstance(value, bool) else str(value)
        form["sign"] = sign_top(form, self._secret, self.sign_method)
        return form

    async def _call_once(
        self, method: str, params: Mapping[str, object], with_session: bool
    ) -> dict[str, Any]:
        form = self.signed_form(method, params, with_session)
        try:
            response = await self._http.post(self.gateway_url, data=form)
        except httpx.TimeoutException as exc:
            raise _Transient(
                f"{method}: no answer within {self.timeout:g} s ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise _Transient(f"{method}: connection failed ({type(exc).__name__})") from exc
        status = response.status_code
        if status >= 500 or status == 429:
            raise _Transient(f"{method}: HTTP {status} from the gateway")
        if status != 200:
            raise TopApiError(
                self.channel, method, status, f"HTTP {status} from the gateway", "", ""
            )
        try:
            data = response.json()
        except ValueError:
            raise _Transient(
                f"{method}: malformed JSON from the gateway ({len(response.content)} bytes)"
            ) from None
        if not isinstance(data, dict):
            raise _Transient(f"{method}: the gateway answered {type(data).__name__}, not an object")
        error = data.get("error_response")
        if error is not None:
            self._raise_for(method, error)
        body = data.get(response_key(method))
        if not isinstance(body, dict):
            raise _Transient(f"{method}: the answer has no {response_key(method)} object")
        return body

    def _raise_for(self, method: str, error: object) -> None:
        if not isinstance(error, dict):
            raise _Transient(f"{method}: malformed error_response")
        raw_code = error.get("code")
        code: object = int(str(raw_code)) if str(raw_code).isdigit() else raw_code
        msg = self.redact(str(error.get("msg", "")))
        sub_code = self.redact(str(error.get("sub_code", "")))
        sub_msg = self.redact(str(error.get("sub_msg", "")))
        logger.info(
            "taobao channel %r: %s answered TOP error %s %s", self.channel, method, code, sub_code
        )
        if code in _AUTH_CODES or sub_code in _AUTH_SUB_CODES:
            raise ChannelAuthExpired(
                f"taobao channel {self.channel!r}: the session key was refused by TOP "
                f"({code} {msg}, {sub_code or 'no sub_code'}: {sub_msg}); the seller must "
                f"re-authorise the app"
            )
        if code == 7:
            found = _BAN.search(sub_msg) or _BAN.search(msg)
            raise _Banned(float(found.group(1)) if found else 1.0)
        if sub_code.startswith("isp.") or code in _TRANSIENT_CODES:
            raise _Transient(f"{method}: TOP error {code} {msg!r} ({sub_code}: {sub_msg})")
        raise TopApiError(self.channel, method, code, msg, sub_code, sub_msg)
