"""Rows of a :class:`PosFile` -> canonical orders, with per-row errors and row keys.

Rows sharing an order number form one order. A row that breaks a rule yields a
:class:`RowError` with its line number; an order with any bad row is rejected whole
(:class:`RejectedOrder`, carrying every error of its rows) while the other orders map.
Only a wholly bad file (see :meth:`ColumnLayout.resolve`) raises.

POS orders are paid at the till: they map with status ``paid``, the store as every
line's warehouse, and ``updated_at`` equal to ``created_at``. Times in the file are
wall-clock in the shop's zone and are stored in UTC.
"""

from __future__ import annotations

from datetime import tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ordercore.errors import FieldError, InvalidInput

from ._rows import Row, build_order, parse_row
from .layout import DEFAULT_LAYOUT, ColumnLayout
from .reader import PosFile
from .result import MappingResult, PosOrder, RejectedOrder, RowError

__all__ = ["map_rows"]


def map_rows(
    pos_file: PosFile,
    *,
    channel: str = "pos",
    tz: str = "Asia/Shanghai",
    layout: ColumnLayout = DEFAULT_LAYOUT,
) -> MappingResult:
    """Map the rows of ``pos_file`` to orders with ids ``"{channel}:{order_no}"``.

    Raises :class:`PosFileError` when the layout cannot use the file's header (nothing
    maps), and ``InvalidInput`` for an unknown ``tz``; every other problem is a
    :class:`RowError` on the order it belongs to, or in ``unassigned``.
    """
    zone = _zone(tz)
    columns = layout.resolve(pos_file)
    position = {name: index for index, name in enumerate(pos_file.columns)}
    groups: dict[str, list[Row]] = {}
    unassigned: list[RowError] = []
    for pos_row in pos_file.rows:
        row = parse_row(pos_row, columns, position, zone)
        if row.order_no:
            groups.setdefault(row.order_no, []).append(row)
        else:
            unassigned.extend(row.errors)
    orders: list[PosOrder] = []
    rejected: list[RejectedOrder] = []
    for order_no, rows in groups.items():
        built = build_order(order_no, rows, columns, channel)
        if isinstance(built, PosOrder):
            orders.append(built)
        else:
            rejected.append(built)
    used = set(columns.values())
    return MappingResult(
        filename=pos_file.filename,
        sha256=pos_file.sha256,
        channel=channel,
        orders=tuple(orders),
        rejected=tuple(rejected),
        unassigned=tuple(unassigned),
        ignored_columns=tuple(name for name in pos_file.columns if name not in used),
    )


def _zone(tz: str) -> tzinfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            "POS mapping options", [FieldError("tz", "not a known IANA time zone", tz)]
        ) from None
