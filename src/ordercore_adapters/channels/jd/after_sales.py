"""JD after-sales service orders (售后服务单) through JOS: ``jingdong.asc.query.list``.

Mixed into :class:`~.adapter.JdChannel` (the AfterSalesPort). Business params travel in
``360buy_param_json`` like every JOS call; the list is read by update time
(``updateTimeBegin``/``updateTimeEnd``, Asia/Shanghai wall clock to the second, sent as
``start .. end - 1 s``), forward (``pageNumber`` from 1, ``pageSize`` up to 100); the
answer's ``pageResult`` carries ``totalCount`` and ``data`` (service orders with
``serviceId``, ``orderId``, ``skuId``, ``serviceCount``, ``customerExpect``,
``serviceStatus``, ``refundAmount`` (yuan), ``questionDesc``, ``expressCode``,
``applyTime`` and ``updateTime``).

**Not public / assumed** (JOS's after-sales docs are behind the seller's ISV login):
the method name and the field names above, one day per query and the order feed's 60 s
lag, and the codes: ``customerExpect`` 10 return, 20 exchange, 80 resend (30, repair, is
rejected and kept for replay); ``serviceStatus`` as in :data:`JD_SERVICE_STATUSES`.
Refund-only requests of orders not yet shipped go through JD's separate refund audit
(``jingdong.pop.afs.soa.refundapply.queryPageList``), which is not pulled here.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from .._platform.times import format_top_time, inclusive_bounds, parse_top_time
from .client import JosApiError, JosClient

__all__ = ["AFTER_SALES_METHOD", "JD_SERVICE_KINDS", "JD_SERVICE_STATUSES", "JdAfterSales"]

AFTER_SALES_METHOD: Final = "jingdong.asc.query.list"

JD_SERVICE_KINDS: Final[Mapping[str, AfterSaleKind]] = {
    "10": AfterSaleKind.RETURN_REFUND,
    "20": AfterSaleKind.EXCHANGE,
    "80": AfterSaleKind.RESEND,
}
_S = AfterSaleStatus
JD_SERVICE_STATUSES: Final[Mapping[str, AfterSaleStatus]] = {
    "10001": _S.REQUESTED,  # 待审核
    "10002": _S.REQUESTED,  # 待客户反馈
    "10003": _S.REJECTED,  # 审核不通过
    "10012": _S.APPROVED,  # 审核通过，待客户寄回
    "10004": _S.RETURNING,  # 客户已发货，待收货
    "10005": _S.RECEIVED,  # 已收货，待处理
    "10009": _S.RECEIVED,  # 待客户确认
    "10010": _S.REFUNDED,  # 完成
    "10011": _S.CLOSED,  # 取消
}


class JdAfterSales:
    """The AfterSalesPort of a JD shop (mixed into JdChannel)."""

    name: str
    limits: ChannelLimits
    _client: JosClient
    _page_size: int

    @property
    def after_sales_limits(self) -> ChannelLimits:
        """The order feed's limits (one day, 60 s lag), paged forward."""
        return self.limits.model_copy(update={"paging": PagingDirection.FORWARD})

    async def fetch_after_sales(self, window: TimeWindow, page: str | None) -> Page:
        """One page of service orders updated in ``window``."""
        start, end = inclusive_bounds(window)
        if end < start:
            return Page(records=(), total=0)
        page_no = int(page or 1)
        body = await self._client.call(
            AFTER_SALES_METHOD,
            {
                "updateTimeBegin": format_top_time(start),
                "updateTimeEnd": format_top_time(end),
                "pageNumber": str(page_no),
                "pageSize": str(self._page_size),
            },
        )
        result = body.get("pageResult")
        if not isinstance(result, dict):
            raise ChannelUnavailable(f"jd channel {self.name!r}: the answer has no pageResult")
        if result.get("success") is False:
            raise JosApiError(
                self.name,
                AFTER_SALES_METHOD,
                str(result.get("resultCode", "")),
                self._client.redact(str(result.get("resultDescription", ""))),
            )
        raw_total = result.get("totalCount", 0)
        if isinstance(raw_total, bool) or not str(raw_total).isdigit():
            raise ChannelUnavailable(
                f"jd channel {self.name!r}: totalCount is not a count ({raw_total!r})"
            )
        total = int(str(raw_total))
        items = result.get("data") or []
        if not isinstance(items, list):
            raise ChannelUnavailable(f"jd channel {self.name!r}: pageResult.data is not a list")
        records = tuple(self._service_record(item) for item in items)
        more = page_no * self._page_size < total
        return Page(records=records, total=total, next_page=str(page_no + 1) if more else None)

    def _service_record(self, item: Any) -> RawRecord:
        if not isinstance(item, dict):
            raise ChannelUnavailable(f"jd channel {self.name!r}: a service order is not an object")
        key, updated = item.get("serviceId"), item.get("updateTime")
        if key in (None, "") or not isinstance(updated, str):
            raise ChannelUnavailable(
                f"jd channel {self.name!r}: a service order came without serviceId or updateTime"
            )
        try:
            modified_at = parse_top_time(updated)
        except ValueError:
            raise ChannelUnavailable(
                f"jd channel {self.name!r} service order {key}: updateTime is not a JD time "
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
        """Map a JD service order (see the module docstring)."""
        read = AfterSaleReader(self.name, record)
        sku = read.text("skuId", "")
        units = read.raw("serviceCount", 0)
        return read.build(
            order_external_id=read.text("orderId"),
            kind=read.choose("customerExpect", JD_SERVICE_KINDS),
            status=read.choose("serviceStatus", JD_SERVICE_STATUSES),
            platform_status=read.text("serviceStatus", ""),
            lines=read.lines([("", sku, units)]) if sku and units else [],
            refund={"amount": read.amount("refundAmount")},
            reason=read.text("questionDesc", ""),
            tracking_number=read.text("expressCode", ""),
            created_at=read.time("applyTime", zone=SHANGHAI, default=record.modified_at),
        )
