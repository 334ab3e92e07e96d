"""A small JSON-over-HTTP client shared by the push-capable channels (h5, shopify, douyin).

One coarse :meth:`JsonHttp.request`; everything a platform answers is translated here:

=================================================  ==========================================
answer                                             raised
=================================================  ==========================================
HTTP 401 / 403, or a hook raising it               :class:`ChannelAuthExpired` (not retried)
HTTP 429 (``Retry-After``), or a hook's            wait, then ask again; :class:`RateLimited`
:class:`Throttled`                                 once the waits add up past ``max_wait``
HTTP 5xx, a timeout, a connection error,           retried with backoff and jitter (stamina),
malformed JSON, a hook's :class:`Transient`        then :class:`ChannelUnavailable`
any other 4xx                                      :class:`ApiError` (not retried)
=================================================  ==========================================

Secrets passed to the client are scrubbed from every message it makes, and from the
``httpx`` logger's records while the client is open (httpx logs every request URL at
INFO, and 抖店 wants its access token in the query string). Tests switch
stamina's waiting off with ``stamina.set_testing(True, attempts=N, cap=True)``.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import anyio
import httpx
import stamina

from ordercore.errors import ChannelAuthExpired, ChannelUnavailable, OrderCoreError

__all__ = ["ApiError", "JsonHttp", "RateLimited", "Throttled", "Transient"]

_REDACTED = "<redacted>"
_EXCERPT = 200

Check = Callable[[httpx.Response, Any], None]
"""A platform hook run on every parsed answer; raises to classify an in-body error."""


class ApiError(OrderCoreError):
    """The platform refused a call for a reason a retry will not fix."""


class RateLimited(ChannelUnavailable):
    """The platform's rate limit lasts longer than the client may wait; try again later."""


class Transient(ChannelUnavailable):
    """A failure worth retrying (stamina retries exactly this type)."""


class Throttled(Exception):
    """Raised by a hook: the platform asks us to wait ``seconds`` and ask again."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(seconds, reason)
        self.seconds = seconds
        self.reason = reason


class _Scrubber(logging.Filter):
    """Replace a client's secrets in the records of a third-party logger.

    It holds the client weakly: a client dropped without ``aclose`` is not kept alive,
    and its filter then removes itself.
    """

    def __init__(self, redact: Callable[[str], str], logger: logging.Logger) -> None:
        super().__init__()
        self._redact = weakref.WeakMethod(redact)
        self._logger = logger

    def filter(self, record: logging.LogRecord) -> bool:
        redact = self._redact()
        if redact is None:
            self._logger.removeFilter(self)
            return True
        message = record.getMessage()
        scrubbed = redact(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True


class JsonHttp:
    """A retrying, throttle-aware JSON client of one platform account."""

    def __init__(
        self,
        *,
        kind: str,
        channel: str,
        timeout: float,
        attempts: int,
        max_wait: float,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if attempts < 1 or timeout <= 0 or max_wait < 0:
            raise ValueError(f"{kind}: attempts >= 1, timeout > 0 and max_wait >= 0 are needed")
        self.kind = kind
        self.channel = channel
        self.timeout = timeout
        self.attempts = attempts
        self.max_wait = max_wait
        self._secrets = {secret for secret in secrets if secret}
        self._not_before = 0.0
        self._logger = logging.getLogger(f"ordercore.channels.{kind}")
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"User-Agent": f"ordercore-{kind}", **(headers or {})},
        )
        self._scrubber = _Scrubber(self.redact, logging.getLogger("httpx"))
        logging.getLogger("httpx").addFilter(self._scrubber)

    def __repr__(self) -> str:
        return f"JsonHttp(kind={self.kind!r}, channel={self.channel!r})"

    def redact(self, text: str) -> str:
        """``text`` with every known secret replaced (platform text may echo them)."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, _REDACTED)
        return text

    def add_secret(self, value: str) -> None:
        """Scrub ``value`` from every message this client makes."""
        if value:
            self._secrets.add(value)

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (a platform's leaky bucket is nearly full)."""
        self._not_before = max(self._not_before, time.monotonic() + seconds)

    async def aclose(self) -> None:
        """Close the connection pool."""
        logging.getLogger("httpx").removeFilter(self._scrubber)
        await self._http.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        check: Check | None = None,
    ) -> tuple[httpx.Response, Any]:
        """The response and its parsed JSON; raises as the module docstring says."""
        tried = 0
        try:
            async for attempt in stamina.retry_context(
                on=Transient,
                attempts=self.attempts,
                timeout=max(60.0, self.timeout * self.attempts),
                wait_initial=0.2,
                wait_max=5.0,
                wait_jitter=0.5,
            ):
                with attempt:
                    tried = attempt.num
                    return await self._through_limits(
                        method, url, what, params, content, headers, check
                    )
        except Transient as exc:
            raise ChannelUnavailable(
                f"{self.kind} channel {self.channel!r}: {what} failed {tried} time(s), "
                f"giving up: {exc}"
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _through_limits(
        self,
        method: str,
        url: str,
        what: str,
        params: Mapping[str, str] | None,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        check: Check | None,
    ) -> tuple[httpx.Response, Any]:
        waited = 0.0
        while True:
            delay = self._not_before - time.monotonic()
            if delay > 0:
                await anyio.sleep(delay)
            try:
                return await self._once(method, url, what, params, content, headers, check)
            except Throttled as throttle:
                if waited + throttle.seconds > self.max_wait:
                    raise RateLimited(
                        f"{self.kind} channel {self.channel!r}: {what} is rate limited "
                        f"({throttle.reason}) for {throttle.seconds:g} s more, past the "
                        f"{self.max_wait:g} s this client waits; try again later"
                    ) from None
                waited += throttle.seconds
                self._logger.warning(
                    "%s channel %r: %s rate limited (%s), waiting %g s",
                    self.kind,
                    self.channel,
                    what,
                    throttle.reason,
                    throttle.seconds,
                )
                self.pause(throttle.seconds)

    async def _once(
        self,
        method: str,
        url: str,
        what: str,
        params: Mapping[str, str] | None,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        check: Check | None,
    ) -> tuple[httpx.Response, Any]:
        try:
            response = await self._http.request(
                method, url, params=params, content=content, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise Transient(
                f"{what}: no answer within {self.timeout:g} s ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise Transient(f"{what}: connection failed ({type(exc).__name__})") from exc
        status = response.status_code
        if status == 429:
            raise Throttled(_retry_after(response), "HTTP 429")
        if status >= 500:
            raise Transient(f"{what}: HTTP {status}")
        if status in (401, 403):
            raise ChannelAuthExpired(
                f"{self.kind} channel {self.channel!r}: {what} refused the credentials "
                f"(HTTP {status}: {self._excerpt(response)}); the seller must authorise again"
            )
        if status >= 400:
            raise ApiError(
                f"{self.kind} channel {self.channel!r}: {what} refused with HTTP {status} "
                f"({self._excerpt(response)}); not retried"
            )
        try:
            data = response.json()
        except ValueError:
            raise Transient(f"{what}: malformed JSON ({len(response.content)} bytes)") from None
        if check is not None:
            check(response, data)
        return response, data

    def _excerpt(self, response: httpx.Response) -> str:
        return repr(self.redact(response.text[:_EXCERPT]))


def _retry_after(response: httpx.Response) -> float:
    raw = response.headers.get("Retry-After", "")
    try:
        seconds = float(raw)
    except ValueError:
        return 1.0
    return seconds if seconds >= 0 else 1.0
