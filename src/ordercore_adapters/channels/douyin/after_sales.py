"""抖店 (Douyin shop) after-sales: ``afterSale.List`` by update time.

Mixed into :class:`~.adapter.DouyinChannel` (the AfterSalesPort); signed and sent like
every 抖店 call (``POST /afterSale/List`` with the business params as JSON).
**Public** (the API's docs): ``update_start_time``/``update_end_time`` in unix seconds,
``page`` from 0, ``size`` up to 100, ``order_by`` ``["update_time asc"]``; the answer's
``data`` carries ``total`` and ``items``, each with ``aftersale_info`` (``aftersale_id``,
``aftersale_type``, ``aftersale_status``, ``refund_amount`` in fen, ``reason``,
``return_logistics_code``, ``create_time`` and ``update_time``) and ``order_info``
(``shop_order_id`` and ``related_order_info[]`` with ``sku_order_id``,
``shop_sku_code``, ``aftersale_item_num``). Windows use the order feed's limits (one
day, 60 s of lag); pages are read forward and each reports the current ``total``.

**Assumed** (the docs give labels, not a stable table): the type codes 0 return and
refund, 1 and 2 refund only (shipped, not shipped), 3 exchange, 7 resend; and the status
codes in :data:`DOUYIN_AFTER_SALE_STATUSES`; unknown codes are rejected (kept for replay).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from ordercore.domain.after_sales import AfterSale, AfterSaleKind, AfterSaleStatus
from ordercore.domain.channels import (
    ChannelLimits,
    Page,
    PagingDirection,
    RawRecord,
    RecordKind,
    TimeWindow,
)
from ordercore.errors import ChannelUnavailable

from .._platform.after_sales import AfterSaleReader

__all__ = [
    "AFTER_SALES_METHOD",
    "DOUYIN_AFTER_SALE_KINDS",
    "DOUYIN_AFTER_SALE_STATUSES",
    "DouyinAfterSales",
]

AFTER_SALES_METHOD: Final = "afterSale.List"

DOUYIN_AFTER_SALE_KINDS: Final[Mapping[str, AfterSaleKind]] = {
    "0": AfterSaleKind.RETURN_REFUND,
    "1": AfterSaleKind.REFUND_ONLY,
    "2": AfterSaleKind.REFUND_ONLY,
    "3": AfterSaleKind.EXCHANGE,
    "7": AfterSaleKind.RESEND,
}
_S = AfterSaleStatus
DOUYIN_AFTER_SALE_STATUSES: Final[Mapping[str, AfterSaleStatus]] = {
    "6": _S.REQUESTED,  # 待商家同意
    "7": _S.APPROVED,  # 待买家退货
    "11": _S.RETURNING,  # 买家已退货，待商家收货
    "13": _S.RECEIVED,  # 商家已收货，待处理（换货补寄待发货）
    "12": _S.REFUNDED,  # 售后成功
    "27": _S.REJECTED,  # 商家拒绝售后申请
    "29": _S.REJECTED,  # 退货后拒绝退款
    "28": _S.CLOSED,  # 售后关闭
}
_FEN = Decimal("0.01")


class DouyinAfterSales:
    """The AfterSalesPort of a 抖店 shop (mixed into DouyinChannel)."""

    name: str
    limits: ChannelLimits
    _page_size: int

    async def call(
        self, method: str, params: Mapping[str, object], *, with_token: bool = True
    ) -> dict[str, Any]:
        """The signed call of the channel (DouyinChannel.call)."""
        raise NotImplementedError

    @property
    def after_sales_limits(self) -> ChannelLimits:
        """The order feed's limits, paged forward."""
        return self.limits.model_copy(update={"paging": PagingDirection.FORWARD})

    async def fetch_after_sales(self, window: TimeWindow, page: str | None) -> Page:
        """One page (from 0, oldest first) of after-sales updated in ``window``."""
        low, high = math.ceil(window.start.timestamp()), math.ceil(window.end.timestamp()) - 1
        if high < low:
            return Page(records=(), total=0)
        number = 0 if page is None else int(page)
        data = await self.call(
            AFTER_SALES_METHOD,
            {
                "update_start_time": low,
                "update_end_time": high,
                "page": number,
                "size": self._page_size,
                "order_by": ["update_time asc"],
            },
        )
        total, items = data.get("total"), data.get("items", [])
        if isinstance(total, bool) or not isinstance(total, int) or not isinstance(items, list):
            raise ChannelUnavailable(
                f"douyin channel {self.name!r}: {AFTER_SALES_METHOD} lacks total or items"
            )
        records = tuple(self._after_sale_record(item) for item in items)
        more = (number + 1) * self._page_size < total and bool(items)
        return Page(records=records, total=total, next_page=str(number + 1) if more else None)

    def _after_sale_record(self, item: Any) -> RawRecord:
        info = item.get("aftersale_info") if isinstance(item, dict) else None
        if not isinstance(info, dict):
            raise ChannelUnavailable(
                f"douyin channel {self.name!r}: an after-sale item has no aftersale_info"
            )
        key, updated = info.get("aftersale_id"), info.get("update_time")
        if key in (None, "") or isinstance(updated, bool) or not isinstance(updated, int):
            raise ChannelUnavailable(
                f"douyin channel {self.name!r}: an after-sale came without aftersale_id or "
                f"update_time"
            )
        return RawRecord(
            channel=self.name,
            external_id=str(key),
            modified_at=datetime.fromtimestamp(updated, UTC),
            payload=item,
            kind=RecordKind.AFTER_SALE,
        )

    def map_after_sale(self, record: RawRecord) -> AfterSale:
        """Map a 抖店 after-sale (see the module docstring)."""
        read = AfterSaleReader(self.name, record)
        related = read.raw("order_info.related_order_info", [])
        items = related if isinstance(related, list) else []
        lines = read.lines(
            (
                str(item.get("sku_order_id", "")),
                item.get("shop_sku_code") or item.get("sku_id"),
                item.get("aftersale_item_num"),
            )
            for item in items
            if isinstance(item, dict)
        )
        return read.build(
            order_external_id=read.text("order_info.shop_order_id"),
            kind=read.choose("aftersale_info.aftersale_type", DOUYIN_AFTER_SALE_KINDS),
            status=read.choose("aftersale_info.aftersale_status", DOUYIN_AFTER_SALE_STATUSES),
            platform_status=read.text("aftersale_info.aftersale_status", ""),
            lines=lines,
            refund={"amount": read.amount("aftersale_info.refund_amount", unit=_FEN)},
            reason=read.text("aftersale_info.reason", ""),
            tracking_number=read.text("aftersale_info.return_logistics_code", ""),
            created_at=read.time("aftersale_info.create_time", default=record.modified_at),
        )
