"""Cell text -> typed values. Each parser raises ValueError with a message naming the rule."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation

MAX_QUANTITY = 1_000_000
"""Largest quantity one POS line may carry."""
MAX_PRICE = Decimal(100_000_000)
"""Largest unit price in yuan."""
_FEN = Decimal("0.01")

_SCIENTIFIC = re.compile(r"[0-9](?:\.[0-9]+)?E\+[0-9]+", re.ASCII | re.IGNORECASE)
_MONEY_NOISE = re.compile(r"[\s,¥元]|^RMB|^CNY", re.IGNORECASE)
_DATE = r"(?P<y>[0-9]{4})\s*[-/.年]\s*(?P<m>[0-9]{1,2})\s*[-/.月]\s*(?P<d>[0-9]{1,2})\s*日?"
_CLOCK = (
    r"\s*T?\s*(?P<H>[0-9]{1,2})\s*[:时]\s*(?P<M>[0-9]{1,2})"
    r"(?:\s*[:分]\s*(?P<S>[0-9]{1,2})(?:\.(?P<f>[0-9]{1,6}))?\s*秒?)?"
)
_OFFSET = r"\s*(?P<z>Z|[+-][0-9]{2}:?[0-9]{2})?"
_TIME = re.compile(_DATE + _CLOCK + _OFFSET, re.ASCII | re.IGNORECASE)
_COMPACT = re.compile(
    r"(?P<y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})\s*T?\s*(?P<H>[0-9]{2})(?P<M>[0-9]{2})"
    r"(?P<S>[0-9]{2})?",
    re.ASCII,
)
_DATE_ONLY = re.compile(_DATE, re.ASCII)
_MOBILE = re.compile(r"1[3-9][0-9]{9}", re.ASCII)


def clean(text: str) -> str:
    """NFKC-normalised and stripped: full-width digits and colons become ASCII."""
    return unicodedata.normalize("NFKC", text).strip()


def identifier(text: str, what: str) -> str:
    """An order number or SKU: stripped, non-empty, not mangled by Excel into ``1.23E+12``."""
    value = text.strip()
    if not value:
        raise ValueError(f"missing {what}")
    if _SCIENTIFIC.fullmatch(value):
        raise ValueError(
            f"{what} is in scientific notation, its digits are lost: "
            "format the column as text before saving"
        )
    return value


def quantity(text: str) -> int:
    """A whole number from 1 to MAX_QUANTITY; ``2``, ``2.0`` and ``２`` are all 2."""
    number = _decimal(clean(text), "quantity")
    if number <= 0:
        rule = "returns are not imported as orders" if number < 0 else "must be at least 1"
        raise ValueError(f"quantity must be positive ({rule})")
    if number > MAX_QUANTITY:
        raise ValueError(f"quantity is above {MAX_QUANTITY}")
    if number != number.to_integral_value():
        raise ValueError("quantity must be a whole number")
    return int(number)


def price(text: str) -> Decimal:
    """Yuan as Decimal to the fen: ``¥1,299`` reads 1299.00; 0 to MAX_PRICE, 2 decimals at most."""
    number = _decimal(_MONEY_NOISE.sub("", clean(text)), "price")
    if number < 0:
        raise ValueError("price must not be negative")
    if number > MAX_PRICE:
        raise ValueError(f"price is above {MAX_PRICE} yuan")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError("price has more than 2 decimal places (fen)")
    return number.quantize(_FEN)


def local_time(text: str, zone: tzinfo) -> datetime:
    """A wall-clock time in ``zone`` (or with its own offset) as an aware UTC datetime.

    Reads ``2024-05-01 09:30[:00[.123]]``, ``2024/5/1 9:30``, ``2024年5月1日 9时30分``,
    ``2024-05-01T09:30:00+08:00`` and ``20240501093000``. An ambiguous local time (a
    daylight-saving fall-back) takes the earlier instant.
    """
    value = clean(text)
    match = _TIME.fullmatch(value) or _COMPACT.fullmatch(value)
    if match is None:
        if _DATE_ONLY.fullmatch(value):
            raise ValueError("time has a date but no time of day")
        raise ValueError("unparsable time: expected e.g. 2024-05-01 09:30:00")
    parts = match.groupdict()
    year = int(parts["y"])
    if not 1970 <= year <= 2999:
        raise ValueError(f"time has an implausible year {year}")
    offset = parts.get("z")
    moment_zone = zone if not offset else _fixed_offset(offset)
    try:
        moment = datetime(
            year,
            int(parts["m"]),
            int(parts["d"]),
            int(parts["H"]),
            int(parts["M"]),
            int(parts["S"] or 0),
            int((parts.get("f") or "0").ljust(6, "0")),
            tzinfo=moment_zone,
        )
    except ValueError as exc:
        raise ValueError(f"not a valid date and time ({exc})") from None
    return moment.astimezone(UTC)


def phone(text: str) -> tuple[str, bool, bool]:
    """(normalised phone, masked, looks like a mainland mobile number).

    Spaces and dashes go, a ``+86``/``86`` prefix goes; ``138****8000`` is masked.
    """
    value = re.sub(r"[\s\-()]", "", clean(text))
    if value.startswith("+86"):
        value = value[3:]
    elif value.startswith("86") and len(value) == 13:
        value = value[2:]
    masked = "*" in value
    return value, masked, masked or bool(_MOBILE.fullmatch(value))


def _decimal(text: str, what: str) -> Decimal:
    if not text:
        raise ValueError(f"missing {what}")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{what} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{what} is not a finite number")
    return number


def _fixed_offset(text: str) -> tzinfo:
    if text.upper() == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise ValueError(f"time has an impossible UTC offset {text}")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))
