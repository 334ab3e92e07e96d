"""The Pinduoduo open-platform HTTP client: one coarse ``call`` and the boundary around it.

Every request is a signed form POST to the gateway (``/api/router``) with the system
params ``type`` (the API name), ``client_id``, ``access_token``, ``timestamp`` (unix
seconds), ``data_type=JSON`` and ``version=V1``, the business params alongside them,
and ``sign = MD5(client_secret + sorted key+value concatenation + client_secret)`` in
uppercase hex (public; the same shape as TOP's md5, the shared :mod:`.._platform.signing`).

===========================================================  ============================
Pinduoduo answer                                             raised
===========================================================  ============================
``error_response.error_code`` in :data:`AUTH_CODES`          :class:`ChannelAuthExpired`
(10019: access_token expired)                                (not retried)
``error_code`` in :data:`RATE_LIMIT_CODES` (70031)           wait ``rate_limit_wait`` s,
                                                             call again;
                                                             :class:`PddRateLimited` past
                                                             ``max_ban_wait`` in total
HTTP 5xx or 429, timeout, connection error, malformed JSON,  retried with backoff
``error_code`` in :data:`TRANSIENT_CODES`                    (stamina), then
                                                             :class:`ChannelUnavailable`
any other error                                              :class:`PddApiError`
===========================================================  ============================

Public: the error shape ``{"error_response": {"error_code", "error_msg", "sub_code",
"sub_msg", "request_id"}}``. 10019 for an expired access token is the platform's
error-code table as we know it (not re-checked against a copy here). **Assumed**: 70031
as the rate-limit code and that it names no wait time (a fixed ``rate_limit_wait`` is
used); the transient codes. Secrets never appear in a repr, a log line or an error.
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
from .._platform.retry import Banned, Transient
from .._platform.signing import md5_sign

__all__ = [
    "AUTH_CODES",
    "RATE_LIMIT_CODES",
    "TRANSIENT_CODES",
    "PddApiError",
    "PddClient",
    "PddRateLimited",
    "sign_pdd",
]

logger = logging.getLogger("ordercore.channels.pinduoduo")

AUTH_CODES: Final = frozenset({"10019"})
"""10019 = access_token expired (the seller re-authorises); see the module."""
RATE_LIMIT_CODES: Final = frozenset({"70031"})
"""Assumed: 70031 = calls limited (限流)."""
TRANSIENT_CODES: Final = frozenset({"50000", "50001"})
"""Assumed: system error, service busy."""


def sign_pdd(params: Mapping[str, object], client_secret: str) -> str:
    """``MD5(secret + k1v1k2v2... + secret)`` uppercase over the non-empty params but sign."""
    return md5_sign(params, client_secret)


class PddApiError(OrderCoreError):
    """Pinduoduo refused a call for a reason a retry will not fix (bad arguments, caps)."""

    def __init__(self, channel: str, api: str, code: str, msg: str) -> None:
        self.channel = channel
        self.api = api
        self.code = code
        super().__init__(
            f"pinduoduo channel {channel!r}: {api} refused with error {code} {msg!r}; not retried"
        )


class PddRateLimited(ChannelUnavailable):
    """Pinduoduo kept limiting the calls past ``max_ban_wait``; try again later."""


def response_key(api: str) -> str:
    """Where the gateway puts an answer when it is not named specially."""
    return api.removeprefix("pdd.").replace(".", "_") + "_response"


class PddClient(GatewayClient):
    """A signed, retrying, rate-limited client of one Pinduoduo app and one shop's token."""

    platform = "pinduoduo"
    logger = logger

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        access_token: str,
        gateway_url: str,
        timeout: float = 15.0,
        attempts: int = 4,
        requests_per_second: float | None = None,
        max_ban_wait: float = 60.0,
        rate_limit_wait: float = 1.0,
        channel: str = "pinduoduo",
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError("pinduoduo: client_id and client_secret must not be empty")
        super().__init__(
            channel=channel,
            gateway_url=gateway_url,
            timeout=timeout,
            attempts=attempts,
            max_ban_wait=max_ban_wait,
            requests_per_second=requests_per_second,
            secrets=[client_secret, access_token],
            clock=clock,
            transport=transport,
        )
        self.client_id = client_id
        self.rate_limit_wait = rate_limit_wait
        self._secret = client_secret
        self._token = access_token

    def __repr__(self) -> str:
        return (
            f"PddClient(channel={self.channel!r}, client_id={self.client_id!r}, "
            f"gateway_url={self.gateway_url!r})"
        )

    def set_access_token(self, token: str) -> None:
        """Use a new access token (after a refresh or a restore)."""
        self._scrubber.add(token)
        self._token = token

    def add_secret(self, value: str) -> None:
        """Scrub ``value`` (a refresh token, say) from every message this client makes."""
        self._scrubber.add(value)

    def signed_form(
        self, api: str, params: Mapping[str, object], *, with_token: bool = True
    ) -> dict[str, str]:
        """The form a call sends: system and business params (non-empty) and ``sign``."""
        form: dict[str, str] = {
            "type": api,
            "client_id": self.client_id,
            "timestamp": str(int(self._clock.now().timestamp())),
            "data_type": "JSON",
            "version": "V1",
        }
        if with_token:
            form["access_token"] = self._token
        for key, value in params.items():
            if key in form or key == "sign":
                raise ValueError(f"pinduoduo: {key!r} is a system parameter, not a business one")
            if value is None or value == "":
                continue
            if isinstance(value, bool):
                form[key] = str(value).lower()
            elif isinstance(value, Mapping | list | tuple):
                form[key] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            else:
                form[key] = str(value)
        form["sign"] = sign_pdd(form, self._secret)
        return form

    async def call(
        self,
        api: str,
        params: Mapping[str, object] | None = None,
        *,
        key: str | None = None,
        with_token: bool = True,
    ) -> dict[str, Any]:
        """Call ``api``; return its answer object (under ``key``). See the module."""
        return await self._retrying(
            lambda: self._call_once(api, params or {}, key or response_key(api), with_token),
            api,
            too_limited=lambda _seconds, waited: PddRateLimited(
                f"pinduoduo channel {self.channel!r}: {api} is still rate limited "
                f"after waiting {waited:g} s (max_ban_wait {self.max_ban_wait:g} s); "
                f"try again later"
            ),
            limited_by="",
        )

    async def _call_once(
        self, api: str, params: Mapping[str, object], key: str, with_token: bool
    ) -> dict[str, Any]:
        form = self.signed_form(api, params, with_token=with_token)
        data = await self._post(
            form,
            api,
            lambda status: PddApiError(self.channel, api, f"HTTP {status}", ""),
        )
        error = data.get("error_response")
        if error is not None:
            self._raise_for(api, error)
        body = data.get(key)
        if not isinstance(body, dict):
            raise Transient(f"{api}: the answer has no {key} object")
        return body

    def _raise_for(self, api: str, error: object) -> None:
        if not isinstance(error, dict):
            raise Transient(f"{api}: malformed error_response")
        code = str(error.get("error_code", ""))
        msg = self.redact(str(error.get("error_msg", "")))
        sub = self.redact(str(error.get("sub_msg", "")))
        detail = f"{msg} {sub}".strip()
        logger.info("pinduoduo channel %r: %s answered error %s", self.channel, api, code)
        if code in AUTH_CODES:
            raise ChannelAuthExpired(
                f"pinduoduo channel {self.channel!r}: the access token was refused "
                f"({code} {detail}); the seller must re-authorise the app"
            )
        if code in RATE_LIMIT_CODES:
            raise Banned(self.rate_limit_wait)
        if code in TRANSIENT_CODES:
            raise Transient(f"{api}: error {code} {detail!r}")
        raise PddApiError(self.channel, api, code, detail)
