"""Which header names mean which order field: the default POS column layout.

Header names are matched after normalising (NFKC, case-folded, spaces, ``_``, ``-``
and ``.`` removed, a trailing unit in brackets such as ``（元）`` dropped), so
``单价（元）``, ``Unit Price`` and ``unit_price`` all match. Aliases are tried in order:
a file with both ``商品编码`` and ``条码`` takes the SKU from ``商品编码``.

The default layout (``*`` = required), field: aliases -> what it becomes:

- ``order_no``*: 订单号 单号 销售单号 小票号 流水号 order_no order_id receipt_no
  -> ``Order.external_id``, and the id ``"{channel}:{order_no}"``
- ``store``: 门店 门店编码 门店名称 店铺 store store_code store_name shop
  -> every line's ``warehouse`` (a till sale takes stock from its store)
- ``created_at``*: 下单时间 销售时间 交易时间 时间 created_at order_time sale_time time
  -> ``created_at`` and ``updated_at``, local wall-clock converted to UTC
- ``sku``*: 商品编码 货号 商品条码 条码 sku barcode item_code -> ``OrderLine.sku``
- ``title``: 商品名称 品名 商品 title item_name product_name -> ``OrderLine.title``
- ``qty``*: 数量 销售数量 qty quantity -> ``OrderLine.quantity`` (a whole number >= 1)
- ``unit_price``*: 单价 销售单价 售价 unit_price price -> ``OrderLine.unit_price``
  (yuan, at most 2 decimals; ``¥``, ``元`` and thousands separators allowed)
- ``phone``: 会员手机 手机 手机号 会员电话 电话 phone mobile member_phone -> ``receiver.phone``
- ``member_id``: 会员号 会员卡号 会员编号 member_id member_no card_no -> ``buyer_id``
- ``name``: 会员姓名 顾客姓名 姓名 name customer_name -> ``receiver.name``
- ``remark``: 备注 remark note notes -> ``remark`` (distinct remarks of the lines joined)

Rows sharing an order number are the lines of one order; store, created_at, phone,
member_id and name are order-level and must agree across its lines (an empty cell
inherits the order's value, as in exports that fill only an order's first row).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from .errors import PosFileError
from .reader import PosFile

__all__ = ["DEFAULT_LAYOUT", "ColumnLayout", "PosField"]


class PosField(StrEnum):
    """An order field a POS column can feed."""

    ORDER_NO = "order_no"
    STORE = "store"
    CREATED_AT = "created_at"
    SKU = "sku"
    TITLE = "title"
    QUANTITY = "qty"
    UNIT_PRICE = "unit_price"
    PHONE = "phone"
    MEMBER_ID = "member_id"
    NAME = "name"
    REMARK = "remark"


ORDER_LEVEL = (
    PosField.STORE,
    PosField.CREATED_AT,
    PosField.PHONE,
    PosField.MEMBER_ID,
    PosField.NAME,
)
"""Fields every line of one order must agree on."""

_UNIT_SUFFIX = re.compile(r"\([^()]*\)$")
_SEPARATORS = re.compile(r"[\s_\-.]+")


def normalise_name(name: str) -> str:
    """A header name reduced for matching: ``'Unit Price（元）'`` -> ``'unitprice'``."""
    folded = unicodedata.normalize("NFKC", name).strip().casefold()
    return _SEPARATORS.sub("", _UNIT_SUFFIX.sub("", folded))


@dataclass(frozen=True, slots=True)
class ColumnLayout:
    """Aliases per field (most preferred first) and the fields a file must have."""

    aliases: Mapping[PosField, tuple[str, ...]]
    required: frozenset[PosField] = field(
        default=frozenset(
            {
                PosField.ORDER_NO,
                PosField.CREATED_AT,
                PosField.SKU,
                PosField.QUANTITY,
                PosField.UNIT_PRICE,
            }
        )
    )

    def with_aliases(self, pos_field: PosField, *names: str) -> ColumnLayout:
        """A copy that also recognises ``names`` for ``pos_field``, before the others."""
        merged = dict(self.aliases)
        merged[pos_field] = (*names, *self.aliases.get(pos_field, ()))
        return ColumnLayout(MappingProxyType(merged), self.required)

    def resolve(self, pos_file: PosFile) -> dict[PosField, str]:
        """Field -> the row key of its column in ``pos_file``.

        Raises :class:`PosFileError` (field ``header``) when no required column is
        recognised, when some are missing, or when one alias names two columns.
        """
        by_name: dict[str, list[int]] = {}
        for index, name in enumerate(pos_file.header):
            by_name.setdefault(normalise_name(name), []).append(index)
        found: dict[PosField, str] = {}
        for pos_field, names in self.aliases.items():
            for alias in names:
                indexes = by_name.get(normalise_name(alias), [])
                if len(indexes) > 1:
                    raise PosFileError(
                        pos_file.filename,
                        "header",
                        f"columns {[pos_file.header[i] for i in indexes]} at positions "
                        f"{[i + 1 for i in indexes]} all mean {pos_field}; keep one",
                        pos_file.header,
                    )
                if indexes:
                    found[pos_field] = pos_file.columns[indexes[0]]
                    break
        missing = [f for f in PosField if f in self.required and f not in found]
        if len(missing) == len(self.required):
            raise PosFileError(
                pos_file.filename,
                "header",
                f"no recognisable header on line {pos_file.header_line}: expected columns "
                f"such as {self._describe(missing)}",
                pos_file.header,
            )
        if missing:
            raise PosFileError(
                pos_file.filename,
                "header",
                f"missing required columns {self._describe(missing)}",
                pos_file.header,
            )
        return found

    def _describe(self, fields: list[PosField]) -> str:
        return ", ".join("/".join((*self.aliases.get(f, ())[:1], str(f))) for f in fields)


_DEFAULT_ALIASES = {
    PosField.ORDER_NO: "订单号 单号 销售单号 小票号 流水号 order_no order_id receipt_no",
    PosField.STORE: "门店 门店编码 门店名称 店铺 store store_code store_name shop",
    PosField.CREATED_AT: "下单时间 销售时间 交易时间 时间 created_at order_time sale_time time",
    PosField.SKU: "商品编码 货号 商品条码 条码 sku barcode item_code",
    PosField.TITLE: "商品名称 品名 商品 title item_name product_name",
    PosField.QUANTITY: "数量 销售数量 qty quantity",
    PosField.UNIT_PRICE: "单价 销售单价 售价 unit_price price",
    PosField.PHONE: "会员手机 手机 手机号 会员电话 电话 phone mobile member_phone",
    PosField.MEMBER_ID: "会员号 会员卡号 会员编号 member_id member_no card_no",
    PosField.NAME: "会员姓名 顾客姓名 姓名 name customer_name",
    PosField.REMARK: "备注 remark note notes",
}

DEFAULT_LAYOUT = ColumnLayout(
    MappingProxyType({f: tuple(names.split()) for f, names in _DEFAULT_ALIASES.items()})
)
"""The documented default layout (see the module docstring)."""
