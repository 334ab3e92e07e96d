"""TOP request signing, and TOP's wall-clock time format.

Public (TOP's "API调用方法详解"): every request carries ``sign``, computed over all other
request parameters, system and business alike. Sort them by name (byte order), drop
``sign`` and empty values, and concatenate each name with its value (``key1value1key2
value2...``, UTF-8). Then, by ``sign_method``:

* ``md5``: MD5 of ``secret + concatenation + secret``;
* ``hmac``: HMAC-MD5 keyed with the secret over the concatenation (no wrapping);
* ``hmac-sha256``: HMAC-SHA256 keyed with the secret over the concatenation.

The digest is sent as uppercase hex. TOP's worked example (app_key ``12345678``, secret
``helloworld``, method ``taobao.item.seller.get`` ...) signs to
``66987CB115214E59E6EC978214934FB8``; the tests check it, and check the md5 and hmac
methods against two SDKs from PyPI.

TOP speaks Asia/Shanghai wall-clock time, to the second (``2026-11-11 08:00:00``), in the
``timestamp`` parameter, the increment API's bounds and every time in a response.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final, Literal, get_args
from zoneinfo import ZoneInfo

__all__ = [
    "SHANGHAI",
    "SIGN_METHODS",
    "SignMethod",
    "format_top_time",
    "parse_top_time",
    "sign_top",
    "signing_string",
]

SignMethod = Literal["md5", "hmac", "hmac-sha256"]
SIGN_METHODS: Final[tuple[str, ...]] = get_args(SignMethod)
SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
_TOP_TIME = "%Y-%m-%d %H:%M:%S"


def _is_empty(value: object) -> bool:
    return value is None or value == ""


def signing_string(params: Mapping[str, object]) -> str:
    """``key1value1key2value2...`` over the sorted non-empty params, ``sign`` excluded."""
    return "".join(
        f"{key}{params[key]}"
        for key in sorted(params)
        if key != "sign" and not _is_empty(params[key])
    )


def sign_top(params: Mapping[str, object], secret: str, sign_method: str) -> str:
    """The ``sign`` value of a request (uppercase hex) for ``sign_method``."""
    body = signing_string(params).encode()
    key = secret.encode()
    if sign_method == "md5":
        # MD5 is TOP's choice of hash, not ours.
        digest = hashlib.md5(key + body + key).hexdigest()  # noqa: S324
    elif sign_method == "hmac":
        digest = hmac.new(key, body, hashlib.md5).hexdigest()
    elif sign_method == "hmac-sha256":
        digest = hmac.new(key, body, hashlib.sha256).hexdigest()
    else:
        raise ValueError(
            f"taobao: sign_method must be one of {', '.join(SIGN_METHODS)}, got {sign_method!r}"
        )
    return digest.upper()


def format_top_time(moment: datetime) -> str:
    """An aware time as TOP's Asia/Shanghai wall clock (sub-second part dropped)."""
    if moment.tzinfo is None:
        raise ValueError(f"taobao: a time must be timezone-aware, got naive {moment}")
    return moment.astimezone(SHANGHAI).strftime(_TOP_TIME)


def parse_top_time(text: str) -> datetime:
    """TOP's ``yyyy-MM-dd HH:mm:ss`` (Asia/Shanghai) as an aware UTC time."""
    try:
        local = datetime.strptime(text.strip(), _TOP_TIME)
    except ValueError:
        raise ValueError(f"taobao: not a TOP time like 2026-11-11 08:00:00: {text!r}") from None
    return local.replace(tzinfo=SHANGHAI).astimezone(UTC)
