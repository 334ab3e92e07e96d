"""What mapping a POS file produces: orders, rejected orders, row errors and row keys."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ordercore.domain.channels import MappedOrder
from ordercore.domain.orders import Order

__all__ = ["MappingResult", "PosOrder", "RejectedOrder", "RowError", "RowKey"]


@dataclass(frozen=True, slots=True)
class RowError:
    """One broken rule in one row: the line, the file's column name, its value, the rule."""

    line: int
    column: str
    value: str
    message: str
    order_no: str = ""

    def __str__(self) -> str:
        return f"line {self.line}, {self.column} {self.value!r}: {self.message}"


@dataclass(frozen=True, slots=True)
class RowKey:
    """Identifies one row of one import: order number, line, and a hash of its content.

    ``digest`` covers the mapped fields' normalised values (not unrecognised columns, not
    the column order), so the same row read from CSV or XLSX has the same digest.
    """

    order_no: str
    line: int
    digest: str


def _order_digest(keys: tuple[RowKey, ...]) -> str:
    return hashlib.sha256("\n".join(sorted(key.digest for key in keys)).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PosOrder:
    """An order mapped from its rows, with the rows' keys and what the mapping noticed."""

    order: Order
    row_keys: tuple[RowKey, ...]
    warnings: tuple[str, ...] = ()

    @property
    def order_no(self) -> str:
        """The POS order number (the order's external id)."""
        return self.order.external_id

    @property
    def lines(self) -> tuple[int, ...]:
        """The file lines this order came from."""
        return tuple(key.line for key in self.row_keys)

    @property
    def digest(self) -> str:
        """Hash of the order's row contents, independent of line numbers and row order:
        a corrected file changes it, the same order moved within a file does not."""
        return _order_digest(self.row_keys)

    def as_mapped(self) -> MappedOrder:
        """The order as the channel layer's :class:`MappedOrder`."""
        return MappedOrder(order=self.order, warnings=self.warnings)


@dataclass(frozen=True, slots=True)
class RejectedOrder:
    """An order left out because some of its rows are bad; ``errors`` lists them all."""

    order_no: str
    row_keys: tuple[RowKey, ...]
    errors: tuple[RowError, ...]

    @property
    def lines(self) -> tuple[int, ...]:
        """The file lines of this order, good and bad."""
        return tuple(key.line for key in self.row_keys)


@dataclass(frozen=True, slots=True)
class MappingResult:
    """What one file mapped to: good orders, rejected orders and rows with no order."""

    filename: str
    sha256: str
    channel: str
    orders: tuple[PosOrder, ...]
    rejected: tuple[RejectedOrder, ...]
    unassigned: tuple[RowError, ...] = ()
    """Errors of rows that name no usable order number."""
    ignored_columns: tuple[str, ...] = ()
    """Header columns the layout does not use."""

    @property
    def errors(self) -> tuple[RowError, ...]:
        """Every row error, by line."""
        found = [*self.unassigned, *(e for rejected in self.rejected for e in rejected.errors)]
        return tuple(sorted(found, key=lambda error: error.line))
