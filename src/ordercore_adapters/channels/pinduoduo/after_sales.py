"""Pinduoduo after-sales: ``pdd.refund.list.increment.get`` by update time.

Mixed into :class:`~.adapter.PinduoduoChannel` (the AfterSalesPort). **Public** (the
API's docs): ``start_updated_at``/``end_updated_at`` in unix seconds at most 30 minutes
apart, ``after_sales_status=1`` and ``after_sales_type=1`` (all), ``page`` from 1 and
``page_size`` up to 100; the answer ``refund_increment_get_response`` carries
``total_count`` and ``refund_list`` with ``id``, ``order_sn``, ``after_sales_type``,
``after_sales_status``, ``refund_amount`` (fen), ``goods_number``, ``sku_id``,
``outer_id``, ``after_sale_reason``, ``tracking_number``, ``created_time`` and
``updated_time`` (Asia/Shanghai wall clock). Windows use the order feed's limits (30
minutes, 5 minutes of lag: the increment index settles late for refunds as for orders).

Paged forward (page 1, 2, ...): every page reports the current ``total_count``, so a
request that moves while a window is read makes the totals differ and the window is
re-scanned.

Types: 2 refund only, 3 return and refund, 4 exchange, 5 resend (缺货补寄); others
(6 repair) are rejected (kept for replay). **Assumed** where the public docs give only
Chinese labels: the status codes below (the rest are rejected, kept for replay).
"""

from __future__ import annotations

from collections.abc import Mapping
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

from .._platform.after_sales import SHANGHAI, AfterSaleReader
from .._platform.times import inclusive_bounds, parse_top_time
from .client import PddClient

__all__ = ["PDD_AFTER_SALE_KINDS", "PDD_AFTER_SALE_STATUSES", "REFUND_API", "PddAfterSales"]

REFUND_API: Final = "pdd.refund.list.increment.get"
REFUND_KEY: Final = "refund_increment_get_response"

PDD_AFTER_SALE_KINDS: Final[Mapping[str, AfterSaleKind]] = {
    "2": AfterSaleKind.REFUND_ONLY,
    "3": AfterSaleKind.RETURN_REFUND,
    "4": AfterSaleKind.EXCHANGE,
    "5": AfterSaleKind.RESEND,
}
_S = AfterSaleStatus
PDD_AFTER_SALE_STATUSES: Final[Mapping[str, AfterSaleStatus]] = {
    "2": _S.REQUESTED,  # 买家申请退款，待商家处理
    "3": _S.REQUESTED,  # 退货退款，待商家处理
    "4": _S.APPROVED,  # 商家同意退款，退款中
    "5": _S.APPROVED,  # 平台同意退款，退款中
    "6": _S.REJECTED,  # 驳回退款，待买家处理
    "7": _S.APPROVED,  # 已同意退货退款，待用户发货
    "8": _S.REQUESTED,  # 平台处理中
    "9": _S.CLOSED,  # 平台拒绝退款，退款关闭
    "10": _S.REFUNDED,  # 退款成功
    "11": _S.CLOSED,  # 买家撤销
    "12": _S.CLOSED,  # 买家逾期未处理，退款失败
    "13": _S.CLOSED,  # 买家逾期，超过有效期
    "14": _S.REQUESTED,  # 换货补寄待商家处理
    "15": _S.APPROVED,  # 换货补寄待用户处理
    "16": _S.REFUNDED,  # 换货补寄成功
    "17": _S.CLOSED,  # 换货补寄失败
    "18": _S.RECEIVED,  # 换货补寄待用户确认完成
    "31": _S.APPROVED,  # 已同意拒收退款，待用户拒收
    "32": _S.APPROVED,  # 换货补寄待商家发货
    "33": _S.RETURNING,  # 待商家召回 / 用户已退货
}
_FEN = Decimal("0.01")


class PddAfterSales:
    """The AfterSalesPort of a Pinduoduo shop (mixed into PinduoduoChannel)."""

    name: str
    limits: ChannelLimits
    _client: PddClient
    _page_size: int

    @property
    def after_sales_limits(self) -> ChannelLimits:
        """The order feed's window (30 min) and lag, paged forward."""
        return self.limits.model_copy(update={"paging": PagingDirection.FORWARD})

    async def fetch_after_sales(self, window: TimeWindow, page: str | None) -> Page:
        """One page of after-sale requests updated in ``window``."""
        start, end = inclusive_bounds(window)
        if end < start:
            return Page(records=(), total=0)
        page_no = int(page or 1)
        body = await self._client.call(
            REFUND_API,
            {
                "start_updated_at": int(start.timestamp()),
                "end_updated_at": int(end.timestamp()),
                "after_sales_status": 1,
                "after_sales_type": 1,
                "page": page_no,
                "page_size": self._page_size,
            },
            key=REFUND_KEY,
        )
        raw_total = body.get("total_count", 0)
        if isinstance(raw_total, bool) or not str(raw_total).isdigit():
            raise ChannelUnavailable(
                f"pinduoduo channel {self.name!r}: total_count is not a count ({raw_total!r})"
            )
        total = int(str(raw_total))
        items = body.get("refund_list") or []
        if not isinstance(items, list):
            raise ChannelUnavailable(f"pinduoduo channel {self.name!r}: refund_list is not a list")
        records = tuple(self._after_sale_record(item) for item in items)
        more = page_no * self._page_size < total
        return Page(records=records, total=total, next_page=str(page_no + 1) if more else None)

    def _after_sale_record(self, item: Any) -> RawRecord:
        if not isinstance(item, dict):
            raise ChannelUnavailable(f"pinduoduo channel {self.name!r}: a refund is not an object")
        key, updated = item.get("id"), item.get("updated_time")
        if key in (None, "") or not isinstance(updated, str):
            raise ChannelUnavailable(
                f"pinduoduo channel {self.name!r}: a refund came without id or updated_time"
            )
        try:
            modified_at = parse_top_time(updated)
        except ValueError:
            raise ChannelUnavailable(
                f"pinduoduo channel {self.name!r} refund {key}: updated_time is not a time "
                f"({updated!r})"
            ) from None
        return RawRecord(
            channel=self.name,
            external_id=str(key),
            modified_at=modified_at,
            payload=item,
            kind=RecordKind.AFTER_SALE,
        )

    def map_after_sale(self, record: RawRecord) -> AfterSale:
        """Map a Pinduoduo refund (see the module docstring)."""
        read = AfterSaleReader(self.name, record)
        sku = read.text("outer_id", "") or read.text("sku_id", "")
        units = read.raw("goods_number", 0)
        return read.build(
            order_external_id=read.text("order_sn"),
            kind=read.choose("after_sales_type", PDD_AFTER_SALE_KINDS),
            status=read.choose("after_sales_status", PDD_AFTER_SALE_STATUSES),
            platform_status=read.text("after_sales_status", ""),
            lines=read.lines([("", sku, units)]) if sku and units else [],
            refund={"amount": read.amount("refund_amount", unit=_FEN)},
            reason=read.text("after_sale_reason", ""),
            tracking_number=read.text("tracking_number", ""),
            created_at=read.time("created_time", zone=SHANGHAI, default=record.modified_at),
        )
