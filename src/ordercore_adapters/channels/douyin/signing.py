"""抖店 (Douyin shop) open-platform request signing and time formats.

Every call is ``POST {gateway}/{method with dots as slashes}`` with the system params
``app_key, method, v=2, timestamp, sign, sign_method, access_token`` in the query and
the business params as the JSON body, the same text that is signed as ``param_json``.

The canonical string (the platform's "签名算法" guide; checked against the source of the
PyPI ``doudian`` 0.6 SDK and of another public Python client, which build it the same way)::

    app_secret + "app_key" + app_key + "method" + method + "param_json" + param_json
               + "timestamp" + timestamp + "v" + "2" + app_secret

``sign`` is its lowercase hex MD5 (``sign_method=md5``), or the hex HMAC-SHA256 keyed
with the app secret over the same string (``hmac-sha256``). ``param_json`` is the JSON of
the business params with keys sorted (recursively) and no whitespace (``{"a":1,"b":"x"}``,
UTF-8, non-ASCII kept). ``timestamp`` is ``yyyy-MM-dd HH:mm:ss`` in GMT+8.

Assumed: that nested objects are sorted too (``json.dumps(sort_keys=True)``, as the
``doudian`` SDK does; our params are flat anyway); that non-ASCII text may be sent as
UTF-8 (that SDK escapes it as ``\\uXXXX``; the order search sends none); that the hex
digest's case does not matter (we send lowercase, as the public clients do).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

__all__ = [
    "DOUYIN_SIGN_METHODS",
    "SHANGHAI",
    "canonical_string",
    "format_douyin_time",
    "param_json",
    "sign_douyin",
]

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
DOUYIN_SIGN_METHODS: Final = ("md5", "hmac-sha256")
_TIME = "%Y-%m-%d %H:%M:%S"


def param_json(params: Mapping[str, object]) -> str:
    """The business params as the platform signs them: sorted keys, no whitespace."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_string(
    app_key: str, app_secret: str, method: str, params_json: str, timestamp: str
) -> str:
    """The secret-wrapped string that is signed (see the module docstring)."""
    return (
        f"{app_secret}app_key{app_key}method{method}param_json{params_json}"
        f"timestamp{timestamp}v2{app_secret}"
    )


def sign_douyin(
    app_key: str,
    app_secret: str,
    method: str,
    params_json: str,
    timestamp: str,
    sign_method: str = "md5",
) -> str:
    """The ``sign`` of a call (lowercase hex)."""
    text = canonical_string(app_key, app_secret, method, params_json, timestamp).encode()
    if sign_method == "md5":
        return hashlib.md5(text).hexdigest()  # noqa: S324 (the platform's choice of hash)
    if sign_method == "hmac-sha256":
        return hmac.new(app_secret.encode(), text, hashlib.sha256).hexdigest()
    raise ValueError(
        f"douyin: sign_method must be one of {', '.join(DOUYIN_SIGN_METHODS)}, got {sign_method!r}"
    )


def format_douyin_time(moment: datetime) -> str:
    """An aware time as the platform's GMT+8 wall clock (``timestamp`` param)."""
    if moment.tzinfo is None:
        raise ValueError(f"douyin: a time must be timezone-aware, got naive {moment}")
    return moment.astimezone(SHANGHAI).strftime(_TIME)


def parse_douyin_time(text: str) -> datetime:
    """``yyyy-MM-dd HH:mm:ss`` (GMT+8) as aware UTC."""
    return datetime.strptime(text, _TIME).replace(tzinfo=SHANGHAI).astimezone(UTC)
