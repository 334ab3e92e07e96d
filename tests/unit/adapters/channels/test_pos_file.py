"""The pos_file channel: POS exports (CSV in three encodings, XLSX) read and mapped to orders."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

import ordercore_adapters.channels.pos_file as pos_file_package
from ordercore.domain.orders import OrderStatus
from ordercore.errors import InvalidInput
from ordercore_adapters.channels.pos_file import (
    FileFormat,
    MappingResult,
    PosFileError,
    UndecodableFile,
    map_rows,
    read_pos_file,
    rejects_csv,
)

HEADER = ("订单号", "门店", "下单时间", "商品编码", "商品名称", "数量", "单价", "会员手机", "备注")

# order no | store | local time | barcode | title | qty | unit price | phone | remark
_SALES_TABLE = """
P0501001|南京西路店|2024-05-01 00:30:00|6901234567890|矿泉水|2|2.50|13800138000|
P0501001|南京西路店|2024-05-01 00:30:00|6901234567891|薯片|1|8.90|13800138000|
P0501002|徐家汇店|2024-05-01 09:15:07|6901234567892|绿茶|3|4.00||会员日, 九折
P0501003|静安寺店|2024-05-01 10:02:00|6901234567893|牛奶|1|12.80|13912345678|
P0501003|静安寺店|2024-05-01 10:02:00|6901234567894|面包|2|6.50|13912345678|
P0501003|静安寺店|2024-05-01 10:02:00|6901234567890|矿泉水|6|2.50|13912345678|
P0501004|南京西路店|2024-05-01 12:45:00|6901234567895|咖啡豆|1|1299.00||礼盒装
P0501005|徐家汇店|2024-05-01 13:00:00|6901234567896|酸奶|4|5.50|13700000001|
P0501006|静安寺店|2024-05-01 15:30:00|6901234567897|巧克力|2|19.90||
P0501006|静安寺店|2024-05-01 15:30:00|6901234567898|饼干|1|7.00||
P0501007|南京西路店|2024-05-01 18:20:00|6901234567899|果汁|2|9.90|13600000002|
P0501008|徐家汇店|2024-05-01 20:05:00|6901234567890|矿泉水|12|2.50||
P0501009|静安寺店|2024-05-01 21:40:00|6901234567891|薯片|1|8.90|13500000003|需发票
P0501009|静安寺店|2024-05-01 21:40:00|6901234567892|绿茶|1|4.00|13500000003|需发票
P0501010|南京西路店|2024-05-01 23:59:59|6901234567893|牛奶|2|12.80||
"""
SALES = [line.split("|") for line in _SALES_TABLE.strip().splitlines()]
"""A realistic day: 10 orders, 15 lines, three stores, one order at 00:30 local time."""


def _csv_bytes(rows: Sequence[Sequence[object]], encoding: str, delimiter: str = ",") -> bytes:
    """Rows as a CSV file the way Excel saves one: CRLF, quoting only where needed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def _sales_as_text() -> list[list[str]]:
    """The realistic export as text cells, with two trailing empty rows as POS tools write."""
    return [list(HEADER), *SALES, [""] * len(HEADER), []]


def _write(tmp_path: Path, name: str, data: bytes) -> bytes:
    """Write a fixture file and read it back, as an import would."""
    path = tmp_path / name
    path.write_bytes(data)
    return path.read_bytes()


def _xlsx_bytes(tmp_path: Path) -> bytes:
    """The same export saved as XLSX, with typed cells: datetimes, ints and floats."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "销售明细"
    sheet.append(list(HEADER))
    for order_no, store, at, sku, title, qty, price, phone, remark in SALES:
        typed = [datetime.fromisoformat(at), int(sku), title, int(qty), float(price)]
        sheet.append([order_no, store, *typed, int(phone) if phone else None, remark or None])
    path = tmp_path / "sales.xlsx"
    workbook.save(path)
    return path.read_bytes()


def _variant(tmp_path: Path, variant: str) -> tuple[bytes, str]:
    """The realistic export in one of its four shapes, as (bytes, filename)."""
    if variant == "xlsx":
        return _xlsx_bytes(tmp_path), "sales.xlsx"
    encoding = {"utf-8-sig": "utf-8-sig", "utf-8": "utf-8", "gbk": "gbk"}[variant]
    return _write(tmp_path, f"{variant}.csv", _csv_bytes(_sales_as_text(), encoding)), "s.csv"


def _map(data: bytes, name: str = "pos.csv") -> MappingResult:
    """Read and map with the defaults."""
    return map_rows(read_pos_file(data, name))


VARIANTS = ["utf-8-sig", "utf-8", "gbk", "xlsx"]


@pytest.mark.parametrize(
    ("variant", "file_format", "encoding"),
    [
        ("utf-8-sig", FileFormat.CSV, "utf-8-sig"),
        ("utf-8", FileFormat.CSV, "utf-8"),
        ("gbk", FileFormat.CSV, "gb18030"),
        ("xlsx", FileFormat.XLSX, None),
    ],
)
def test_format_and_encoding_are_detected(
    tmp_path: Path, variant: str, file_format: FileFormat, encoding: str | None
) -> None:
    """Each shape of the export is read as its format and encoding, header on line 1."""
    data, name = _variant(tmp_path, variant)
    pos_file = read_pos_file(data, name)
    assert (pos_file.format, pos_file.encoding) == (file_format, encoding)
    assert (pos_file.header, pos_file.header_line) == (HEADER, 1)
    assert [row.line for row in pos_file.rows] == list(range(2, 2 + len(SALES)))


def test_every_shape_of_the_same_export_maps_to_the_same_orders(tmp_path: Path) -> None:
    """UTF-8, UTF-8 with BOM, GBK CSV and XLSX of one export give equal orders and row keys."""
    results = [map_rows(read_pos_file(*_variant(tmp_path, variant))) for variant in VARIANTS]
    baseline = results[0]
    assert len(baseline.orders) == 10
    assert not baseline.errors
    for result in results[1:]:
        assert [o.order for o in result.orders] == [o.order for o in baseline.orders]
        assert [o.row_keys for o in result.orders] == [o.row_keys for o in baseline.orders]
        assert not result.errors


def test_rows_of_one_order_number_become_one_order(tmp_path: Path) -> None:
    """Order P0501003 has three lines, its store as warehouse, paid, prices as Decimal yuan."""
    result = _map(*_variant(tmp_path, "utf-8"))
    order = next(o for o in result.orders if o.order_no == "P0501003")
    assert order.order.id == "pos:P0501003"
    assert order.order.channel == "pos"
    assert order.order.status is OrderStatus.PAID
    assert order.lines == (5, 6, 7)
    assert [(line.sku, line.quantity, line.unit_price.amount) for line in order.order.lines] == [
        ("6901234567893", 1, Decimal("12.80")),
        ("6901234567894", 2, Decimal("6.50")),
        ("6901234567890", 6, Decimal("2.50")),
    ]
    assert {line.warehouse for line in order.order.lines} == {"静安寺店"}
    assert order.order.receiver.phone == "13912345678"
    stores = {o.order.lines[0].warehouse for o in result.orders}
    assert stores == {"南京西路店", "徐家汇店", "静安寺店"}


def test_local_half_past_midnight_lands_on_the_previous_utc_day(tmp_path: Path) -> None:
    """00:30 on 1 May in Asia/Shanghai is 16:30 UTC on 30 April."""
    result = _map(*_variant(tmp_path, "gbk"))
    first = next(o for o in result.orders if o.order_no == "P0501001")
    assert first.order.created_at == datetime(2024, 4, 30, 16, 30, tzinfo=UTC)
    assert first.order.created_at.tzinfo is UTC


def test_other_time_zones_and_explicit_offsets_are_honoured() -> None:
    """tz= sets the wall-clock zone; a time with its own offset keeps that offset."""
    rows = [list(HEADER), ["A", "", "2024-01-15 09:00", "1", "", "1", "1", "", ""]]
    rows.append(["B", "", "2024-01-15T09:00:00+08:00", "1", "", "1", "1", "", ""])
    result = map_rows(read_pos_file(_csv_bytes(rows, "utf-8"), "t.csv"), tz="Europe/Berlin")
    times = {o.order_no: o.order.created_at for o in result.orders}
    assert times == {
        "A": datetime(2024, 1, 15, 8, 0, tzinfo=UTC),
        "B": datetime(2024, 1, 15, 1, 0, tzinfo=UTC),
    }


def test_unknown_time_zone_is_an_invalid_input(tmp_path: Path) -> None:
    """An unknown tz name raises InvalidInput naming the tz field."""
    pos_file = read_pos_file(*_variant(tmp_path, "utf-8"))
    with pytest.raises(InvalidInput, match="tz"):
        map_rows(pos_file, tz="Mars/Olympus")


def _bad_rows_file() -> bytes:
    """Good and bad rows, one remark spanning two physical lines (lines 3-4)."""
    t = "2024-05-01 10:00:00"
    rows = [
        list(HEADER),
        ["A001", "南京西路店", t, "6901", "水", "1", "2.50", "", ""],  # line 2
        ["A001", "南京西路店", t, "6902", "茶", "1", "4.00", "", "送货\n上门"],  # lines 3-4
        ["A002", "南京西路店", t, "6901", "水", "两", "2.50", "", ""],  # line 5: bad qty
        ["A003", "徐家汇店", t, "6901", "水", "1", "2.50", "", ""],  # line 6
        ["A003", "徐家汇店", t, "6902", "茶", "1", "12.345", "", ""],  # line 7: bad price
        ["A004", "徐家汇店", "2024-13-01 10:00", "6901", "水", "1", "2.5", "", ""],  # line 8
        ["A005", "徐家汇店", t, "6901", "水", "1", "2.50", "", ""],  # line 9
        ["A005", "静安寺店", t, "6902", "茶", "1", "4.00", "", ""],  # line 10: other store
        ["", "静安寺店", t, "6902", "茶", "1", "4.00", "", ""],  # line 11: no order number
        ["A006", "静安寺店", "2024/5/1 9:05", "6903", "奶", "2", "￥12.8", "", ""],  # line 12
        ["A007", "静安寺店", "明天", "6903", "奶", "-1", "abc", "", ""],  # line 13: three errors
    ]
    return _csv_bytes(rows, "gbk")


def test_bad_rows_reject_their_orders_and_name_their_lines() -> None:
    """Good orders map; each bad row is reported at its physical line, after a multi-line field."""
    result = _map(_bad_rows_file())
    assert [o.order_no for o in result.orders] == ["A001", "A006"]
    assert result.orders[0].order.remark == "送货\n上门"
    found = [(e.line, e.order_no, e.column) for e in result.errors]
    assert found == [
        (5, "A002", "数量"),
        (7, "A003", "单价"),
        (8, "A004", "下单时间"),
        (10, "A005", "门店"),
        (11, "", "订单号"),
        (13, "A007", "下单时间"),
        (13, "A007", "数量"),
        (13, "A007", "单价"),
    ]
    messages = {(e.line, e.column): e.message for e in result.errors}
    assert "not a number" in messages[(5, "数量")]
    assert "2 decimal places" in messages[(7, "单价")]
    assert "not a valid date" in messages[(8, "下单时间")]
    assert "differs from line 9" in messages[(10, "门店")]
    assert "missing order number" in messages[(11, "订单号")]
    rejected = {r.order_no: r.lines for r in result.rejected}
    assert rejected == {"A002": (5,), "A003": (6, 7), "A004": (8,), "A005": (9, 10), "A007": (13,)}


def test_a_misaligned_row_is_a_row_error() -> None:
    """A row with more cells than the header (an unquoted comma) is reported, not shifted."""
    rows = [list(HEADER), ["A", "店", "2024-05-01 10:00", "1", "水", "1", "2", "", "a", "b"]]
    result = _map(_csv_bytes(rows, "utf-8"))
    assert not result.orders
    assert [(e.line, e.column, e.value) for e in result.errors] == [(2, "column 10", "b")]


def test_empty_order_level_cells_inherit_from_the_order() -> None:
    """An export that fills store and time only on an order's first row still maps."""
    rows = [list(HEADER), ["A", "店", "2024-05-01 10:00", "1", "水", "1", "2", "", ""]]
    rows.append(["A", "", "", "2", "茶", "1", "3", "", ""])
    result = _map(_csv_bytes(rows, "utf-8"))
    assert [len(o.order.lines) for o in result.orders] == [2]
    assert {line.warehouse for line in result.orders[0].order.lines} == {"店"}


def test_numbers_mangled_by_excel_are_reported() -> None:
    """An order number saved in scientific notation (1.23E+12) is an error, not an order."""
    rows = [list(HEADER), ["2.02405E+13", "店", "2024-05-01 10:00", "1", "水", "1", "2", "", ""]]
    result = _map(_csv_bytes(rows, "utf-8"))
    assert [(e.column, "scientific notation" in e.message) for e in result.errors] == [
        ("订单号", True)
    ]


@pytest.mark.parametrize("delimiter", ["\t", ";"])
def test_tab_and_semicolon_delimiters_are_sniffed(delimiter: str) -> None:
    """Tab- and semicolon-separated exports map like comma-separated ones."""
    data = _csv_bytes(_sales_as_text(), "utf-8", delimiter)
    pos_file = read_pos_file(data, "sales.txt")
    assert pos_file.delimiter == delimiter
    assert len(map_rows(pos_file).orders) == 10


def test_english_alias_headers_map() -> None:
    """English headers (order_no, store, created_at, sku, qty, unit_price) work too."""
    header = ["order_no", "Store", "created_at", "SKU", "qty", "Unit Price (元)"]
    rows = [header, ["A", "S1", "2024-05-01 10:00", "1", "2", "3.5"]]
    result = _map(_csv_bytes(rows, "utf-8"))
    assert [(o.order_no, o.order.lines[0].unit_price.amount) for o in result.orders] == [
        ("A", Decimal("3.50"))
    ]


def test_xlsx_is_detected_by_content_not_by_name(tmp_path: Path) -> None:
    """An XLSX saved under a .csv name is read as XLSX; a CSV named .xls is read as CSV."""
    assert read_pos_file(_xlsx_bytes(tmp_path), "export.csv").format is FileFormat.XLSX
    text = _csv_bytes(_sales_as_text(), "utf-8")
    assert read_pos_file(text, "export.xls").format is FileFormat.CSV


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"", "file"),
        (b"\r\n,,,\r\n\r\n", "file"),
        ("名称,价格\r\n苹果,3\r\n".encode(), "header"),
        ("订单号,数量\r\nA,1\r\n".encode(), "header"),
        ("订单号,订单号,下单时间,商品编码,数量,单价\r\n".encode(), "header"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64), "file"),
        (b"PK\x03\x04 not really a zip", "xlsx"),
        ("订单号,单价\r\n".encode("utf-16"), "encoding"),
        ('订单号,下单时间,商品编码,数量,单价\r\nA,"2024\r\n'.encode(), "csv"),
    ],
    ids=[
        "empty",
        "blank",
        "no-header",
        "missing-columns",
        "ambiguous",
        "xls",
        "broken-zip",
        "utf16",
        "unclosed-quote",
    ],
)
def test_a_wholly_bad_file_raises_a_typed_error(data: bytes, field: str) -> None:
    """Empty, headerless, legacy-XLS, broken or malformed files raise PosFileError, no rows."""
    with pytest.raises(PosFileError) as caught:
        _map(data, "bad.csv")
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.filename == "bad.csv"
    assert [error.field for error in caught.value.errors] == [field]


def test_an_undecodable_file_names_the_file_and_the_failing_byte() -> None:
    """Bytes valid in neither UTF-8 nor GB18030 raise UndecodableFile with the byte offset."""
    data = "订单号,数量\r\nA,1\r\n".encode("gbk") + b"B,\xff\r\n"
    with pytest.raises(UndecodableFile) as caught:
        read_pos_file(data, "day.csv")
    offset = len("订单号,数量\r\nA,1\r\n".encode("gbk")) + 2
    assert caught.value.offset == offset
    assert caught.value.offsets == {"utf-8": 0, "gb18030": offset}
    assert "day.csv" in str(caught.value)
    assert f"byte offset {offset}" in str(caught.value)


def test_a_bom_commits_the_file_to_utf8() -> None:
    """A file with a UTF-8 BOM and a stray GBK byte later fails at that byte."""
    data = "\ufeff订单号\r\n".encode() + "甲".encode("gbk")
    with pytest.raises(UndecodableFile) as caught:
        read_pos_file(data, "x.csv")
    assert caught.value.offsets == {"utf-8-sig": len("\ufeff订单号\r\n".encode())}


def test_the_file_hash_is_stable_and_changes_with_one_byte(tmp_path: Path) -> None:
    """The same bytes hash alike every time; flipping one byte changes the hash."""
    data, name = _variant(tmp_path, "utf-8")
    first = read_pos_file(data, name).sha256
    assert read_pos_file(bytes(data), "renamed.csv").sha256 == first
    assert len(first) == 64
    changed = bytearray(data)
    changed[-5] ^= 0x01
    assert read_pos_file(bytes(changed), name).sha256 != first
    assert map_rows(read_pos_file(data, name)).sha256 == first


def test_row_keys_tell_a_corrected_order_from_an_unchanged_one() -> None:
    """Correcting one row changes that order's digest only; the rest keep theirs."""
    text = _sales_as_text()
    corrected = [list(row) for row in text]
    corrected[4][5] = "2"  # P0501003's first line: qty 1 -> 2
    before = {o.order_no: o for o in _map(_csv_bytes(text, "utf-8")).orders}
    after = {o.order_no: o for o in _map(_csv_bytes(corrected, "utf-8")).orders}
    changed = {no for no in before if before[no].digest != after[no].digest}
    assert changed == {"P0501003"}
    assert before["P0501003"].row_keys[1:] == after["P0501003"].row_keys[1:]
    assert before["P0501003"].row_keys[0].line == after["P0501003"].row_keys[0].line == 5


def test_the_rejects_report_round_trips_through_csv_with_a_bom() -> None:
    """The report starts with a BOM and reads back, via utf-8-sig, to the row errors."""
    result = _map(_bad_rows_file())
    report = rejects_csv(result).encode("utf-8")
    assert report.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(report.decode("utf-8-sig"), newline="")))
    assert rows[0] == ["line", "order_no", "column", "value", "message"]
    expected = [[str(e.line), e.order_no, e.column, e.value, e.message] for e in result.errors]
    assert rows[1:] == expected
    assert rows[-2][:4] == ["13", "A007", "数量", "-1"]


def test_the_rejects_report_defuses_spreadsheet_formulas() -> None:
    """A cell value that Excel would evaluate is written with a leading quote."""
    rows = [list(HEADER), ["=HYPERLINK(1)", "店", "2024-05-01 10:00", "1", "水", "x", "1", "", ""]]
    report = rejects_csv(_map(_csv_bytes(rows, "utf-8")))
    assert "'=HYPERLINK(1)" in report


def test_the_public_names_are_exported() -> None:
    """The package's __all__ is the curated public API, each name importable."""
    assert sorted(pos_file_package.__all__) == sorted(
        [
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
    )
    assert all(hasattr(pos_file_package, name) for name in pos_file_package.__all__)


def _read_and_map(data: bytes) -> MappingResult | None:
    """Read and map; None when the file is wholly bad (a PosFileError)."""
    try:
        return map_rows(read_pos_file(data, "fuzz.csv"))
    except PosFileError:
        return None


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=400),
        st.binary(max_size=400).map(lambda tail: b"PK\x03\x04" + tail),
        st.binary(max_size=400).map(lambda tail: ",".join(HEADER).encode() + b"\r\n" + tail),
    )
)
def test_garbage_bytes_raise_the_typed_error_or_yield_row_errors(data: bytes) -> None:
    """Random bytes either raise PosFileError or map with per-row errors; nothing else."""
    result = _read_and_map(data)
    if result is not None:
        assert all(error.line >= 2 for error in result.errors)


_CELL = st.text(alphabet=st.sampled_from('0123456789.-:/ ,"\n\r年月日￥E+e订单A'), max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_CELL, min_size=0, max_size=11), max_size=8))
def test_random_cells_under_a_good_header_never_escape_as_other_errors(
    rows: list[list[str]],
) -> None:
    """Random cells under a valid header map or raise PosFileError; rows stay accounted for."""
    data = _csv_bytes([list(HEADER), *rows], "utf-8")
    result = _read_and_map(data)
    if result is not None:
        mapped = sum(len(o.row_keys) for o in result.orders)
        rejected = sum(len(r.row_keys) for r in result.rejected)
        lines_with_errors = {e.line for e in result.unassigned}
        assert mapped + rejected + len(lines_with_errors) == len(
            read_pos_file(data, "fuzz.csv").rows
        )
