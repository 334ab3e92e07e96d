"""XLSX through openpyxl: first sheet, read-only, every cell as text."""

from __future__ import annotations

import io
import math
import warnings
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from openpyxl import load_workbook

from .errors import PosFileError


def cell_text(value: object) -> str:
    """A cell value as the text a person sees: whole numbers without ``.0``, ISO dates.

    Floats are cut to Excel's 15 significant digits, so ``19.899999999999999`` reads
    ``19.9`` and a 13-digit barcode stored as a number keeps every digit.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return format(Decimal(f"{value:.15g}"), "f")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


def parse(data: bytes, filename: str) -> tuple[str, list[tuple[int, list[str]]]]:
    """(sheet title, rows of the first sheet with their Excel row numbers).

    Any failure inside openpyxl (a broken zip, a missing part, bad XML) becomes a
    :class:`PosFileError`: the workbook is a foreign input and its parser has no single
    error type. Its style warnings (common in files written by POS software) are muted.
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
            workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            try:
                if not workbook.worksheets:
                    raise PosFileError(filename, "xlsx", "the workbook has no worksheet")
                sheet = workbook.worksheets[0]
                sheet.reset_dimensions()  # do not trust the file's declared size
                rows = [
                    (number, [cell_text(value) for value in values])
                    for number, values in enumerate(sheet.iter_rows(values_only=True), start=1)
                ]
                return str(sheet.title), rows
            finally:
                workbook.close()
    except PosFileError:
        raise
    except Exception as exc:
        raise PosFileError(
            filename, "xlsx", f"unreadable XLSX workbook: {type(exc).__name__}: {exc}"
        ) from exc
