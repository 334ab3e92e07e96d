"""An HTTP WMS stock feed: signed JSON over HTTP, paged by an opaque cursor.

The protocol (ordercore's WMS feed, version 1; a WMS or its middleware serves it):

* ``GET {base_url}/stock/changes?cursor=<cursor>&limit=<n>`` (no ``cursor`` for the
  first page) answers ``{"batch_id": str, "cursor": str, "has_more": bool,
  "entries": [{"sku": str, "warehouse": str, "on_hand": int} | {..., "delta": int}]}``.
  ``cursor`` is where the next read starts; reading the same cursor again must give
  the same batch (same ``batch_id`` and entries).
* Requests carry ``X-Wms-Key`` (the key id), ``X-Wms-Timestamp`` (Unix seconds) and
  ``X-Wms-Signature``: hex HMAC-SHA256 with the shared secret over
  ``"{METHOD}\\n{path}\\n{query}\\n{timestamp}"``, the query being the parameters sorted
  by name and URL-encoded.
* Answers carry ``X-Wms-Timestamp`` and ``X-Wms-Signature``: hex HMAC-SHA256 over
  ``"{timestamp}\\n"`` followed by the exact body bytes. An answer whose signature does
  not verify is not used.

Transport goes through the shared JSON client (:class:`JsonHttp`: stamina retries with
backoff and jitter, ``Retry-After`` on 429). Errors are translated here:

==============================================  =============================================
what happened                                   raised
==============================================  =============================================
timeout, connection error, HTTP 5xx, 429 past   :class:`WarehouseFeedError` ``transient=True``
the wait, malformed JSON (after the retries)
answer signature missing or wrong               :class:`SignatureInvalid` (not retried)
HTTP 401/403 (our signature or key refused),    :class:`WarehouseFeedError` ``transient=False``
other 4xx, a page that is not the protocol's
==============================================  =============================================

The secret never appears in a message or a log record.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from pydantic import ValidationError

from ordercore.domain.warehouses import StockFeedBatch
from ordercore.errors import (
    ChannelAuthExpired,
    ChannelUnavailable,
    SignatureInvalid,
    WarehouseFeedError,
)
from ordercore_adapters.channels._platform.json_http import ApiError, JsonHttp

__all__ = ["HttpWmsFeed", "request_signature", "response_signature"]

_PATH = "/stock/changes"


def request_signature(secret: str, method: str, path: str, query: str, timestamp: str) -> str:
    """Hex HMAC-SHA256 of ``"{METHOD}\\n{path}\\n{query}\\n{timestamp}"``."""
    message = f"{method.upper()}\n{path}\n{query}\n{timestamp}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def response_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"{timestamp}\\n"`` + body."""
    return hmac.new(secret.encode(), timestamp.encode() + b"\n" + body, hashlib.sha256).hexdigest()


class HttpWmsFeed:
    """A :class:`ordercore.ports.warehouses.WarehousePort` over the HTTP feed protocol.

    ``name`` is the feed's source name (cursors and applied batches are kept under it).
    Close it with :meth:`aclose` (or use it as an async context manager).
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        key_id: str,
        secret: str,
        timeout: float = 10.0,
        attempts: int = 4,
        max_wait: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"WMS {name!r}: base_url must be an http(s) URL")
        if not key_id or not secret:
            raise ValueError(f"WMS {name!r}: key_id and secret are required")
        self.name = name
        self._url = base_url.rstrip("/") + _PATH
        self._path = parts.path.rstrip("/") + _PATH
        self._key_id = key_id
        self._secret = secret
        self._clock = clock
        self._http = JsonHttp(
            kind="wms",
            channel=name,
            timeout=timeout,
            attempts=attempts,
            max_wait=max_wait,
            secrets=(secret,),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"HttpWmsFeed(name={self.name!r})"

    async def __aenter__(self) -> HttpWmsFeed:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def ping(self) -> None:
        """Read one entry of the first page (signed both ways) or raise."""
        await self.fetch_stock(None, limit=1)

    async def fetch_stock(self, cursor: str | None, *, limit: int = 500) -> StockFeedBatch:
        """The page after ``cursor``; raises as the module docstring says."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        params = {"limit": str(limit)}
        if cursor is not None:
            params["cursor"] = cursor
        query = urlencode(sorted(params.items()))
        what = "fetch stock changes"
        try:
            _response, data = await self._http.request(
                "GET",
                self._url,
                what=what,
                params=params,
                headers=self._signed_headers(query),
                check=self._verify,
            )
        except ChannelAuthExpired as exc:
            raise self._error(what, f"credentials refused ({exc})", transient=False) from None
        except ChannelUnavailable as exc:
            raise self._error(what, str(exc), transient=True) from None
        except ApiError as exc:
            raise self._error(what, str(exc), transient=False) from None
        return self._batch(data, what)

    def _signed_headers(self, query: str) -> dict[str, str]:
        timestamp = str(int(self._clock()))
        return {
            "X-Wms-Key": self._key_id,
            "X-Wms-Timestamp": timestamp,
            "X-Wms-Signature": request_signature(self._secret, "GET", self._path, query, timestamp),
            "Accept": "application/json",
        }

    def _verify(self, response: httpx.Response, _data: Any) -> None:
        timestamp = response.headers.get("X-Wms-Timestamp")
        received = response.headers.get("X-Wms-Signature")
        if not timestamp or not received:
            raise SignatureInvalid(f"WMS {self.name!r}: the answer is not signed")
        expected = response_signature(self._secret, timestamp, response.content)
        if not hmac.compare_digest(received.lower(), expected):
            raise SignatureInvalid(
                f"WMS {self.name!r}: the answer's signature does not verify "
                "(wrong secret, or the body was changed on the way)"
            )

    def _batch(self, data: Any, what: str) -> StockFeedBatch:
        if not isinstance(data, Mapping):
            raise self._error(what, "the answer is not a JSON object", transient=False)
        try:
            return StockFeedBatch.model_validate(
                {
                    "batch_id": data.get("batch_id"),
                    "cursor": data.get("cursor"),
                    "has_more": data.get("has_more", False),
                    "entries": data.get("entries"),
                }
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
                for error in exc.errors()[:5]
            )
            raise self._error(
                what, f"the page is not a stock feed page ({problems})", transient=False
            ) from None

    def _error(self, what: str, reason: str, *, transient: bool) -> WarehouseFeedError:
        return WarehouseFeedError(self.name, what, self._http.redact(reason), transient=transient)
