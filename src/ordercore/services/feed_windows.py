"""Fetch one time window of any channel feed completely: pages, dedup, count check, re-scans.

:meth:`ordercore.services.intake.IntakeService.fetch_window` does this for the orders
feed; this is the same procedure over any page-fetching call, so that other feeds
(after-sales) obey the same completeness rule without a copy of the order intake:
read every page, keep each (external id, modified time) once, compare the distinct ids
with the platform's total, re-scan a short window up to ``rescans`` times and then fail
closed with :class:`~ordercore.services.intake.IncompleteWindow` (the cursor stays).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from ordercore.domain.channels import Page, RawRecord, TimeWindow
from ordercore.services.intake import IncompleteWindow

__all__ = ["FetchPage", "WindowFetch", "fetch_complete_window"]

FetchPage = Callable[[TimeWindow, str | None], Awaitable[Page]]
"""``fetch(window, page_token) -> Page``: one page of a feed (``fetch_after_sales``)."""


@dataclass(frozen=True, slots=True)
class WindowFetch:
    """A window's records, deduplicated, and what reading them took."""

    records: list[RawRecord]
    pages: int
    rescans: int


async def fetch_complete_window(
    fetch: FetchPage, window: TimeWindow, *, rescans: int, what: str
) -> WindowFetch:
    """Read every page of ``window``; raise IncompleteWindow when still short after re-scans.

    ``what`` names the feed in the error (``channel 'tb' after-sales``).
    """
    pages_read = 0
    for attempt in range(rescans + 1):
        seen: dict[tuple[str, datetime], RawRecord] = {}
        totals: set[int] = set()
        token: str | None = None
        while True:
            page = await fetch(window, token)
            pages_read += 1
            if page.total is not None:
                totals.add(page.total)
            for record in page.records:
                if window.contains(record.modified_at):
                    seen.setdefault(record.version_key, record)
            token = page.next_page
            if token is None:
                break
        expected = max(totals) if totals else None
        distinct = len({key[0] for key in seen})
        if expected is None or (len(totals) == 1 and distinct >= expected):
            return WindowFetch(list(seen.values()), pages_read, attempt)
    raise IncompleteWindow(
        f"{what} window {window.start}..{window.end}: fetched {distinct} records, the "
        f"platform reports {sorted(totals)} after {rescans + 1} scans; the cursor stays "
        f"before this window"
    )
