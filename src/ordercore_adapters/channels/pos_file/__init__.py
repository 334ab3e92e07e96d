"""The ``pos_file`` channel: offline POS exports (CSV or XLSX) read into canonical orders.

Three steps, each usable on its own::

    pos_file = read_pos_file(data, "2024-05-01.csv")   # bytes -> rows with line numbers
    result = map_rows(pos_file, tz="Asia/Shanghai")     # rows -> orders + row errors
    report = rejects_csv(result)                        # row errors -> CSV for Excel

A wholly bad file (empty, undecodable, no usable header) raises :class:`PosFileError`
(an ``ordercore.errors.InvalidInput``) and yields nothing. Otherwise good orders map
while orders with a bad row are rejected whole, each error naming its line.
``PosFile.sha256`` and the row keys (:class:`RowKey`) of each order let an import skip a file it has
already seen and tell a corrected file (same order number, changed rows) from it.
"""

from .errors import PosFileError, UndecodableFile
from .layout import DEFAULT_LAYOUT, ColumnLayout, PosField
from .mapping import map_rows
from .reader import FileFormat, PosFile, PosRow, read_pos_file
from .report import rejects_csv
from .result import MappingResult, PosOrder, RejectedOrder, RowError, RowKey

__all__ = [
    "DEFAULT_LAYOUT",
    "ColumnLayout",
    "FileFormat",
    "MappingResult",
    "PosField",
    "PosFile",
    "PosFileError",
    "PosOrder",
    "PosRow",
    "RejectedOrder",
    "RowError",
    "RowKey",
    "UndecodableFile",
    "map_rows",
    "read_pos_file",
    "rejects_csv",
]
