"""A test-only channel whose pages take a while: ``factory = "support.slow_channels:make"``.

Config keys: ``orders`` (seed that many paid orders, modified over the last minutes),
``delay`` (seconds each page takes) and ``marker`` (a file touched when a page request
starts, so a test knows a job is in flight).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import anyio

from ordercore.domain.channels import Page, TimeWindow
from ordercore.ports.clock import SystemClock
from ordercore.testing.channels import FakeChannel, FakePlatform, fake_order_payload


class SlowChannel(FakeChannel):
    """A FakeChannel whose every page takes ``delay`` seconds."""

    def __init__(self, name: str, platform: FakePlatform, delay: float, marker: Path) -> None:
        super().__init__(name, platform)
        self.delay = delay
        self.marker = marker

    async def fetch_orders(self, window: TimeWindow, page: str | None) -> Page:
        self.marker.touch()
        await anyio.sleep(self.delay)
        return await super().fetch_orders(window, page)


def make(name: str, config: Mapping[str, object]) -> SlowChannel:
    """A SlowChannel for ``name`` as the config describes it."""
    platform = FakePlatform(SystemClock())
    now = platform.clock.now()
    count = config.get("orders", 0)
    for index in range(count if isinstance(count, int) else 0):
        platform.put(
            fake_order_payload(f"S{index}"), at=now - timedelta(minutes=10, seconds=-index)
        )
    delay = config.get("delay", 0.0)
    return SlowChannel(
        name,
        platform,
        float(delay) if isinstance(delay, int | float) else 0.0,
        Path(str(config.get("marker", "page-started"))),
    )
