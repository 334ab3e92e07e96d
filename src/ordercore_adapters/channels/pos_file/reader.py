"""Bytes of a POS export -> a :class:`PosFile`: format, encoding, hash, header and rows.

The format is decided by the content (an XLSX is a zip: ``PK\\x03\\x04``), never by the
name alone: POS software often names a CSV ``.xls``. Line numbers are the ones a person
sees: the physical line in a text editor for CSV (a quoted field with embedded newlines
spans several), the row number in Excel for XLSX; the header is line 1 in a plain file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from . import _csv, _xlsx
from .errors import PosFileError

__all__ = ["FileFormat", "PosFile", "PosRow", "read_pos_file"]

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class FileFormat(StrEnum):
    """What a POS file turned out to be."""

    CSV = "csv"
    XLSX = "xlsx"


class PosRow(NamedTuple):
    """One data row: the line it starts on and its cells by column name.

    Cells past the header's width appear only when they hold text, under
    ``column N`` (N counted from 1), so the mapping can flag a misaligned row.
    """

    line: int
    values: dict[str, str]


@dataclass(frozen=True, slots=True)
class PosFile:
    """A POS export read into rows; nothing interpreted yet (see :func:`map_rows`)."""

    filename: str
    format: FileFormat
    encoding: str | None
    """``utf-8-sig``, ``utf-8`` or ``gb18030`` for CSV; None for XLSX."""
    sha256: str
    """Hex SHA-256 of the file's bytes: the same file imported twice is a no-op."""
    header: tuple[str, ...]
    """The header cells as written (stripped); may repeat a name or be empty."""
    columns: tuple[str, ...]
    """Unique keys of the header cells, used in :attr:`PosRow.values` (``备注 (2)``)."""
    header_line: int
    rows: tuple[PosRow, ...]
    """Non-blank data rows in file order."""
    delimiter: str | None = None
    sheet: str | None = None


def read_pos_file(data: bytes, filename: str) -> PosFile:
    """Read a POS export (CSV or XLSX) into a :class:`PosFile`.

    Raises :class:`PosFileError` (an ``InvalidInput``) when the file as a whole cannot be
    read: empty, undecodable (:class:`UndecodableFile`, with the byte offset), malformed
    quoting, a legacy ``.xls`` workbook or a broken XLSX.
    """
    digest = hashlib.sha256(data).hexdigest()
    if data.startswith(_OLE_MAGIC):
        raise PosFileError(
            filename, "file", "legacy Excel 97-2003 workbook (.xls); save it as .xlsx or CSV"
        )
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    if data.startswith(_ZIP_MAGIC):
        file_format = FileFormat.XLSX
        sheet, records = _xlsx.parse(data, filename)
    else:
        file_format = FileFormat.CSV
        text, encoding = _csv.decode(data, filename)
        delimiter = _csv.sniff_delimiter(text)
        records = _csv.parse(text, filename, delimiter)
    filled = [(line, cells) for line, cells in records if any(cell.strip() for cell in cells)]
    if not filled:
        raise PosFileError(filename, "file", "the file is empty: no header and no rows")
    header_line, header_cells = filled[0]
    header = tuple(cell.replace("\ufeff", "").strip() for cell in header_cells)
    width = len(header)
    keys = column_keys(header, max(len(cells) for _, cells in filled))
    rows = tuple(
        PosRow(
            line,
            {keys[index]: cell for index, cell in enumerate(cells) if index < width or cell.strip()}
            | dict.fromkeys(keys[len(cells) : width], ""),
        )
        for line, cells in filled[1:]
    )
    return PosFile(
        filename=filename,
        format=file_format,
        encoding=encoding,
        sha256=digest,
        header=header,
        columns=tuple(keys[:width]),
        header_line=header_line,
        rows=rows,
        delimiter=delimiter,
        sheet=sheet,
    )


def column_keys(header: Sequence[str], width: int) -> list[str]:
    """Unique keys for ``width`` columns: the header name, ``column N`` where it has none,
    and `` (2)``, `` (3)``... on repeats. Keys of header columns do not depend on ``width``.
    """
    keys: list[str] = []
    seen: set[str] = set()
    for index in range(max(width, len(header))):
        base = header[index] if index < len(header) and header[index] else f"column {index + 1}"
        key, repeat = base, 2
        while key in seen:
            key, repeat = f"{base} ({repeat})", repeat + 1
        seen.add(key)
        keys.append(key)
    return keys
