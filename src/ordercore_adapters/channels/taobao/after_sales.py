"""Taobao/Tmall refunds and returns through TOP: ``taobao.refunds.receive.get``.

Mixed into :class:`~.adapter.TaobaoChannel` (the AfterSalesPort). The list is read by
modification time (``start_modified``/``end_modified``, Asia/Shanghai wall clock to the
second, both inclusive: the window is sent as ``start .. end - 1 s``), one page after
another with ``use_has_next=false`` so that every page carries ``total_results`` (the
intake's count check, which also catches a refund that moves while the window is paged).

Mapping (TOP's public Refund object): ``refund_id`` is the key, ``tid`` the order,
``oid``/``num``/``outer_id`` the line (the merchant code, else the ``sku`` id before its
``|``, else ``num_iid``), ``refund_fee`` in yuan, ``reason``/``desc``, ``sid`` the return
parcel. ``has_good_return`` decides refund-only against return-and-refund. Status:

=============================  ==========
``WAIT_SELLER_AGREE``          requested
``WAIT_BUYER_RETURN_GOODS``    approved
``WAIT_SELLER_CONFIRM_GOODS``  returning
``SELLER_REFUSE_BUYER``        rejected
``SUCCESS``                    refunded
``CLOSED``                     closed
=============================  ==========

**Not public / assumed**: TOP documents no span cap for this API; we use the trade API's
one day and its 89-day history (``limits``) so the planner never asks for more than the
trades API allows. Exchanges (Tmall 换货, ``tmall.exchange.receive.get``) and resends are
separate, permission-gated APIs and are not pulled here.
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
from .client import TopClient

__all__ = ["REFUND_FIELDS", "TAOBAO_REFUND_STATUSES", "TaobaoAfterSales"]

REFUND_FIELDS: Final = (
    "refund_id,tid,oid,num,num_iid,outer_id,sku,title,status,order_status,good_status,"
    "has_good_return,refund_fee,total_fee,payment,reason,desc,sid,company_name,created,"
    "modified,refund_phase"
)
"""The Refund fields the mapping reads."""

TAOBAO_REFUND_STATUSES: Final[Mapping[str, AfterSaleStatus]] = {
    "WAIT_SELLER_AGREE": AfterSaleStatus.REQUESTED,
    "WAIT_BUYER_RETURN_GOODS": AfterSaleStatus.APPROVED,
    "WAIT_SELLER_CONFIRM_GOODS": AfterSaleStatus.RETURNING,
    "SELLER_REFUSE_BUYER": AfterSaleStatus.REJECTED,
    "SUCCESS": AfterSaleStatus.REFUNDED,
    "CLOSED": AfterSaleStatus.CLOSED,
}
_KINDS: Final = {
    "true": AfterSaleKind.RETURN_REFUND,
    "True": AfterSaleKind.RETURN_REFUND,
    "false": AfterSaleKind.REFUND_ONLY,
    "False": AfterSaleKind.REFUND_ONLY,
}


class TaobaoAfterSales:
    """The AfterSalesPort of a Taobao shop (mixed into TaobaoChannel)."""

    name: str
    limits: ChannelLimits
    _client: TopClient
    _page_size: int

    @property
    def after_sales_limits(self) -> ChannelLimits:
        """The trade feed's limits, paged oldest page first (see the module docstring)."""
        return self.limits.model_copy(update={"paging": PagingDirection.FORWARD})

    async def fetch_after_sales(self, window: TimeWindow, page: str | None) -> Page:
        """One page of refunds modified in ``window``."""
        start, end = inclusive_bounds(window)
        if end < start:
            return Page(records=(), total=0)
        page_no = int(page or 1)
        body = await self._client.call(
            "taobao.refunds.receive.get",
            {
                "fields": REFUND_FIELDS,
                "start_modified": format_top_time(start),
                "end_modified": format_top_time(end),
                "page_no": page_no,
                "page_size": self._page_size,
                "use_has_next": "false",
            },
        )
        raw_total = body.get("total_results", 0)
        if isinstance(raw_total, bool) or not str(raw_total).isdigit():
            raise ChannelUnavailable(
                f"taobao channel {self.name!r}: total_results is not a count ({raw_total!r})"
            )
        total = int(raw_total)
        records = tuple(self._refund_record(item) for item in _refunds(body))
        more = page_no * self._page_size < total
        return Page(records=records, total=total, next_page=str(page_no + 1) if more else None)

    def _refund_record(self, refund: Any) -> RawRecord:
        if not isinstance(refund, dict):
            raise ChannelUnavailable(f"taobao channel {self.name!r}: a refund is not an object")
        refund_id, modified = refund.get("refund_id"), refund.get("modified")
        if refund_id in (None, "") or not isinstance(modified, str):
            raise ChannelUnavailable(
                f"taobao channel {self.name!r}: a refund came without refund_id or modified"
            )
        try:
            modified_at = parse_top_time(modified)
        except ValueError as exc:
            raise ChannelUnavailable(
                f"taobao channel {self.name!r} refund {refund_id}: {exc}"
            ) from None
        return RawRecord(
            channel=self.name,
            external_id=str(refund_id),
            modified_at=modified_at,
            payload=refund,
            kind=RecordKind.AFTER_SALE,
        )

    def map_after_sale(self, record: RawRecord) -> AfterSale:
        """Map a TOP Refund (see the module docstring)."""
        read = AfterSaleReader(self.name, record)
        status = read.choose("status", TAOBAO_REFUND_STATUSES)
        kind = read.choose("has_good_return", _KINDS, AfterSaleKind.REFUND_ONLY)
        sku = read.text("outer_id", "") or read.text("sku", "").partition("|")[0]
        sku = sku or read.text("num_iid", "")
        line = (read.text("oid", ""), sku, read.raw("num", 0))
        lines = read.lines([line]) if sku and line[2] else []
        return read.build(
            order_external_id=read.text("tid"),
            kind=kind,
            status=status,
            platform_status=read.text("status", ""),
            lines=lines,
            refund={"amount": read.amount("refund_fee")},
            reason=read.text("reason", ""),
            description=read.text("desc", ""),
            tracking_number=read.text("sid", ""),
            created_at=read.time("created", zone=SHANGHAI, default=record.modified_at),
        )


def _refunds(body: Mapping[str, Any]) -> list[Any]:
    container = body.get("refunds")
    if container is None:
        return []  # TOP leaves ``refunds`` out of an empty page
    refunds = container.get("refund", []) if isinstance(container, dict) else None
    if not isinstance(refunds, list):
        raise ChannelUnavailable("taobao: refunds.refund is not a list")
    return refunds
