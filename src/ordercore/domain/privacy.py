"""Masking of customer data for logs, telemetry, errors and the sync ledger.

Names, phones and addresses never leave ordercore's records unmasked. Anything that
formats a message about an order for people or machines other than the order store
passes it through :func:`mask_text` (free text) or :func:`mask_value` (a field's value).
"""

from __future__ import annotations

import re

__all__ = ["PII_FIELD_HINTS", "is_personal_field", "mask_text", "mask_value"]

PII_FIELD_HINTS = (
    "name",
    "phone",
    "mobile",
    "tel",
    "address",
    "receiver",
    "email",
    "detail",
    "street",
    "id_card",
)
"""Field names containing one of these hold personal data."""

_MOBILE = re.compile(r"(?<!\d)(\+?86[- ]?)?(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})[- ]?(\d{3,4})(\d{4})(?!\d)")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(@[A-Za-z0-9.-]+)")
_FIELD_VALUE = re.compile(r"([\w.\[\]]+): ([^;:]*?)\(got ('[^']*'|\"[^\"]*\")\)")


def is_personal_field(field: str) -> bool:
    """True when a field's name says it holds a name, phone, address or the like."""
    lowered = field.lower()
    return any(hint in lowered for hint in PII_FIELD_HINTS)


def mask_value(value: object) -> str:
    """A personal value with all but its edges hidden: 张三 -> 张*, 13800138000 -> 138****8000."""
    text = str(value)
    if _MOBILE.fullmatch(text):
        return _MOBILE.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}****{m.group(4)}", text)
    if len(text) <= 1:
        return "*" * len(text)
    if len(text) <= 3:
        return text[0] + "*" * (len(text) - 1)
    return text[:2] + "*" * (len(text) - 3) + text[-1]


def mask_text(text: str, *, personal_fields: bool = True) -> str:
    """Hide phone numbers and e-mail addresses anywhere in ``text``.

    With ``personal_fields``, a FieldError rendering ``receiver.phone: ... (got 'x')`` also
    has the quoted value masked when its field name is personal.
    """
    masked = _MOBILE.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}****{m.group(4)}", text)
    masked = _LANDLINE.sub(lambda m: f"{m.group(1)}-****{m.group(3)}", masked)
    masked = _EMAIL.sub(lambda m: f"{m.group(1)}***{m.group(2)}", masked)
    if personal_fields:
        masked = _FIELD_VALUE.sub(_mask_field_value, masked)
    return masked


def _mask_field_value(match: re.Match[str]) -> str:
    field, middle, quoted = match.group(1), match.group(2), match.group(3)
    if not is_personal_field(field):
        return match.group(0)
    return f"{field}: {middle}(got '{mask_value(quoted[1:-1])}')"
