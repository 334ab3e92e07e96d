"""The channel port's contract suite: what every ChannelPort adapter must do.

Run it against your adapter and a fake of its platform. In your tests::

    from ordercore.testing.channel_contract import ChannelContract

    class TestMyChannel(ChannelContract):
        @pytest.fixture
        async def channel_under_test(self):
            with FakeMyPlatform() as platform:          # a local fake of the platform
                channel = MyChannel("my-shop", {"url": platform.url, ...})
                yield channel, platform                 # (ChannelPort, ChannelControl)
                await channel.aclose()

``channel_under_test`` yields the adapter and a :class:`ChannelControl`: the few knobs
the suite needs on the fake platform (add an order, read its clock, expire the
credentials, make the next requests fail). The suite checks, over the adapter's public
methods only:

* a window returns exactly the orders modified in it: start included, end excluded, to
  the second, also for windows one second long, windows as long as ``max_window`` and
  the oldest window ``history_depth`` allows;
* the pages of a window cover every order, each page carrying the platform's total;
* expired credentials raise ChannelAuthExpired;
* a platform that keeps failing raises ChannelUnavailable (after the adapter's own
  retries); a single failure is retried, unless the adapter declares
  ``retries_transient_failures = False`` (it leaves retrying to a wrapper);
* ``platform_time`` is the platform's clock in UTC; credential status names the channel;
* ``map_order`` of a fetched record gives an Order with UTC times.

Windows are placed behind the platform's clock by the adapter's ``limits.lag`` and
inside its ``history_depth``, so the suite asks nothing a real platform would refuse.
This module imports pytest: import it from tests only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Protocol, runtime_checkable

import pytest

from ordercore.domain.channels import Page, RawRecord, TimeWindow
from ordercore.errors import ChannelAuthExpired, ChannelUnavailable
from ordercore.ports.channels import ChannelPort

__all__ = ["ChannelContract", "ChannelControl", "ChannelUnderTest", "fetch_window"]

_SECOND = timedelta(seconds=1)
_MAX_PAGES = 10_000


@runtime_checkable
class ChannelControl(Protocol):
    """What the suite needs from the fake platform behind the adapter under test."""

    def add_order(self, external_id: str, modified_at_utc: datetime) -> None:
        """Create (or change) an order, last modified at ``modified_at_utc`` (whole seconds)."""
        ...

    def now(self) -> datetime:
        """The platform's clock, UTC."""
        ...

    def expire_credentials(self) -> None:
        """From now on the platform refuses the adapter's credentials as expired."""
        ...

    def fail_next(self, n: int) -> None:
        """The next ``n`` requests fail transiently (5xx, timeout or the like)."""
        ...


ChannelUnderTest = tuple[ChannelPort, ChannelControl]
"""What the ``channel_under_test`` fixture yields."""


async def fetch_window(channel: ChannelPort, window: TimeWindow) -> list[Page]:
    """Every page of ``window``, following the page tokens (bounded, for tests)."""
    pages: list[Page] = []
    token: str | None = None
    for _ in range(_MAX_PAGES):
        page = await channel.fetch_orders(window, token)
        pages.append(page)
        token = page.next_page
        if token is None:
            return pages
    raise AssertionError(f"{channel.name}: more than {_MAX_PAGES} pages for {window}")


def _records(pages: Iterable[Page]) -> list[RawRecord]:
    return [record for page in pages for record in page.records]


def _ids(pages: Iterable[Page]) -> set[str]:
    return {record.external_id for record in _records(pages)}


class ChannelContract:
    """Mix into a test class and provide the ``channel_under_test`` fixture."""

    retries_transient_failures: ClassVar[bool] = True
    """False when the adapter leaves retries to a wrapper; the suite then skips that test."""

    @pytest.fixture
    def channel_under_test(self) -> ChannelUnderTest:
        """Override: yield ``(adapter, control)`` over a fresh, empty fake platform."""
        raise NotImplementedError(
            "a ChannelContract test class must define the channel_under_test fixture"
        )

    @staticmethod
    def past_window(channel: ChannelPort, control: ChannelControl, length: timedelta) -> TimeWindow:
        """A whole-second window of ``length`` that ends safely behind the platform's clock."""
        now = control.now().astimezone(UTC).replace(microsecond=0)
        end = now - channel.limits.lag - timedelta(minutes=5)
        return TimeWindow(start=end - length, end=end)

    @pytest.mark.anyio
    async def test_the_adapter_implements_the_channel_port(
        self, channel_under_test: ChannelUnderTest
    ) -> None:
        """The adapter is a ChannelPort with a name, a kind and sane limits."""
        channel, _ = channel_under_test
        assert isinstance(channel, ChannelPort)
        assert channel.name
        assert channel.kind
        assert channel.limits.page_size > 0
        assert channel.limits.max_window > timedelta(0)

    @pytest.mark.anyio
    async def test_a_window_returns_exactly_the_orders_modified_in_it(
        self, channel_under_test: ChannelUnderTest
    ) -> None:
        """Start included, end excluded, to the second; records carry UTC times and totals."""
        channel, control = channel_under_test
        length = min(channel.limits.max_window, timedelta(hours=1))
        window = self.past_window(channel, control, length)
        middle = window.start + timedelta(seconds=int(length.total_seconds()) // 2)
        placed = {
            "9100001": window.start - _SECOND,
            "9100002": window.start,
            "9100003": middle,
            "9100004": window.end - _SECOND,
            "9100005": window.end,
            "9100006": window.end + _SECOND,
        }
        for external_id, moment in placed.items():
            control.add_order(external_id, moment)
        pages = await fetch_window(channel, window)
        records = _records(pages)
        assert _ids(pages) == {"9100002", "9100003", "9100004"}
        assert {page.total for page in pages} == {3}
        for record in records:
            assert record.channel == channel.name
            assert record.modified_at == placed[record.external_id]
            assert record.modified_at.utcoffset() == timedelta(0)

    @pytest.mark.anyio
    async def test_one_second_windows_see_each_order_exactly_once(
        self, channel_under_test: ChannelUnderTest
    ) -> None:
        """Adjacent one-second windows: every order in exactly one, none in a gap."""
        channel, control = channel_under_test
        span = self.past_window(channel, control, timedelta(seconds=5))
        for offset in range(5):
            control.add_order(f"92000{offset}", span.start + offset * _SECOND)
        seen: list[str] = []
        for offset in range(5):
            second = TimeWindow(
                start=span.start + offset * _SECOND, end=span.start + (offset + 1) * _SECOND
            )
            pages = await fetch_window(channel, second)
            seen.extend(record.external_id for record in _records(pages))
            assert {page.total for page in pages} == {1}
        assert seen == [f"92000{offset}" for offset in range(5)]

    @pytest.mark.anyio
    async def test_a_window_as_long_as_max_window_is_accepted(
        self, channel_under_test: ChannelUnderTest
    ) -> None:
        """A window of exactly ``limits.max_window`` is fetched, both edges inside it."""
        channel, control = channel_under_test
        window = self.past_window(channel, control, channel.limits.max_window)
        control.add_order("9300001", window.start)
        control.add_order("9300002", window.end - _SECOND)
        control.add_order("9300003", window.end)
        pages = await fetch_window(channel, window)
        assert _ids(pages) == {"9300001", "9300002"}

    @pytest.mark.anyio
    async def test_a_window_at_the_edge_of_history_depth_is_accepted(
        self, channel_under_test: ChannelUnderTest
    ) -> None:
        """The oldest window the planner may ask for (``history_depth`` back) is served."""
        channel, control = channel_under_test
        now = control.now().astimezone(UTC).replace(microsecond=0)
        start = now - channel.limits.history_depth + _SECOND
        length = min(channel.limits.max_window, timedelta(minutes=10))
        window = TimeWindow(start=start, end=start + length)
        control.add_order("9350001", window.start)
        pages = await fetch_window(channel, window)
        assert _ids(pages) == {"9350001"}

    @pytest.mark.anyio
    async def test_pages_cover_the_window_with_the_platforms_total(
        self, channel_under_test: ChannelUnderTest
    ) -> None:
        """More than two pages of orders: every one fetched, each page with the total."""
        channel, control = channel_under_test
        count = 2 * channel.limits.page_size + 1
        length = min(channel.limits.max_window, timedelta(hours=1))
        window = self.past_window(channel, control, length)
        seconds = int(window.length.total_seconds())
        expected = set()
        for index in range(count):
            external_id = str(9_400_000 + index)
            offset = (index * max(seconds // count, 1)) % seconds
            control.add_order(external_id, window.start + offset * _SECOND)
            expected.add(external_id)
        pages = await fetch_window(channel, window)
        assert len(pages) >= 3
        assert {page.total for page in pages} == {count}
        assert _ids(pages) == expected
        for page in pages:
            assert len(page.records) <= channel.limits.page_size

    @pytest.mark.anyio
    async def test_expired_credentials_raise_channel_auth_expired(
        self, channel_under_test: ChannelUnderTest
    ) -> None:
        """A platform that refuses the credentials as expired: ChannelAuthExpired."""
        channel, control = channel_under_test
        window = self.past_window(channel, control, timedelta(minutes=10))
        control.add_order("9500001", window.start)
        control.expire_credentials()
        with pytest.raises(ChannelAuthExpired):
            await channel.fetch_orders(window, None)

    @pytest.mark.anyio
    async def test_a_platform_that_keeps_failing_raises_channel_unavailable(
        self, channel_under_test: ChannelUnderTest
    ) -> None:
        """Transient failures past the adapter's retries end in ChannelUnavailable."""
        channel, control = channel_under_test
        window = self.past_window(channel, control, timedelta(minutes=10))
        control.fail_next(1_000)
        with pytest.raises(ChannelUnavailable):
            await channel.fetch_orders(window, None)

    @pytest.mark.anyio
    async def test_a_single_transient_failure_is_retried(
        self, channel_under_test: ChannelUnderTest
    ) -> None:
        """One failed request is retried by the adapter: the page still arrives."""
        if not self.retries_transient_failures:
            pytest.skip("the adapter declares that it leaves retries to a wrapper")
        channel, control = channel_under_test
        window = self.past_window(channel, control, timedelta(minutes=10))
        control.add_order("9600001", window.start)
        control.fail_next(1)
        page = await channel.fetch_orders(window, None)
        assert [record.external_id for record in page.records] == ["9600001"]

    @pytest.mark.anyio
    async def test_platform_time_is_the_platforms_clock_in_utc(
        self, channel_under_test: ChannelUnderTest
    ) -> None:
        """``platform_time`` is aware UTC and within a few seconds of the platform's clock."""
        channel, control = channel_under_test
        told = await channel.platform_time()
        assert told.utcoffset() == timedelta(0)
        assert abs(told - control.now()) <= timedelta(seconds=5)

    @pytest.mark.anyio
    async def test_credential_status_names_the_channel_with_aware_expiries(
        self, channel_under_test: ChannelUnderTest
    ) -> None:
        """Credential status belongs to this channel; every expiry is timezone-aware."""
        channel, _ = channel_under_test
        status = await channel.credential_status()
        assert status.channel == channel.name
        assert all(moment.tzinfo is not None for moment in status.expires_at.values())

    @pytest.mark.anyio
    async def test_map_order_of_a_fetched_record_gives_an_order_in_utc(
        self, channel_under_test: ChannelUnderTest
    ) -> None:
        """A fetched record maps to an Order keyed by (channel, external id), times in UTC."""
        channel, control = channel_under_test
        window = self.past_window(channel, control, timedelta(minutes=10))
        control.add_order("9700001", window.start + timedelta(minutes=1))
        (page,) = await fetch_window(channel, window)
        (record,) = page.records
        order = channel.map_order(record).order
        assert (order.channel, order.external_id) == (channel.name, "9700001")
        assert order.lines
        for moment in (order.created_at, order.updated_at):
            assert moment.utcoffset() == timedelta(0)
