"""The JOS HTTP client: one coarse ``call(method, params)`` and the boundary around it.

Every request is a signed form POST to the JOS gateway (``/routerjson``) with the system
params ``method, app_key, access_token, timestamp, format=json, v=2.0, sign_method=md5``
and the business params as ONE JSON string, ``360buy_param_json``. The signature is
TOP's md5 shape (the shared :mod:`.._platform.signing`). What comes back is translated here:

=======================================================  ================================
JOS answer                                               raised
=======================================================  ================================
``error_response`` code 19 (token expired / missing)     :class:`ChannelAuthExpired`
code in :data:`RATE_LIMIT_CODES` (calls too frequent)    wait ``rate_limit_wait`` s, call
                                                         again; :class:`JdRateLimited`
                                                         past ``max_ban_wait`` in total
HTTP 5xx or 429, timeout, connection error, malformed    retried with backoff (stamina),
JSON, code in :data:`TRANSIENT_CODES`                    then :class:`ChannelUnavailable`
any other error                                          :class:`JosApiError` (not retried)
=======================================================  ================================

Public: the error shape ``{"error_response": {"code", "zh_desc", "en_desc"}}``; code
19 for an expired or missing access token is JOS's error table as we know it (not
re-checked against a copy here). **Assumed**: the rate-limit codes (JOS
publishes per-API flow control but not a code this adapter could rely on) and that JOS
names no wait time, so the client waits a fixed ``rate_limit_wait``; the transient codes.
Secrets (app secret, access token, refresh token) never appear in a repr, a log line or
an error.

Token refresh (:meth:`JosClient.refresh_grant`) goes to JD's OAuth host, not the gateway
(public: the JOS OAuth 2 refresh-token grant, ``/oauth2/refresh_token`` on
``open-oauth.jd.com``, params ``app_key, app_secret, grant_type=refresh_token,
refresh_token``; the answer carries ``access_token``, ``expires_in`` in seconds,
``refresh_token``, ``scope``, ``open_id``/``uid`` and ``time`` in epoch ms). **Assumed**:
that a form POST is accepted (the public examples send a GET query string; a POST keeps
the app secret and the refresh token out of URLs, proxies' access logs and httpx's
request log); that a refusal is ``{"code": non-zero, "msg": ...}`` (any refusal of a
refresh grant is treated as "the seller must authorise again"); that the answer may
name the refresh token's own expiry as ``refresh_token_expires`` (epoch ms) or
``refresh_expires_in`` (seconds); JD publishes neither for every app type.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Final

import httpx

from ordercore.errors import ChannelAuthExpired, ChannelUnavailable, OrderCoreError
from ordercore.ports.clock import Clock

from .._platform.gateway import GatewayClient
from .._platform.retry import Banned, Transient, post_form
from .._platform.signing import md5_sign
from .._platform.times import format_top_time

__all__ = [
    "AUTH_CODES",
    "RATE_LIMIT_CODES",
    "TRANSIENT_CODES",
    "JdRateLimited",
    "JosApiError",
    "JosClient",
    "param_json",
    "response_keys",
]

logger = logging.getLogger("ordercore.channels.jd")

AUTH_CODES: Final = frozenset({"19"})
"""19 = access_token expired or not found (re-authorise); see the module."""
RATE_LIMIT_CODES: Final = frozenset({"82"})
"""Assumed: the code JOS answers when an app calls an API too often."""
TRANSIENT_CODES: Final = frozenset({"1", "3"})
"""Assumed: service unavailable, system error."""


class JosApiError(OrderCoreError):
    """JOS refused a call for a reason a retry will not fix (bad arguments, a span cap)."""

    def __init__(self, channel: str, method: str, code: str, desc: str) -> None:
        self.channel = channel
        self.method = method
        self.code = code
        super().__init__(
            f"jd channel {channel!r}: {method} refused with JOS error {code} {desc!r}; not retried"
        )


class JdRateLimited(ChannelUnavailable):
    """JOS kept limiting the calls past ``max_ban_wait``; try again later."""


def response_keys(method: str) -> tuple[str, str]:
    """Where JOS puts an answer: ``jingdong_pop_order_search_responce`` (JOS's spelling)."""
    name = method.replace(".", "_")
    return f"{name}_responce", f"{name}_response"


def param_json(params: Mapping[str, object]) -> str:
    """The ``360buy_param_json`` value: compact JSON, keys sorted, UTF-8 kept."""
    return json.dumps(dict(params), ensure_ascii=False, separators=(",", ":"), sort_keys=True)


class JosClient(GatewayClient):
    """A signed, retrying, rate-limited client of one JOS app and one seller's token."""

    platform = "jd"
    logger = logger

    def __init__(
        self,
        *,
        app_key: str,
        app_secret: str,
        access_token: str,
        gateway_url: str,
        timeout: float = 15.0,
        attempts: int = 4,
        requests_per_second: float | None = None,
        max_ban_wait: float = 60.0,
        rate_limit_wait: float = 1.0,
        channel: str = "jd",
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not app_key or not app_secret:
            raise ValueError("jd: app_key and app_secret must not be empty")
        super().__init__(
            channel=channel,
            gateway_url=gateway_url,
            timeout=timeout,
            attempts=attempts,
            max_ban_wait=max_ban_wait,
            requests_per_second=requests_per_second,
            secrets=[app_secret, access_token],
            clock=clock,
            transport=transport,
        )
        self.app_key = app_key
        self.rate_limit_wait = rate_limit_wait
        self._secret = app_secret
        self._token = access_token

    def __repr__(self) -> str:
        return (
            f"JosClient(channel={self.channel!r}, app_key={self.app_key!r}, "
            f"gateway_url={self.gateway_url!r})"
        )

    def set_access_token(self, token: str) -> None:
        """Use a new access token (after a refresh or a restore)."""
        self._scrubber.add(token)
        self._token = token

    def add_secret(self, value: str) -> None:
        """Scrub ``value`` (a refresh token, say) from every message this client makes."""
        self._scrubber.add(value)

    async def refresh_grant(self, oauth_url: str, refresh_token: str) -> dict[str, Any]:
        """POST the refresh-token grant to JD's OAuth host; the answer's JSON object.

        Raises ChannelAuthExpired when JD refuses the grant (the refresh token is spent,
        expired or revoked), ChannelUnavailable after retries on transient failures.
        """
        what = "oauth2/refresh_token"
        form = {
            "app_key": self.app_key,
            "app_secret": self._secret,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        }

        def refused(status: int) -> ChannelAuthExpired:
            return ChannelAuthExpired(
                f"jd channel {self.channel!r}: JD's OAuth host refused to refresh the token "
                f"(HTTP {status}); the seller must authorise the app again"
            )

        async def once() -> dict[str, Any]:
            data = await post_form(
                self._http,
                oauth_url,
                form,
                method=what,
                http_timeout=self.timeout,
                refused=refused,
            )
            code = str(data.get("code", "0"))
            if code not in ("0", ""):
                msg = self.redact(str(data.get("msg") or data.get("error_description") or ""))
                logger.info("jd channel %r: the token refresh answered code %s", self.channel, code)
                raise ChannelAuthExpired(
                    f"jd channel {self.channel!r}: JD refused to refresh the token ({code} "
                    f"{msg}); the seller must authorise the app again"
                )
            return data

        return await self._retrying(
            once,
            what,
            too_limited=lambda _seconds, waited: JdRateLimited(
                f"jd channel {self.channel!r}: {what} is still rate limited after waiting "
                f"{waited:g} s; try again later"
            ),
            limited_by=" by JD's OAuth host",
        )

    def signed_form(self, method: str, params: Mapping[str, object]) -> dict[str, str]:
        """The form a call sends: system params, ``360buy_param_json`` and ``sign``."""
        form = {
            "method": method,
            "app_key": self.app_key,
            "access_token": self._token,
            "timestamp": format_top_time(self._clock.now()),
            "format": "json",
            "v": "2.0",
            "sign_method": "md5",
            "360buy_param_json": param_json(params),
        }
        form["sign"] = md5_sign(form, self._secret)
        return form

    async def call(self, method: str, params: Mapping[str, object]) -> dict[str, Any]:
        """Call ``method``; return its response object. See the module for what it raises."""
        return await self._retrying(
            lambda: self._call_once(method, params),
            method,
            too_limited=lambda _seconds, waited: JdRateLimited(
                f"jd channel {self.channel!r}: {method} is still rate limited by JOS "
                f"after waiting {waited:g} s (max_ban_wait {self.max_ban_wait:g} s); "
                f"try again later"
            ),
            limited_by=" by JOS",
        )

    async def _call_once(self, method: str, params: Mapping[str, object]) -> dict[str, Any]:
        form = self.signed_form(method, params)
        data = await self._post(
            form,
            method,
            lambda status: JosApiError(self.channel, method, f"HTTP {status}", ""),
        )
        error = data.get("error_response")
        if error is not None:
            self._raise_for(method, error)
        for key in response_keys(method):
            body = data.get(key)
            if isinstance(body, dict):
                return body
        raise Transient(f"{method}: the answer has no {response_keys(method)[0]} object")

    def _raise_for(self, method: str, error: object) -> None:
        if not isinstance(error, dict):
            raise Transient(f"{method}: malformed error_response")
        code = str(error.get("code", ""))
        desc = self.redact(str(error.get("zh_desc") or error.get("en_desc") or ""))
        logger.info("jd channel %r: %s answered JOS error %s", self.channel, method, code)
        if code in AUTH_CODES:
            raise ChannelAuthExpired(
                f"jd channel {self.channel!r}: the access token was refused by JOS "
                f"({code} {desc}); the seller must re-authorise the app"
            )
        if code in RATE_LIMIT_CODES:
            raise Banned(self.rate_limit_wait)
        if code in TRANSIENT_CODES:
            raise Transient(f"{method}: JOS error {code} {desc!r}")
        raise JosApiError(self.channel, method, code, desc)
