"""Channel config checks the gateway adapters share: every problem named at once, and a
secret never quoted back (it shows as ``<secret>``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Final

from ordercore.errors import FieldError, InvalidInput

__all__ = [
    "TOKEN_NUMBERS",
    "NumberSpec",
    "aware",
    "check_token_config",
    "number",
    "shown",
    "unknown_keys",
]

NumberSpec = tuple[float, float, float | None, bool]
"""``(default, low, high or None, whole)`` of a numeric setting."""

MAX_PAGE_SIZE: Final = 100
TOKEN_NUMBERS: Final[Mapping[str, NumberSpec]] = {
    "page_size": (MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE, True),
    "requests_per_second": (10.0, 0.001, None, False),
    "timeout": (15.0, 0.001, None, False),
    "attempts": (4, 1, 20, True),
    "max_ban_wait": (60.0, 0.0, None, False),
    "rate_limit_wait": (1.0, 0.0, None, False),
}
"""The numeric settings of an adapter over one access token (JD, Pinduoduo)."""


def shown(key: str, value: object, secret_keys: Collection[str]) -> object:
    """``value`` as an error may quote it: ``<secret>`` for a secret key."""
    return "<secret>" if key in secret_keys else value


def unknown_keys(config: Mapping[str, object], known: Collection[str]) -> list[FieldError]:
    """One error per key of ``config`` not in ``known``, listing the known ones."""
    listed = ", ".join(sorted(known))
    return [
        FieldError(key, f"unknown key (known: {listed})")
        for key in sorted(set(config) - set(known))
    ]


def number(raw: object) -> float | None:
    """``raw`` as a finite float, or None (a bool is not a number)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def aware(raw: object) -> datetime | None:
    """``raw`` (a datetime or ISO 8601 text) as an aware UTC time, or None if not aware."""
    try:
        moment = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


def check_token_config(
    platform: str,
    name: str,
    config: Mapping[str, object],
    *,
    required: Collection[str],
    secret_keys: Collection[str],
    known: Collection[str],
    extra: Callable[[Mapping[str, object]], list[FieldError]] | None = None,
) -> tuple[dict[str, float], datetime]:
    """The :data:`TOKEN_NUMBERS` values and the ``access_token_expires_at`` of a config.

    Raises InvalidInput naming every problem; ``extra`` adds a platform's own checks.
    """
    errors = unknown_keys(config, known)
    for key in required:
        value = config.get(key)
        if value in (None, ""):
            errors.append(FieldError(key, "is required"))
        elif not isinstance(value, str):
            errors.append(FieldError(key, "must be text", shown(key, value, secret_keys)))
    if extra is not None:
        errors.extend(extra(config))
    values: dict[str, float] = {}
    for key, (default, low, high, whole) in TOKEN_NUMBERS.items():
        raw = config.get(key, default)
        value = number(raw)
        if (
            value is None
            or value < low
            or (high is not None and value > high)
            or (whole and value != int(value))
        ):
            bounds = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
            errors.append(FieldError(key, f"must be a number {bounds}", raw))
            value = default
        values[key] = value
    expires = datetime.min.replace(tzinfo=UTC)
    raw_expiry = config.get("access_token_expires_at")
    if raw_expiry not in (None, ""):
        moment = aware(raw_expiry)
        if moment is None:
            errors.append(
                FieldError(
                    "access_token_expires_at", "must be a timezone-aware ISO 8601 time", raw_expiry
                )
            )
        else:
            expires = moment
    if errors:
        raise InvalidInput(f"{platform} channel {name!r} config", errors)
    return values, expires
