"""A test-only channel factory with an after-sales feed: ``support.fake_after_sales_channels:make``.

Config keys: ``requests`` (seed that many return requests R0.. of orders T0.., SKU-1 x2,
received by the seller, modified over the last minutes) and ``expired`` (credentials
already expired).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from ordercore.ports.clock import SystemClock
from ordercore.testing.after_sales_channel import FakeAfterSalesChannel, fake_after_sale_payload
from ordercore.testing.channels import FakePlatform


def make(name: str, config: Mapping[str, object]) -> FakeAfterSalesChannel:
    """A FakeAfterSalesChannel for ``name`` as the config describes it."""
    platform = FakePlatform(SystemClock())
    channel = FakeAfterSalesChannel(name, platform)
    now = platform.clock.now()
    count = config.get("requests", 0)
    for index in range(count if isinstance(count, int) else 0):
        channel.put_after_sale(
            fake_after_sale_payload(f"R{index}", f"T{index}", qty=2),
            at=now - timedelta(minutes=10, seconds=-index),
        )
    if config.get("expired"):
        platform.credentials_expire_at = datetime(2000, 1, 1, tzinfo=UTC)
    return channel
