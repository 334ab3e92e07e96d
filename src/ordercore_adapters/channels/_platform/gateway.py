"""The part of a gateway client every platform shares: its HTTP pool, rate limiter,
secret scrubber and clock, and the retrying call through :mod:`.retry`.

A platform's client subclasses :class:`GatewayClient`, names itself in ``platform`` and
keeps what is its own: the signed form, the answer's shape and the error classifier.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeVar

import httpx

from ordercore.errors import ChannelUnavailable
from ordercore.ports.clock import Clock, SystemClock

from .limits import RateLimiter
from .retry import call_with_retries, post_form
from .scrub import SecretScrubber

__all__ = ["GatewayClient", "check_gateway_url"]

T = TypeVar("T")


def check_gateway_url(platform: str, gateway_url: str) -> None:
    """Refuse a gateway URL that is not http(s)."""
    if not gateway_url.startswith(("http://", "https://")):
        raise ValueError(f"{platform}: gateway_url must be an http(s) URL, got {gateway_url!r}")


class GatewayClient:
    """A signed, retrying, rate-limited client of one platform app (see the module)."""

    platform: ClassVar[str]
    logger: ClassVar[logging.Logger]

    def __init__(
        self,
        *,
        channel: str,
        gateway_url: str,
        timeout: float,
        attempts: int,
        max_ban_wait: float,
        requests_per_second: float | None,
        secrets: Iterable[str | None],
        clock: Clock | None,
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        check_gateway_url(self.platform, gateway_url)
        self.channel = channel
        self.gateway_url = gateway_url
        self.timeout = timeout
        self.attempts = attempts
        self.max_ban_wait = max_ban_wait
        self._scrubber = SecretScrubber(secrets)
        self._clock: Clock = clock or SystemClock()
        self._limiter = RateLimiter(requests_per_second)
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"User-Agent": f"ordercore-{self.platform}"},
        )

    def redact(self, text: str) -> str:
        """``text`` with every known secret replaced (platform text may echo them)."""
        return self._scrubber.redact(text)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _post(
        self, form: Mapping[str, str], method: str, refused: Callable[[int], Exception]
    ) -> dict[str, Any]:
        return await post_form(
            self._http,
            self.gateway_url,
            form,
            method=method,
            http_timeout=self.timeout,
            refused=refused,
        )

    async def _retrying(
        self,
        once: Callable[[], Awaitable[T]],
        method: str,
        *,
        too_limited: Callable[[float, float], ChannelUnavailable],
        limited_by: str = "",
        retry_timeout: float = 45.0,
        wait_jitter: float = 1.0,
    ) -> T:
        return await call_with_retries(
            once,
            platform=self.platform,
            channel=self.channel,
            method=method,
            limiter=self._limiter,
            attempts=self.attempts,
            max_ban_wait=self.max_ban_wait,
            too_limited=too_limited,
            logger=self.logger,
            limited_by=limited_by,
            retry_timeout=retry_timeout,
            wait_jitter=wait_jitter,
        )
