"""The rejects report: one CSV line per row error, for the shop to fix and re-export."""

from __future__ import annotations

import csv
import io
import re

from .result import MappingResult

__all__ = ["REPORT_HEADER", "rejects_csv"]

REPORT_HEADER = ("line", "order_no", "column", "value", "message")
"""The report's header row."""

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def rejects_csv(result: MappingResult) -> str:
    """The row errors of ``result`` as CSV text that starts with a BOM (``\\ufeff``).

    Encode it as UTF-8 (``text.encode("utf-8")``) and Excel on a Chinese Windows opens
    it without mojibake. One line per error, by line number; a row with two broken rules
    has two lines. Values that Excel would run as a formula get a leading ``'``.
    """
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(REPORT_HEADER)
    for error in result.errors:
        writer.writerow(
            (
                error.line,
                _defuse(error.order_no),
                _defuse(error.column),
                _defuse(error.value),
                error.message,
            )
        )
    return buffer.getvalue()


def _defuse(text: str) -> str:
    """Neutralise spreadsheet formula injection, but keep plain numbers such as ``-1``."""
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text
