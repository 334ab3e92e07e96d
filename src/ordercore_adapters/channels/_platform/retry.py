"""The boundary every gateway client shares: one form POST, retries and ban waits.

A platform supplies what is really its own: how it refuses a call (``refused``), how its
``error_response`` is classified (it raises :class:`Transient`, :class:`Banned`, or its
own error), and the message once bans outlast ``max_ban_wait``. Everything else is here:

* :func:`post_form`: timeouts, connection errors, HTTP 5xx/429 and malformed JSON become
  :class:`Transient`; another non-200 status becomes ``refused(status)``;
* :func:`call_with_retries`: stamina retries :class:`Transient` with backoff and jitter,
  then raises :class:`ChannelUnavailable`; a :class:`Banned` answer pauses the rate
  limiter and calls again until the bans add up past ``max_ban_wait``.

Tests turn stamina's waiting off with ``stamina.set_testing(True, attempts=N, cap=True)``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx
import stamina

from ordercore.errors import ChannelUnavailable

from .limits import RateLimiter

__all__ = ["Banned", "Transient", "call_with_retries", "post_form"]

T = TypeVar("T")


class Transient(ChannelUnavailable):
    """A failure worth retrying (stamina retries exactly this type)."""


class Banned(Exception):
    """The platform limits the calls for ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


async def post_form(
    http: httpx.AsyncClient,
    url: str,
    form: Mapping[str, str],
    *,
    method: str,
    http_timeout: float,
    refused: Callable[[int], Exception],
) -> dict[str, Any]:
    """POST ``form``; the JSON object answered, or :class:`Transient` / ``refused(status)``."""
    try:
        response = await http.post(url, data=dict(form))
    except httpx.TimeoutException as exc:
        raise Transient(
            f"{method}: no answer within {http_timeout:g} s ({type(exc).__name__})"
        ) from exc
    except httpx.TransportError as exc:
        raise Transient(f"{method}: connection failed ({type(exc).__name__})") from exc
    status = response.status_code
    if status >= 500 or status == 429:
        raise Transient(f"{method}: HTTP {status} from the gateway")
    if status != 200:
        raise refused(status)
    try:
        data = response.json()
    except ValueError:
        raise Transient(
            f"{method}: malformed JSON from the gateway ({len(response.content)} bytes)"
        ) from None
    if not isinstance(data, dict):
        raise Transient(f"{method}: the gateway answered {type(data).__name__}, not an object")
    return data


async def call_with_retries(
    once: Callable[[], Awaitable[T]],
    *,
    platform: str,
    channel: str,
    method: str,
    limiter: RateLimiter,
    attempts: int,
    max_ban_wait: float,
    too_limited: Callable[[float, float], ChannelUnavailable],
    logger: logging.Logger,
    limited_by: str = "",
    retry_timeout: float = 45.0,
    wait_jitter: float = 1.0,
) -> T:
    """``once()`` through the limiter, bans waited out, :class:`Transient` retried.

    ``too_limited(seconds, waited)`` is raised when a ban of ``seconds`` would take the
    wait past ``max_ban_wait``; ``limited_by`` names who limits in the log (`` by JOS``).
    """
    tried = 0
    try:
        async for attempt in stamina.retry_context(
            on=Transient,
            attempts=attempts,
            timeout=retry_timeout,
            wait_initial=0.2,
            wait_max=5.0,
            wait_jitter=wait_jitter,
        ):
            with attempt:
                tried = attempt.num
                return await _through_bans(
                    once,
                    platform=platform,
                    channel=channel,
                    method=method,
                    limiter=limiter,
                    max_ban_wait=max_ban_wait,
                    too_limited=too_limited,
                    logger=logger,
                    limited_by=limited_by,
                )
    except Transient as exc:
        raise ChannelUnavailable(
            f"{platform} channel {channel!r}: {method} failed {tried} time(s), giving up: {exc}"
        ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


async def _through_bans(
    once: Callable[[], Awaitable[T]],
    *,
    platform: str,
    channel: str,
    method: str,
    limiter: RateLimiter,
    max_ban_wait: float,
    too_limited: Callable[[float, float], ChannelUnavailable],
    logger: logging.Logger,
    limited_by: str,
) -> T:
    waited = 0.0
    while True:
        await limiter.acquire()
        try:
            return await once()
        except Banned as ban:
            if waited + ban.seconds > max_ban_wait:
                raise too_limited(ban.seconds, waited) from None
            waited += ban.seconds
            logger.warning(
                "%s channel %r: %s rate limited%s, waiting %g s",
                platform,
                channel,
                method,
                limited_by,
                ban.seconds,
            )
            limiter.pause(ban.seconds)
