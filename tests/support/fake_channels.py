"""A test-only channel factory for channel configs: ``factory = "support.fake_channels:make"``.

Config keys: ``orders`` (seed that many paid orders, modified over the last minutes),
``expired`` (credentials already expired), ``secret`` (the webhook secret) and
``platform`` (share a FakePlatform registered in :data:`PLATFORMS` by a test).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from ordercore.ports.clock import SystemClock
from ordercore.testing.channels import FakeChannel, FakePlatform, fake_order_payload

PLATFORMS: dict[str, FakePlatform] = {}


def make(name: str, config: Mapping[str, object]) -> FakeChannel:
    """A FakeChannel for ``name`` as the config describes it."""
    shared = config.get("platform")
    if isinstance(shared, str):
        platform = PLATFORMS[shared]
    else:
        platform = FakePlatform(SystemClock())
        now = platform.clock.now()
        count = config.get("orders", 0)
        for index in range(count if isinstance(count, int) else 0):
            platform.put(
                fake_order_payload(f"F{index}"), at=now - timedelta(minutes=10, seconds=-index)
            )
        if config.get("expired"):
            platform.credentials_expire_at = datetime(2000, 1, 1, tzinfo=UTC)
    return FakeChannel(name, platform, secret=str(config.get("secret", "fake-secret")))
