"""Checks of a receiver's phone, name and address on Chinese orders (pure, no I/O).

Shared by the exception rules; :mod:`ordercore.domain.health` keeps its own scoring.
Phones are judged with the ``phonenumbers`` library (CN mobile and landline numbering
plans), with a fast path for the bare 11-digit mobile that most orders carry.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from enum import StrEnum

import phonenumbers

from ordercore.domain.orders import Address

__all__ = [
    "PhoneKind",
    "classify_phone",
    "found_words",
    "has_house_number",
    "is_placeholder_name",
    "is_placeholder_phone",
    "missing_regions",
    "normalise_phone",
]


class PhoneKind(StrEnum):
    """What a receiver phone is, for delivery purposes."""

    MOBILE = "mobile"
    VIRTUAL = "virtual"
    """A platform privacy number: a mobile plus an extension (``17012345678-3456``)."""
    LANDLINE = "landline"
    INVALID = "invalid"
    SERVICE = "service"
    """A valid number that is not a person's line (400/800 hotlines, short codes)."""


_SEPARATORS = re.compile(r"[\s\-()（）]+")
_BARE_MOBILE = re.compile(r"1\d{10}")
_LANDLINE_DIGITS = re.compile(r"0\d{9,11}")
_COUNTRY = re.compile(r"^(?:\+|00)?86(?=1\d{10}$|0?\d{9,11}$)")
_EXTENSION = re.compile(r"^(.+?)\s*(?:转|ext\.?|[-#,，])\s*(\d{1,6})$", re.IGNORECASE)

_PERSONAL_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE: PhoneKind.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE: PhoneKind.LANDLINE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: PhoneKind.LANDLINE,
}


def normalise_phone(phone: str) -> str:
    """The phone without spaces, dashes, brackets and a +86/0086 prefix."""
    compact = _SEPARATORS.sub("", phone.strip())
    return _COUNTRY.sub("", compact)


def _split_extension(phone: str) -> tuple[str, str]:
    """(number, extension): an extension only follows a complete mobile or landline."""
    match = _EXTENSION.match(phone.strip())
    if match:
        head = normalise_phone(match.group(1))
        if _BARE_MOBILE.fullmatch(head) or _LANDLINE_DIGITS.fullmatch(head):
            return head, match.group(2)
    return normalise_phone(phone), ""


def classify_phone(phone: str) -> PhoneKind:
    """Mobile, virtual (mobile + extension), landline (with area code), service or invalid."""
    compact, extension = _split_extension(phone)
    if not compact:
        return PhoneKind.INVALID
    if _BARE_MOBILE.fullmatch(compact):
        kind = _mobile_kind(compact)
        return PhoneKind.VIRTUAL if extension and kind is PhoneKind.MOBILE else kind
    if not compact.isdigit():
        return PhoneKind.INVALID
    try:
        parsed = phonenumbers.parse(compact, "CN")
    except phonenumbers.NumberParseException:
        return PhoneKind.INVALID
    return _kind_of(parsed)


def _mobile_kind(digits: str) -> PhoneKind:
    # Building the PhoneNumber directly skips phonenumbers' text parsing (about 3x
    # cheaper); its validity rules (assigned prefixes) still decide.
    return _kind_of(phonenumbers.PhoneNumber(country_code=86, national_number=int(digits)))


def _kind_of(parsed: phonenumbers.PhoneNumber) -> PhoneKind:
    # number_type is UNKNOWN for a number no CN plan matches: the same test that
    # is_valid_number makes for a CN number, done once instead of twice.
    if parsed.country_code != 86:
        return PhoneKind.INVALID
    kind = phonenumbers.number_type(parsed)
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        return PhoneKind.INVALID
    return _PERSONAL_TYPES.get(kind, PhoneKind.SERVICE)


_RUNS = ("0123456789", "9876543210")


def is_placeholder_phone(phone: str, known: Collection[str] = ()) -> bool:
    """True for mobile numbers people type when they do not want to give one.

    One digit repeated over the last eight (13800000000, 13888888888), an ascending or
    descending run over the last eight (13812345678), or one of ``known`` (13800138000,
    the number of every phone-number tutorial).
    """
    compact = _split_extension(phone)[0]
    if compact in known:
        return True
    if not _BARE_MOBILE.fullmatch(compact):
        return False  # landlines like 88888888 are sought-after real numbers
    tail = compact[-8:]
    if len(set(tail)) == 1:
        return True
    return any(tail in run for run in _RUNS)


def is_placeholder_name(name: str, placeholders: Collection[str]) -> bool:
    """True for an empty name, one of ``placeholders``, digits only or one repeated symbol."""
    stripped = name.strip()
    if not stripped:
        return True
    lowered = stripped.lower()
    if lowered in placeholders:
        return True
    if stripped.isdigit():
        return True
    return len(stripped) > 1 and len(set(stripped)) == 1


def found_words(text: str, words: Iterable[str]) -> list[str]:
    """The words of ``words`` that occur in ``text``, in the given order."""
    return [word for word in words if word in text]


_NUMERAL = r"[0-9０-９一二三四五六七八九十百零〇两]"
_HOUSE_NUMBER = re.compile(
    rf"{_NUMERAL}+\s*(?:号|栋|幢|座|单元|室|楼|层|弄|组|队|社|排|户|巷|栋楼|号楼|号院|门|区)"
    r"|\d{3,}|[A-Za-z]\s*\d+|\d+\s*[-#－]\s*\d+"
)


def has_house_number(text: str) -> bool:
    """True when ``text`` names a house, building, room or (rural) group number."""
    return _HOUSE_NUMBER.search(text) is not None


def missing_regions(
    address: Address, *, municipalities: Iterable[str], without_districts: Collection[str]
) -> list[str]:
    """Which of province, city and district an address lacks.

    A municipality (北京, 上海, 天津, 重庆) may leave the city empty; cities without
    districts (东莞市, 中山市, ...) may leave the district empty.
    """
    missing: list[str] = []
    province = address.province
    if not province:
        missing.append("province")
    city = address.city
    if not city and not (province and any(province.startswith(m) for m in municipalities)):
        missing.append("city")
    if not address.district and not (city and city in without_districts):
        missing.append("district")
    return missing
