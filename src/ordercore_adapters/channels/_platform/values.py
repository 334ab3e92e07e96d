"""Converters the webhook-first channels share: decimal money in a currency, ISO 8601 times."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ordercore.domain.mapping import ConversionError, Converter, MappingContext

__all__ = ["decimal_money", "iso_time", "parse_iso"]


def parse_iso(text: str) -> datetime:
    """ISO 8601 text with a UTC offset (``Z`` or ``+08:00``) as an aware UTC time.

    A time without an offset is refused: local time is never guessed.
    """
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment.astimezone(UTC)


def iso_time(value: Any, context: MappingContext, target: str) -> datetime:
    """An ISO 8601 time with an offset -> UTC."""
    if not isinstance(value, str):
        raise ConversionError("must be an ISO 8601 time with a UTC offset")
    try:
        return parse_iso(value)
    except ValueError:
        raise ConversionError("must be an ISO 8601 time with a UTC offset") from None


def decimal_money(currency: str) -> Converter:
    """A decimal amount (text, or an int; never a float) in ``currency`` -> Money."""

    def convert(value: Any, context: MappingContext, target: str) -> dict[str, Any]:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ConversionError(f"must be a decimal amount in {currency} given as text")
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            raise ConversionError(f"must be a decimal amount in {currency}") from None
        if not amount.is_finite() or amount < 0:
            raise ConversionError(f"must be a decimal amount in {currency} >= 0")
        return {"amount": amount, "currency": currency}

    return convert
