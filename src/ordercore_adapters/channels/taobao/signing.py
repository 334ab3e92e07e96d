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
from typing import Final, Literal, get_args

from .._platform.signing import md5_sign, signing_string
from .._platform.times import SHANGHAI, format_top_time, parse_top_time

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


def sign_top(params: Mapping[str, object], secret: str, sign_method: str) -> str:
    """The ``sign`` value of a request (uppercase hex) for ``sign_method``."""
    if sign_method == "md5":
        return md5_sign(params, secret)
    body = signing_string(params).encode()
    key = secret.encode()
    if sign_method == "hmac":
        digest = hmac.new(key, body, hashlib.md5).hexdigest()
    elif sign_method == "hmac-sha256":
        digest = hmac.new(key, body, hashlib.sha256).hexdigest()
    else:
        raise ValueError(
            f"taobao: sign_method must be one of {', '.join(SIGN_METHODS)}, got {sign_method!r}"
        )
    return digest.upper()
