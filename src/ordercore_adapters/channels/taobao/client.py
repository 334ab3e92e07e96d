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
from collections.abc import Mapping
from typing import Any, Final

import httpx

from ordercore.errors import ChannelAuthExpired, ChannelUnavailable, OrderCoreError
from ordercore.ports.clock import Clock

from .._platform.gateway import GatewayClient, check_gateway_url
from .._platform.retry import Banned, Transient
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


def response_key(method: str) -> str:
    """Where TOP puts a method's answer: ``taobao.time.get`` -> ``time_get_response``."""
    name = method.removeprefix("taobao.")
    return name.replace(".", "_") + "_response"


class TopClient(GatewayClient):
    """A signed, retrying, rate-limited client of one TOP app (and one seller's session)."""

    platform = "taobao"
    logger = logger

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
        check_gateway_url("taobao", gateway_url)
        if attempts < 1:
            raise ValueError(f"taobao: attempts must be >= 1, got {attempts}")
        if timeout <= 0 or max_ban_wait < 0:
            raise ValueError("taobao: timeout must be > 0 and max_ban_wait >= 0")
        super().__init__(
            channel=channel,
            gateway_url=gateway_url,
            timeout=timeout,
            attempts=attempts,
            max_ban_wait=max_ban_wait,
            requests_per_second=requests_per_second,
            secrets=[app_secret, session],
            clock=clock,
            transport=transport,
        )
        self.app_key = app_key
        self.sign_method = sign_method
        self.retry_timeout = retry_timeout
        self._secret = app_secret
        self._session = session

    def __repr__(self) -> str:
        return (
            f"TopClient(channel={self.channel!r}, app_key={self.app_key!r}, "
            f"gateway_url={self.gateway_url!r}, sign_method={self.sign_method!r})"
        )

    @property
    def session(self) -> str:
        """The session key in use (a secret: never log or quote it)."""
        return self._session or ""

    def set_session(self, session: str) -> None:
        """Use a new session key (after a refresh)."""
        self._session = session
        self.add_secret(session)

    def add_secret(self, value: str) -> None:
        """Scrub ``value`` (a refresh token, say) from every message this client makes."""
        self._scrubber.add(value)

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
        return await self._retrying(
            lambda: self._call_once(method, params or {}, with_session),
            method,
            too_limited=lambda seconds, _waited: TopRateLimited(
                f"taobao channel {self.channel!r}: {method} is rate limited by TOP "
                f"(code 7) for {seconds:g} s more, past the "
                f"{self.max_ban_wait:g} s this client waits; try again later"
            ),
            limited_by=" by TOP (code 7)",
            retry_timeout=self.retry_timeout,
            wait_jitter=0.5,
        )

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
        data = await self._post(
            form,
            method,
            lambda status: TopApiError(
                self.channel, method, status, f"HTTP {status} from the gateway", "", ""
            ),
        )
        error = data.get("error_response")
        if error is not None:
            self._raise_for(method, error)
        body = data.get(response_key(method))
        if not isinstance(body, dict):
            raise Transient(f"{method}: the answer has no {response_key(method)} object")
        return body

    def _raise_for(self, method: str, error: object) -> None:
        if not isinstance(error, dict):
            raise Transient(f"{method}: malformed error_response")
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
            raise Banned(float(found.group(1)) if found else 1.0)
        if sub_code.startswith("isp.") or code in _TRANSIENT_CODES:
            raise Transient(f"{method}: TOP error {code} {msg!r} ({sub_code}: {sub_msg})")
        raise TopApiError(self.channel, method, code, msg, sub_code, sub_msg)
