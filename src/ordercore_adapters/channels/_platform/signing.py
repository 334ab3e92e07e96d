"""The md5 request signature TOP, JOS and Pinduoduo share.

Sort the parameters by name (byte order), drop ``sign`` and empty values, concatenate each
name with its value (``key1value1key2value2...``, UTF-8), and send the uppercase hex MD5
of ``secret + concatenation + secret``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

__all__ = ["md5_sign", "signing_string"]


def _is_empty(value: object) -> bool:
    return value is None or value == ""


def signing_string(params: Mapping[str, object]) -> str:
    """``key1value1key2value2...`` over the sorted non-empty params, ``sign`` excluded."""
    return "".join(
        f"{key}{params[key]}"
        for key in sorted(params)
        if key != "sign" and not _is_empty(params[key])
    )


def md5_sign(params: Mapping[str, object], secret: str) -> str:
    """``MD5(secret + signing_string + secret)`` in uppercase hex."""
    key = secret.encode()
    # MD5 is the platforms' choice of hash, not ours.
    return hashlib.md5(key + signing_string(params).encode() + key).hexdigest().upper()  # noqa: S324
