"""One row parsed on its own, then the rows of one order checked together and built."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import Decimal

from ordercore.domain.orders import Order, OrderStatus, parse_order
from ordercore.errors import InvalidOrder

from . import _values
from .layout import ORDER_LEVEL, PosField
from .reader import PosRow
from .result import PosOrder, RejectedOrder, RowError, RowKey


@dataclass(slots=True)
class Row:
    """One data row: its cells per field, what parsed, and what did not."""

    line: int
    order_no: str
    text: dict[PosField, str]
    """Stripped cell text per mapped field."""
    canonical: dict[PosField, str] = field(default_factory=dict)
    created_at: datetime | None = None
    quantity: int | None = None
    price: Decimal | None = None
    errors: list[RowError] = field(default_factory=list)

    def key(self) -> RowKey:
        """The row key: canonical values where they parsed, the cell text otherwise."""
        content = {str(f): self.canonical.get(f, text) for f, text in self.text.items()}
        blob = json.dumps(content, ensure_ascii=False, sort_keys=True).encode()
        return RowKey(self.order_no, self.line, hashlib.sha256(blob).hexdigest())


def parse_row(
    pos_row: PosRow, columns: dict[PosField, str], position: dict[str, int], zone: tzinfo
) -> Row:
    """Parse one row on its own; order-level agreement is checked by build_order."""
    text = {f: pos_row.values.get(key, "").strip() for f, key in columns.items()}
    row = Row(pos_row.line, "", text)

    def fail(pos_field: PosField | str, message: str) -> None:
        column = columns[pos_field] if isinstance(pos_field, PosField) else pos_field
        value = text[pos_field] if isinstance(pos_field, PosField) else pos_row.values[column]
        row.errors.append(RowError(row.line, column, value, message))

    try:
        row.order_no = _values.identifier(text[PosField.ORDER_NO], "order number")
    except ValueError as exc:
        fail(PosField.ORDER_NO, str(exc))
    for key, value in pos_row.values.items():
        if key not in position and value.strip():
            fail(key, f"cell beyond the header's {len(position)} columns: the row is misaligned")
    try:
        row.canonical[PosField.SKU] = _values.identifier(text[PosField.SKU], "SKU")
    except ValueError as exc:
        fail(PosField.SKU, str(exc))
    try:
        row.quantity = _values.quantity(text[PosField.QUANTITY])
        row.canonical[PosField.QUANTITY] = str(row.quantity)
    except ValueError as exc:
        fail(PosField.QUANTITY, str(exc))
    try:
        row.price = _values.price(text[PosField.UNIT_PRICE])
        row.canonical[PosField.UNIT_PRICE] = f"{row.price.normalize():f}"
    except ValueError as exc:
        fail(PosField.UNIT_PRICE, str(exc))
    if text[PosField.CREATED_AT]:
        try:
            row.created_at = _values.local_time(text[PosField.CREATED_AT], zone)
            row.canonical[PosField.CREATED_AT] = row.created_at.isoformat()
        except ValueError as exc:
            fail(PosField.CREATED_AT, str(exc))
    if PosField.PHONE in text:
        row.canonical[PosField.PHONE] = _values.phone(text[PosField.PHONE])[0]
    row.errors = [
        RowError(e.line, e.column, e.value, e.message, row.order_no)
        for e in sorted(row.errors, key=lambda e: position.get(e.column, len(position)))
    ]
    return row


def build_order(
    order_no: str, rows: list[Row], columns: dict[PosField, str], channel: str
) -> PosOrder | RejectedOrder:
    """The order of ``rows`` (one order number), or its rejection with every row error."""
    errors = [error for row in rows for error in row.errors]
    first: dict[PosField, Row] = {}
    for pos_field in ORDER_LEVEL:
        if pos_field not in columns:
            continue
        for row in rows:
            value = _comparable(row, pos_field)
            if not value:
                continue
            if pos_field not in first:
                first[pos_field] = row
            elif value != _comparable(first[pos_field], pos_field):
                origin = first[pos_field]
                errors.append(
                    RowError(
                        row.line,
                        columns[pos_field],
                        row.text[pos_field],
                        f"differs from line {origin.line} of the same order "
                        f"({origin.text[pos_field]!r}); all lines of an order share it",
                        order_no,
                    )
                )
    if not any(row.text[PosField.CREATED_AT] for row in rows):
        errors.append(
            RowError(rows[0].line, columns[PosField.CREATED_AT], "", "missing time", order_no)
        )
    keys = tuple(row.key() for row in rows)
    if errors:
        return RejectedOrder(order_no, keys, tuple(sorted(errors, key=lambda e: e.line)))
    order, warnings = _order(order_no, rows, first, channel)
    if isinstance(order, InvalidOrder):
        found = (
            RowError(rows[0].line, e.field, str(e.value), e.message, order_no) for e in order.errors
        )
        return RejectedOrder(order_no, keys, tuple(found))
    return PosOrder(order, keys, warnings)


def _comparable(row: Row, pos_field: PosField) -> str:
    if pos_field is PosField.CREATED_AT:
        return row.canonical.get(pos_field, "")
    return row.canonical.get(pos_field, row.text[pos_field])


def _order(
    order_no: str, rows: list[Row], first: dict[PosField, Row], channel: str
) -> tuple[Order | InvalidOrder, tuple[str, ...]]:
    def header(pos_field: PosField) -> str:
        row = first.get(pos_field)
        return row.text[pos_field] if row else ""

    created_at = first[PosField.CREATED_AT].created_at
    warnings: list[str] = []
    phone, masked = "", False
    if header(PosField.PHONE):
        phone, masked, plausible = _values.phone(header(PosField.PHONE))
        if not plausible:
            line = first[PosField.PHONE].line
            warnings.append(f"line {line}: phone is not an 11-digit mainland mobile number")
    remarks = dict.fromkeys(
        row.text[PosField.REMARK] for row in rows if row.text.get(PosField.REMARK)
    )
    data = {
        "id": f"{channel}:{order_no}",
        "channel": channel,
        "external_id": order_no,
        "buyer_id": header(PosField.MEMBER_ID),
        "status": OrderStatus.PAID,
        "lines": [
            {
                "sku": row.canonical[PosField.SKU],
                "quantity": row.quantity,
                "unit_price": {"amount": row.price},
                "title": row.text.get(PosField.TITLE, ""),
                "warehouse": header(PosField.STORE),
            }
            for row in rows
        ],
        "receiver": {"name": header(PosField.NAME), "phone": phone, "masked": masked},
        "remark": "; ".join(remarks),
        "created_at": created_at,
        "updated_at": created_at,
    }
    try:
        return parse_order(data), tuple(warnings)
    except InvalidOrder as exc:
        return exc, ()
