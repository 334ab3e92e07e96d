"""CSV text: encoding detection by strict decoding, delimiter sniffing, physical line numbers."""

from __future__ import annotations

import codecs
import csv
import io

from .errors import PosFileError, UndecodableFile

DELIMITERS = (",", "\t", ";")
"""Candidate delimiters, in the order that breaks ties."""

_SNIPPET = 8


def decode(data: bytes, filename: str) -> tuple[str, str]:
    """Return (text, encoding): UTF-8 with BOM, else UTF-8, else GB18030, by strict decoding.

    A UTF-8 BOM commits the file to UTF-8: a later bad byte is an error, not a reason to
    guess another encoding. Raises :class:`UndecodableFile` naming the failing byte offset.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise PosFileError(
            filename, "encoding", "UTF-16 text is not supported; save the file as CSV UTF-8"
        )
    if data.startswith(codecs.BOM_UTF8):
        skip = len(codecs.BOM_UTF8)
        try:
            return data[skip:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            at = exc.start + skip
            raise UndecodableFile(filename, {"utf-8-sig": at}, data[at : at + _SNIPPET]) from None
    offsets: dict[str, int] = {}
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            offsets[encoding] = exc.start
    at = max(offsets.values())
    raise UndecodableFile(filename, offsets, data[at : at + _SNIPPET])


def sniff_delimiter(text: str) -> str:
    """The candidate delimiter seen most often outside quotes on the first non-blank line."""
    first = next((line for line in io.StringIO(text, newline="") if line.strip()), "")
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in first:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda candidate: counts[candidate])
    return best if counts[best] else ","


def parse(text: str, filename: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """Every record with the physical line it starts on (1-based), blank records included.

    Quoting is strict: an unclosed quote would otherwise swallow the rest of the file into
    one field, so it fails the whole file with its line number instead.
    """
    if "\x00" in text:
        raise PosFileError(
            filename, "file", f"NUL at character {text.index(chr(0))}: not a CSV text file"
        )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records: list[tuple[int, list[str]]] = []
    previous_end = 0
    try:
        for cells in reader:
            records.append((previous_end + 1, cells))
            previous_end = reader.line_num
    except csv.Error as exc:
        raise PosFileError(
            filename, "csv", f"malformed CSV at line {reader.line_num}: {exc}"
        ) from None
    return records
