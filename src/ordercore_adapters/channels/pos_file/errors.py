"""Errors of a wholly bad POS file: nothing in it is imported."""

from __future__ import annotations

from collections.abc import Mapping

from ordercore.errors import FieldError, InvalidInput

__all__ = ["PosFileError", "UndecodableFile"]


class PosFileError(InvalidInput):
    """The file as a whole cannot be read or mapped (empty, no recognisable header, ...).

    ``filename`` names the file; ``errors`` holds one :class:`FieldError` whose field says
    what part of the file failed (``file``, ``encoding``, ``header``, ``xlsx``, ``csv``).
    """

    def __init__(self, filename: str, field: str, message: str, value: object = None) -> None:
        self.filename = filename
        super().__init__(f"POS file {filename!r}", [FieldError(field, message, value)])


class UndecodableFile(PosFileError):
    """A CSV file decodes as none of UTF-8 (with or without BOM) and GB18030.

    ``offset`` is the byte offset where the most plausible encoding (the one that read
    furthest) failed; ``offsets`` maps every encoding tried to where it failed.
    """

    def __init__(self, filename: str, offsets: Mapping[str, int], snippet: bytes) -> None:
        self.offsets = dict(offsets)
        best = max(self.offsets, key=lambda name: self.offsets[name])
        self.offset = self.offsets[best]
        tried = ", ".join(f"{name} fails at byte {at}" for name, at in self.offsets.items())
        super().__init__(
            filename,
            "encoding",
            f"cannot decode byte offset {self.offset} ({tried}); save the file as CSV UTF-8 or GBK",
            snippet,
        )
