"""Shared pieces of the channel adapters' after-sales feeds.

:class:`AfterSaleReader` reads one platform record field by field and collects every
problem (field, value, rule) before it raises one InvalidInput, the way the order mapping
does; :meth:`AfterSaleReader.build` validates the canonical
:class:`~ordercore.domain.after_sales.AfterSale`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from ordercore.domain.after_sales import AfterSale, after_sale_id, parse_after_sale
from ordercore.domain.channels import RawRecord
from ordercore.errors import FieldError, InvalidInput

__all__ = ["SHANGHAI", "AfterSaleReader"]

SHANGHAI = ZoneInfo("Asia/Shanghai")
E = TypeVar("E")
_MISSING = object()


class AfterSaleReader:
    """Reads a raw after-sale record; every bad field is reported at once by :meth:`build`."""

    def __init__(self, channel: str, record: RawRecord) -> None:
        self.channel = channel
        self.record = record
        self.data: Mapping[str, Any] = record.payload
        self.errors: list[FieldError] = []

    def raw(self, key: str, default: object = _MISSING) -> Any:
        """A top-level value (dotted keys walk nested objects); missing: an error or default."""
        value: Any = self.data
        for part in key.split("."):
            value = value.get(part, _MISSING) if isinstance(value, Mapping) else _MISSING
            if value is _MISSING:
                break
        if value is _MISSING or value is None:
            if default is _MISSING:
                self.errors.append(FieldError(key, "is required", None))
            return None if default is _MISSING else default
        return value

    def text(self, key: str, default: str | None = None) -> str:
        """A value as text ("" when missing and a default is given)."""
        value = self.raw(key, _MISSING if default is None else default)
        return "" if value is None else str(value).strip()

    def choose(self, key: str, table: Mapping[str, E], default: E | None = None) -> E | None:
        """The table's entry for a value (as text); unknown values are an error naming the
        choices."""
        value = self.raw(key, _MISSING if default is None else None)
        if value is None:
            return default
        found = table.get(str(value).strip())
        if found is None:
            self.errors.append(FieldError(key, f"not one of {sorted(table)}", value))
        return found

    def amount(self, key: str, *, unit: Decimal = Decimal(1), default: str = "0") -> Decimal:
        """A money amount (yuan text, or an integer in ``unit``: Decimal("0.01") for fen)."""
        value = self.raw(key, default)
        try:
            amount = Decimal(str(value)) * unit
        except InvalidOperation:
            self.errors.append(FieldError(key, "is not an amount", value))
            return Decimal(0)
        if amount < 0:
            self.errors.append(FieldError(key, "must be >= 0", value))
            return Decimal(0)
        return amount.quantize(Decimal("0.01"))

    def time(self, key: str, *, zone: ZoneInfo | None = None, default: object = _MISSING) -> Any:
        """A time: ``YYYY-MM-DD HH:MM:SS`` wall clock of ``zone``, ISO 8601, or epoch seconds."""
        value = self.raw(key, default)
        if value is None or isinstance(value, datetime):
            return value
        try:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return datetime.fromtimestamp(value, UTC)
            text = str(value).strip()
            if text.isdigit():
                return datetime.fromtimestamp(int(text), UTC)
            moment = datetime.fromisoformat(text)
        except (ValueError, OverflowError, OSError):
            self.errors.append(FieldError(key, "is not a time", value))
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone or UTC)
        return moment.astimezone(UTC)

    def lines(self, items: Iterable[tuple[str, object, object]]) -> list[dict[str, object]]:
        """(line id, sku, quantity) triples as line data; a bad quantity is an error."""
        lines: list[dict[str, object]] = []
        for index, (line_id, sku, quantity) in enumerate(items):
            try:
                units = int(str(quantity))
            except ValueError:
                units = 0
            if units <= 0 or not sku:
                self.errors.append(
                    FieldError(f"lines[{index}]", "needs a SKU and a quantity > 0", (sku, quantity))
                )
                continue
            lines.append({"sku": str(sku), "quantity": units, "external_line_id": str(line_id)})
        return lines

    def build(self, **fields: object) -> AfterSale:
        """The canonical request; raises InvalidInput listing every problem found."""
        if self.errors:
            raise InvalidInput(
                f"after-sale {self.record.external_id} of channel {self.channel!r}", self.errors
            )
        values: dict[str, object] = {
            "id": after_sale_id(self.channel, self.record.external_id),
            "channel": self.channel,
            "external_id": self.record.external_id,
            "source_modified_at": self.record.modified_at,
            "updated_at": self.record.modified_at,
            "created_at": self.record.modified_at,
        }
        values.update({key: value for key, value in fields.items() if value is not None})
        return parse_after_sale(values)
