"""The in-memory FakeChannel passes the ChannelPort contract suite."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ordercore.ports.clock import ManualClock
from ordercore.testing.channel_contract import ChannelContract, ChannelUnderTest
from ordercore.testing.channels import FakeChannel, FakePlatform, fake_order_payload


class FakePlatformControl:
    """The contract's control knobs over a FakePlatform."""

    def __init__(self, platform: FakePlatform, clock: ManualClock) -> None:
        self.platform = platform
        self.clock = clock

    def add_order(self, external_id: str, modified_at_utc: datetime) -> None:
        self.platform.put(fake_order_payload(external_id), at=modified_at_utc)

    def now(self) -> datetime:
        return self.clock.now()

    def expire_credentials(self) -> None:
        self.platform.credentials_expire_at = self.clock.now()

    def fail_next(self, n: int) -> None:
        self.platform.fail_pages = n


class TestFakeChannelContract(ChannelContract):
    """FakeChannel against the suite (it leaves retries to a wrapper)."""

    retries_transient_failures = False

    @pytest.fixture
    def channel_under_test(self) -> ChannelUnderTest:
        clock = ManualClock(datetime(2026, 11, 11, 12, 0, tzinfo=UTC))
        platform = FakePlatform(clock)
        return FakeChannel("fake-shop", platform), FakePlatformControl(platform, clock)
